/*
 * The contract draft page (/contract): asks the roadmap's questions one at a time and shows the contract draft
 * growing, section by section, with every clause quoted from the knowledge base, the provisions behind it and the
 * points to fill in; any clause or provision opens in place (KBPassageView); the draft downloads as DOCX or Markdown.
 *
 * State (scenario, language, answers) lives in the URL (?scenario=&lang=&a=key:value,…), the roadmap page's format,
 * so a roadmap links here with its answers. Every piece of data goes into the page as text, never as HTML.
 */
(function () {
  "use strict";

  var KB = window.KBCommon; // common.js, loaded before this script
  var $ = KB.byId;
  var el = KB.el;
  var clear = KB.clear;

  var WORDS = {
    da: {
      skip: "Gå til indhold",
      brand: "Kontraktudkast til indkøb af klinisk AI",
      home: "Forside",
      roadmap: "Vejviser",
      clauses: "Klausulsøgning",
      docs: "API-dokumentation",
      nav: "Hovedmenu",
      language: "Sprog",
      title: "Kontraktudkast for jeres scenarie",
      intro: "Vælg scenarie og svar på vejviserens spørgsmål. Udkastet vokser for hvert svar: afsnit for afsnit, med modelklausulerne citeret, bestemmelserne bag dem og det, I skal udfylde.",
      scenarioTitle: "Hvilket scenarie er I i?",
      scenario: "Scenarie",
      chooseScenario: "Vælg scenarie …",
      done: "Alle spørgsmål er besvaret.",
      answersTitle: "Jeres svar",
      draftTitle: "Udkast",
      downloadDocx: "Hent som Word (DOCX)",
      downloadMd: "Hent som Markdown",
      legend: "Afsnit og klausuler markeret „åbent“ afhænger af et spørgsmål, der ikke er besvaret; begge varianter vises. Det gule skal køberen udfylde eller vælge.",
      disclaimer: "Udkastet er sat sammen af modelklausuler og bestemmelser fra vidensbasen; det er ikke juridisk rådgivning.",
      pageTitle: "Kontraktudkast til indkøb af klinisk AI",
      dontKnow: "Ved ikke",
      change: "Ændr",
      loading: "Henter udkastet …",
      failed: "Udkastet kunne ikke hentes: ",
      open: "Åbent",
      dependsOn: "Afhænger af: ",
      settles: "Fastlægger: ",
      provisions: "Bestemmelser bag afsnittet",
      fillIns: "Udfyldes af køberen",
      option: "valg",
      placeholder: "udfyldes",
      notInKb: "(teksten er ikke i vidensbasen)",
      otherLanguage: function (lang) { return "citeret på " + (lang === "en" ? "engelsk" : "dansk") + " – findes ikke på dansk"; },
      source: { answer: "", scenario: "givet af scenariet", derived: "følger af reglerne" },
      versions: "Tekster brugt: ",
      closePassage: "Luk",
      openClause: "Åbn",
    },
    en: {
      skip: "Skip to content",
      brand: "Contract draft for procuring clinical AI",
      home: "Home",
      roadmap: "Roadmap",
      clauses: "Clause finder",
      docs: "API documentation",
      nav: "Main menu",
      language: "Language",
      title: "A contract draft for your scenario",
      intro: "Choose the scenario and answer the roadmap's questions. The draft grows with each answer: section by section, with the model clauses quoted, the provisions behind them and what you must fill in.",
      scenarioTitle: "Which scenario are you in?",
      scenario: "Scenario",
      chooseScenario: "Choose a scenario …",
      done: "All questions are answered.",
      answersTitle: "Your answers",
      draftTitle: "Draft",
      downloadDocx: "Download as Word (DOCX)",
      downloadMd: "Download as Markdown",
      legend: "Sections and clauses marked “open” depend on a question not answered yet; both variants are shown. The yellow marks are for the buyer to fill in or choose.",
      disclaimer: "The draft is put together from model clauses and provisions in the knowledge base; it is not legal advice.",
      pageTitle: "Contract draft for procuring clinical AI",
      dontKnow: "Don't know",
      change: "Change",
      loading: "Loading the draft …",
      failed: "The draft could not be loaded: ",
      open: "Open",
      dependsOn: "Depends on: ",
      settles: "Settles: ",
      provisions: "Provisions behind this section",
      fillIns: "For the buyer to fill in",
      option: "option",
      placeholder: "fill in",
      notInKb: "(the text is not in the knowledge base)",
      otherLanguage: function (lang) { return "quoted in " + (lang === "da" ? "Danish" : "English") + " – no English text"; },
      source: { answer: "", scenario: "given by the scenario", derived: "follows from the rules" },
      versions: "Texts used: ",
      closePassage: "Close",
      openClause: "Open",
    },
  };

  var state = { lang: "da", scenario: "", answers: {}, asked: [], scenarios: [], questions: {} };

  function words() {
    return WORDS[state.lang] || WORDS.da;
  }

  // --- URL state (the roadmap page's format) ----------------------------------------------------

  function readUrl() {
    Object.assign(state, KB.readAnswers(window.location.search)); // lang, scenario, answers, asked
  }

  function query() {
    return KB.answersQuery(state);
  }

  function writeUrl() {
    window.history.replaceState(null, "", window.location.pathname + "?" + query());
    $("roadmap-link").href = "/roadmap?" + query();
  }

  function downloadUrl(extension) {
    var params = new URLSearchParams();
    params.set("scenario", state.scenario);
    params.set("lang", state.lang);
    state.asked.forEach(function (key) {
      if (key in state.answers) params.append("answer", key + "=" + state.answers[key]);
    });
    return "/api/contract." + extension + "?" + params.toString();
  }

  // --- texts and API ----------------------------------------------------------------------------

  function applyTexts() {
    KB.applyTexts(words(), state.lang);
    document.title = words().pageTitle;
  }

  function loadScenarios() {
    return KB.getJSON("/api/scenarios").then(function (list) {
      state.scenarios = list;
      renderScenarioSelect();
    });
  }

  function loadQuestions() {
    if (!state.scenario) return Promise.resolve();
    var url = "/api/roadmap/questions?scenario=" + encodeURIComponent(state.scenario) + "&lang=" + state.lang;
    return KB.getJSON(url).then(function (data) {
      state.questions = {};
      data.questions.forEach(function (q) {
        state.questions[q.key] = q;
      });
    });
  }

  function loadDraft() {
    if (!state.scenario) return Promise.resolve();
    $("status").textContent = words().loading;
    return KB.getJSON("/api/contract", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scenario: state.scenario, answers: state.answers, language: state.lang }),
    }).then(
      function (draft) {
        $("status").textContent = "";
        render(draft);
      },
      function (error) {
        $("status").textContent = words().failed + error.message;
      }
    );
  }

  // --- rendering --------------------------------------------------------------------------------

  function label(s) {
    return state.lang === "en" ? s.label.en : s.label.da;
  }

  function renderScenarioSelect() {
    var select = $("scenario-select");
    while (select.options.length > 1) select.remove(1);
    state.scenarios.forEach(function (s) {
      var option = el("option", null, label(s) + " – " + (state.lang === "en" ? s.description.en : s.description.da));
      option.value = s.id;
      select.appendChild(option);
    });
    select.value = state.scenario;
  }

  function optionLabel(key, value) {
    if (value === "unknown") return words().dontKnow;
    var q = state.questions[key];
    var match = q ? q.options.filter(function (o) { return o.value === value; })[0] : null;
    return match ? match.label : value;
  }

  function renderQuestion(draft) {
    var next = draft.questions[0];
    var options = $("question-options");
    clear(options);
    $("ask").hidden = false;
    $("question").hidden = !next;
    $("done").hidden = !!next;
    if (!next) return;
    $("question").setAttribute("data-key", next.key);
    $("question-text").textContent = next.text;
    $("question-help").textContent = next.help;
    next.options.concat([{ value: "unknown", label: words().dontKnow }]).forEach(function (option) {
      var button = el("button", "option" + (option.value === "unknown" ? " option-unknown" : ""), option.label);
      button.type = "button";
      button.setAttribute("data-value", option.value);
      button.addEventListener("click", function () {
        answer(next.key, option.value);
      });
      options.appendChild(button);
    });
  }

  function renderAnswers(draft) {
    var w = words();
    var list = $("answer-list");
    clear(list);
    Object.keys(draft.answers).forEach(function (key) {
      var item = draft.answers[key];
      var q = state.questions[key];
      list.appendChild(el("dt", null, q ? q.text : key));
      var dd = el("dd");
      dd.setAttribute("data-key", key);
      dd.appendChild(el("span", "answer-value", optionLabel(key, item.value)));
      if (w.source[item.source]) dd.appendChild(el("span", "muted", " (" + w.source[item.source] + ")"));
      if (item.source === "answer") {
        var change = el("button", "link-button", w.change);
        change.type = "button";
        change.addEventListener("click", function () {
          unanswer(key);
        });
        dd.appendChild(document.createTextNode(" "));
        dd.appendChild(change);
      }
      list.appendChild(dd);
    });
    $("answers").hidden = !Object.keys(draft.answers).length;
  }

  // The passage text with each fill-in point as a <mark>, all as text nodes.
  function quote(text, points) {
    var node = el("blockquote", "quote");
    var markers = points.map(function (p) { return p.text; }).sort(function (a, b) { return b.length - a.length; });
    var position = 0;
    while (position < text.length) {
      var best = -1;
      var marker = null;
      markers.forEach(function (m) {
        var at = text.indexOf(m, position);
        if (at >= 0 && (best < 0 || at < best)) {
          best = at;
          marker = m;
        }
      });
      if (best < 0) {
        node.appendChild(document.createTextNode(text.slice(position)));
        break;
      }
      if (best > position) node.appendChild(document.createTextNode(text.slice(position, best)));
      node.appendChild(el("mark", "fill-in", marker));
      position = best + marker.length;
    }
    return node;
  }

  function refButton(ref, passageId, title) {
    var button = el("button", "ref-button", ref);
    button.type = "button";
    button.setAttribute("data-ref", ref);
    button.setAttribute("data-passage-id", passageId);
    button.setAttribute("aria-expanded", "false");
    if (title) button.title = title;
    return button;
  }

  function openMark(item) {
    var names = item.depends_on.map(function (key) {
      return state.questions[key] ? state.questions[key].text : key;
    });
    var mark = el("span", "open-mark", words().open);
    mark.title = words().dependsOn + names.join(" · ");
    return mark;
  }

  function renderClause(clause) {
    var w = words();
    var item = el("div", "clause" + (clause.open ? " clause-open" : ""));
    item.setAttribute("data-ref", clause.ref);
    var head = el("div", "clause-head");
    if (clause.passages.length) head.appendChild(refButton(clause.ref, clause.passages[0].passage_id, clause.heading));
    else head.appendChild(el("span", "ref-missing", clause.ref));
    if (clause.heading) head.appendChild(document.createTextNode(" – " + clause.heading));
    if (clause.passages.length && !clause.in_language) {
      head.appendChild(el("span", "language-note", " (" + w.otherLanguage(clause.language) + ")"));
    }
    if (clause.open) head.appendChild(openMark(clause));
    item.appendChild(head);
    if (!clause.passages.length) item.appendChild(el("p", "missing-note", w.notInKb));
    clause.passages.forEach(function (passage) {
      var q = quote(passage.text, clause.fill_ins);
      q.setAttribute("data-passage-id", passage.passage_id);
      if (clause.language) q.lang = clause.language;
      item.appendChild(q);
    });
    return item;
  }

  function renderSection(section) {
    var w = words();
    var item = el("li", "section" + (section.open ? " section-open" : ""));
    item.setAttribute("data-section-id", section.id);
    var title = el("h3", "section-title", section.title);
    if (section.open) title.appendChild(openMark(section));
    item.appendChild(title);
    item.appendChild(el("p", "settles muted", w.settles + section.settles));
    section.clauses.forEach(function (clause) {
      item.appendChild(renderClause(clause));
    });
    if (section.provisions.length) {
      item.appendChild(el("p", "block-label", w.provisions));
      var list = el("ol", "provisions");
      section.provisions.forEach(function (provision) {
        var li = el("li");
        li.setAttribute("data-ref", provision.ref);
        if (provision.passage_id) li.appendChild(refButton(provision.ref, provision.passage_id, provision.heading));
        else li.appendChild(el("span", "ref-missing", provision.ref + " " + w.notInKb));
        if (provision.heading) li.appendChild(document.createTextNode(" – " + provision.heading));
        if (provision.open) li.appendChild(openMark(provision));
        list.appendChild(li);
      });
      item.appendChild(list);
    }
    if (section.fill_ins.length) {
      item.appendChild(el("p", "block-label", w.fillIns));
      var points = el("ul", "fill-ins");
      section.fill_ins.forEach(function (point) {
        var li = el("li");
        li.appendChild(el("mark", "fill-in", point.text));
        li.appendChild(document.createTextNode(" (" + w[point.kind] + "; " + point.refs.join(", ") + ")"));
        points.appendChild(li);
      });
      item.appendChild(points);
    }
    var panel = el("div", "passage-panel");
    panel.hidden = true;
    item.appendChild(panel);
    return item;
  }

  function render(draft) {
    renderQuestion(draft);
    renderAnswers(draft);
    var list = $("sections");
    clear(list);
    draft.sections.forEach(function (section) {
      list.appendChild(renderSection(section));
    });
    $("versions").textContent = words().versions + draft.versions.map(function (v) {
      return v.doc_id + " (" + v.version + ", " + v.language + ")";
    }).join("; ");
    $("download-docx").href = downloadUrl("docx");
    $("download-md").href = downloadUrl("md");
    $("draft").hidden = false;
  }

  // --- passages in place ------------------------------------------------------------------------

  function togglePassage(button) {
    var section = button.closest(".section");
    var panel = section.querySelector(".passage-panel");
    var expanded = button.getAttribute("aria-expanded") === "true";
    Array.prototype.forEach.call(section.querySelectorAll(".ref-button"), function (b) {
      b.setAttribute("aria-expanded", "false");
    });
    clear(panel);
    if (expanded) {
      panel.hidden = true;
      return;
    }
    button.setAttribute("aria-expanded", "true");
    panel.hidden = false;
    var close = el("button", "link-button passage-close", words().closePassage);
    close.type = "button";
    close.addEventListener("click", function () {
      button.setAttribute("aria-expanded", "false");
      panel.hidden = true;
      clear(panel);
      button.focus();
    });
    var view = el("div", "passage-view");
    panel.appendChild(close);
    panel.appendChild(view);
    if (window.KBPassageView) {
      window.KBPassageView.render(view, button.getAttribute("data-passage-id"), { baseUrl: "", lang: state.lang });
    }
  }

  // --- actions ----------------------------------------------------------------------------------

  function answer(key, value) {
    state.answers[key] = value;
    if (state.asked.indexOf(key) < 0) state.asked.push(key);
    writeUrl();
    loadDraft().then(function () {
      var next = document.querySelector("#question-options .option");
      if (next && !$("question").hidden) next.focus();
    });
  }

  function unanswer(key) {
    delete state.answers[key];
    state.asked = state.asked.filter(function (k) { return k !== key; });
    writeUrl();
    loadDraft();
  }

  function chooseScenario(id) {
    state.scenario = id;
    state.answers = {};
    state.asked = [];
    writeUrl();
    if (!id) {
      $("ask").hidden = true;
      $("answers").hidden = true;
      $("draft").hidden = true;
      return;
    }
    loadQuestions().then(loadDraft);
  }

  function switchLanguage(lang) {
    state.lang = lang;
    writeUrl();
    applyTexts();
    renderScenarioSelect();
    loadQuestions().then(loadDraft);
  }

  function start() {
    readUrl();
    applyTexts();
    writeUrl();
    $("scenario-select").addEventListener("change", function (event) {
      chooseScenario(event.target.value);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".lang-switch button"), function (button) {
      button.addEventListener("click", function () {
        switchLanguage(button.getAttribute("data-lang"));
      });
    });
    $("sections").addEventListener("click", function (event) {
      var button = event.target.closest(".ref-button");
      if (button) togglePassage(button);
    });
    loadScenarios()
      .then(loadQuestions)
      .then(loadDraft)
      .catch(function (error) {
        $("status").textContent = words().failed + error.message;
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
