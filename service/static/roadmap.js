/*
 * The roadmap page (/roadmap): asks the roadmap's questions one at a time and shows the roadmap growing,
 * phase by phase, with every cited provision and clause opening in place (KBPassageView).
 *
 * State (scenario, language, answers) lives in the URL (?scenario=&lang=&a=key:value,…), so a roadmap can be
 * shared or reloaded. Every piece of data goes into the page as text (textContent), never as HTML.
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
      brand: "Vejviser til indkøb af klinisk AI",
      home: "Forside",
      clauses: "Klausulsøgning",
      docs: "API-dokumentation",
      nav: "Hovedmenu",
      language: "Sprog",
      title: "Fra behov til drift",
      intro: "Svar på spørgsmålene ét ad gangen. Vejviseren viser faserne fra behov til drift, hvem der gør hvad, hvilke bestemmelser trinnet hviler på, og hvilke kontraktklausuler der skal på plads.",
      scenarioTitle: "Hvilket scenarie er I i?",
      scenario: "Scenarie",
      chooseScenario: "Vælg scenarie …",
      done: "Alle spørgsmål er besvaret. Vejviseren nedenfor er klar til at blive udskrevet.",
      answersTitle: "Jeres svar",
      roadmapTitle: "Vejviser",
      print: "Udskriv",
      legend: "Trin markeret „åbent“ afhænger af et spørgsmål, der ikke er besvaret endnu; begge grene vises.",
      disclaimer: "Vejviseren er vejledning på grundlag af de citerede tekster, ikke juridisk rådgivning.",
      pageTitle: "Vejviser til indkøb af klinisk AI",
      dontKnow: "Ved ikke",
      change: "Ændr",
      progress: function (n, total) { return "Spørgsmål " + n + " – " + total + " tilbage"; },
      loading: "Henter vejviseren …",
      failed: "Vejviseren kunne ikke hentes: ",
      who: { buyer: "Køber", vendor: "Leverandør", both: "Begge" },
      whoLabel: "Hvem",
      open: "Åbent",
      dependsOn: "Afhænger af: ",
      why: "Hvorfor",
      clausesLabel: "Kontraktklausuler",
      notInKb: "(ikke i vidensbasen)",
      unknown: "Ved ikke",
      source: { answer: "", scenario: "givet af scenariet", derived: "følger af reglerne" },
      scenarioLine: "Scenarie: ",
      steps: function (n) { return n === 1 ? "1 trin" : n + " trin"; },
      closePassage: "Luk",
      contractLink: "Kontraktudkast for disse svar",
    },
    en: {
      skip: "Skip to content",
      brand: "Roadmap for procuring clinical AI",
      home: "Home",
      clauses: "Clause finder",
      docs: "API documentation",
      nav: "Main menu",
      language: "Language",
      title: "From need to operation",
      intro: "Answer the questions one at a time. The roadmap shows the phases from need to operation, who does what, which provisions each step rests on and which contract clauses to put in place.",
      scenarioTitle: "Which scenario are you in?",
      scenario: "Scenario",
      chooseScenario: "Choose a scenario …",
      done: "All questions are answered. The roadmap below is ready to print.",
      answersTitle: "Your answers",
      roadmapTitle: "Roadmap",
      print: "Print",
      legend: "Steps marked “open” depend on a question not answered yet; both branches are shown.",
      disclaimer: "The roadmap is guidance based on the cited texts, not legal advice.",
      pageTitle: "Roadmap for procuring clinical AI",
      dontKnow: "Don't know",
      change: "Change",
      progress: function (n, total) { return "Question " + n + " – " + total + " left"; },
      loading: "Loading the roadmap …",
      failed: "The roadmap could not be loaded: ",
      who: { buyer: "Buyer", vendor: "Vendor", both: "Both" },
      whoLabel: "Who",
      open: "Open",
      dependsOn: "Depends on: ",
      why: "Why",
      clausesLabel: "Contract clauses",
      notInKb: "(not in the knowledge base)",
      unknown: "Don't know",
      source: { answer: "", scenario: "given by the scenario", derived: "follows from the rules" },
      scenarioLine: "Scenario: ",
      steps: function (n) { return n === 1 ? "1 step" : n + " steps"; },
      closePassage: "Close",
      contractLink: "Contract draft for these answers",
    },
  };

  var state = { lang: "da", scenario: "", answers: {}, scenarios: [], questions: {}, asked: [] };

  function words() {
    return WORDS[state.lang] || WORDS.da;
  }

  // --- URL state --------------------------------------------------------------------------------

  function readUrl() {
    Object.assign(state, KB.readAnswers(window.location.search)); // lang, scenario, answers, asked
  }

  function writeUrl() {
    var query = KB.answersQuery(state);
    window.history.replaceState(null, "", window.location.pathname + "?" + query);
    contractLink().href = "/contract?" + query;
  }

  // The contract draft for the same scenario and answers (/contract reads the same query).
  function contractLink() {
    var link = $("contract-link");
    if (!link) {
      link = el("a", "contract-link no-print", words().contractLink);
      link.id = "contract-link";
      $("print-button").insertAdjacentElement("afterend", link);
    }
    link.textContent = words().contractLink;
    return link;
  }

  // --- static texts -----------------------------------------------------------------------------

  function applyTexts() {
    KB.applyTexts(words(), state.lang);
    document.title = words().pageTitle;
  }

  // --- API --------------------------------------------------------------------------------------

  function loadScenarios() {
    return KB.getJSON("/api/scenarios").then(function (list) {
      state.scenarios = list;
      renderScenarioSelect();
    });
  }

  function loadRoadmap() {
    if (!state.scenario) return Promise.resolve();
    var status = $("status");
    status.textContent = words().loading;
    return KB.getJSON("/api/roadmap", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scenario: state.scenario, answers: state.answers, language: state.lang }),
    }).then(
      function (data) {
        status.textContent = "";
        render(data);
      },
      function (error) {
        status.textContent = words().failed + error.message;
      }
    );
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

  // --- rendering --------------------------------------------------------------------------------

  function scenarioLabel(s) {
    return state.lang === "en" ? s.label.en : s.label.da;
  }

  function renderScenarioSelect() {
    var select = $("scenario-select");
    while (select.options.length > 1) select.remove(1);
    state.scenarios.forEach(function (s) {
      var option = el("option", null, scenarioLabel(s) + " – " + (state.lang === "en" ? s.description.en : s.description.da));
      option.value = s.id;
      select.appendChild(option);
    });
    select.value = state.scenario;
    var chosen = state.scenarios.filter(function (s) { return s.id === state.scenario; })[0];
    $("scenario-description").textContent = chosen ? (state.lang === "en" ? chosen.details.en : chosen.details.da) : "";
  }

  function optionLabel(key, value) {
    var q = state.questions[key];
    if (value === "unknown") return words().unknown;
    if (!q) return value;
    var match = q.options.filter(function (o) { return o.value === value; })[0];
    return match ? match.label : value;
  }

  function renderQuestion(data) {
    var w = words();
    var ask = $("ask");
    ask.hidden = false;
    var form = $("question-form");
    var options = $("question-options");
    clear(options);
    var next = data.questions[0];
    $("done").hidden = !!next;
    form.hidden = !next;
    $("progress").textContent = next ? w.progress(state.asked.length + 1, data.questions.length) : "";
    if (!next) return;
    $("question").setAttribute("data-key", next.key);
    $("question-text").textContent = next.text;
    $("question-help").textContent = next.help;
    optionButtons(next).forEach(function (button) {
      options.appendChild(button);
    });
  }

  // The question's options and "don't know" (all but `except`), each a button that answers it.
  function optionButtons(q, except) {
    return q.options.concat([{ value: "unknown", label: words().dontKnow }])
      .filter(function (option) { return option.value !== except; })
      .map(function (option) {
        var button = el("button", "option" + (option.value === "unknown" ? " option-unknown" : ""), option.label);
        button.type = "button";
        button.setAttribute("data-value", option.value);
        button.addEventListener("click", function () {
          answer(q.key, option.value);
        });
        return button;
      });
  }

  function renderAnswers(data) {
    var w = words();
    var list = $("answer-list");
    clear(list);
    var scenario = state.scenarios.filter(function (s) { return s.id === state.scenario; })[0];
    var dtS = el("dt", null, w.scenario);
    var ddS = el("dd", null, scenario ? scenarioLabel(scenario) : data.scenario_label);
    list.appendChild(dtS);
    list.appendChild(ddS);
    Object.keys(data.answers).forEach(function (key) {
      var item = data.answers[key];
      var q = state.questions[key];
      var dt = el("dt", null, q ? q.text : key);
      var dd = el("dd");
      dd.setAttribute("data-key", key);
      dd.appendChild(el("span", "answer-value", optionLabel(key, item.value)));
      var note = w.source[item.source];
      if (note) dd.appendChild(el("span", "answer-source", " (" + note + ")"));
      if (item.source === "answer") {
        var change = el("button", "link-button no-print", w.change);
        change.type = "button";
        change.addEventListener("click", function () {
          unanswer(key);
        });
        dd.appendChild(document.createTextNode(" "));
        dd.appendChild(change);
      } else if (item.source === "scenario" && q) {
        dd.appendChild(document.createTextNode(" "));
        dd.appendChild(changeDefault(q, item.value));
      }
      list.appendChild(dt);
      list.appendChild(dd);
    });
    $("answers").hidden = false;
  }

  // A scenario's default (a finished solution is CE-marked) is a guess about the typical case: the
  // "change" button opens the question's options in place, and the choice becomes an answer of the asker's.
  function changeDefault(q, current) {
    var w = words();
    var wrap = el("span", "change-default no-print");
    var change = el("button", "link-button", w.change);
    change.type = "button";
    change.setAttribute("aria-expanded", "false");
    var group = el("span", "change-options");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", q.text);
    group.hidden = true;
    optionButtons(q, current).forEach(function (button) {
      button.classList.add("option-inline");
      group.appendChild(button);
    });
    change.addEventListener("click", function () {
      var opening = group.hidden;
      group.hidden = !opening;
      change.setAttribute("aria-expanded", String(opening));
      if (opening && group.firstChild) group.firstChild.focus();
    });
    wrap.appendChild(change);
    wrap.appendChild(group);
    return wrap;
  }

  function citeList(label, cites, className) {
    var w = words();
    var wrap = el("div", "cites " + className);
    wrap.appendChild(el("span", "cites-label", label + ": "));
    var list = el("ul", "cite-list");
    cites.forEach(function (cite) {
      var item = el("li");
      if (cite.passage_id) {
        var button = el("button", "ref-button", cite.ref);
        button.type = "button";
        button.setAttribute("data-ref", cite.ref);
        button.setAttribute("data-passage-id", cite.passage_id);
        button.setAttribute("aria-expanded", "false");
        if (cite.heading) button.title = cite.heading;
        item.appendChild(button);
      } else {
        item.appendChild(el("span", "ref-missing", cite.ref));
        item.appendChild(el("span", "missing-note no-print", " " + w.notInKb));
      }
      list.appendChild(item);
    });
    wrap.appendChild(list);
    return wrap;
  }

  function renderStep(step) {
    var w = words();
    var item = el("li", "step" + (step.open ? " step-open" : ""));
    item.setAttribute("data-step-id", step.id);
    var head = el("div", "step-head");
    head.appendChild(el("h4", "step-title", step.title));
    head.appendChild(el("span", "who who-" + step.who, w.whoLabel + ": " + (w.who[step.who] || step.who)));
    if (step.open) {
      var openMark = el("span", "open-mark", w.open);
      head.appendChild(openMark);
    }
    item.appendChild(head);
    item.appendChild(el("p", "step-what", step.what));
    if (step.open && step.depends_on.length) {
      var names = step.depends_on.map(function (key) {
        return state.questions[key] ? state.questions[key].text : key;
      });
      item.appendChild(el("p", "depends-on", w.dependsOn + names.join(" · ")));
    }
    if (step.refs.length) item.appendChild(citeList(w.why, step.refs, "cites-refs"));
    if (step.clauses.length) item.appendChild(citeList(w.clausesLabel, step.clauses, "cites-clauses"));
    var panel = el("div", "passage-panel");
    panel.hidden = true;
    item.appendChild(panel);
    return item;
  }

  function renderPhases(data) {
    var w = words();
    var phases = $("phases");
    clear(phases);
    data.phases.forEach(function (phase, index) {
      var item = el("li", "phase");
      item.setAttribute("data-phase-id", phase.id);
      var head = el("div", "phase-head");
      head.appendChild(el("h3", "phase-title", index + 1 + ". " + phase.title));
      head.appendChild(el("span", "phase-count muted", w.steps(phase.steps.length)));
      item.appendChild(head);
      var steps = el("ol", "steps");
      phase.steps.forEach(function (step) {
        steps.appendChild(renderStep(step));
      });
      item.appendChild(steps);
      phases.appendChild(item);
    });
    $("roadmap").hidden = false;
  }

  function render(data) {
    renderQuestion(data);
    renderAnswers(data);
    renderPhases(data);
  }

  // --- passages in place ------------------------------------------------------------------------

  function togglePassage(button) {
    var step = button.closest(".step");
    var panel = step.querySelector(".passage-panel");
    var expanded = button.getAttribute("aria-expanded") === "true";
    Array.prototype.forEach.call(step.querySelectorAll(".ref-button"), function (b) {
      b.setAttribute("aria-expanded", "false");
    });
    if (expanded) {
      panel.hidden = true;
      clear(panel);
      return;
    }
    button.setAttribute("aria-expanded", "true");
    panel.hidden = false;
    clear(panel);
    var close = el("button", "link-button passage-close no-print", words().closePassage);
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
    loadRoadmap().then(function () {
      var next = document.querySelector("#question-options .option");
      if (next && !$("question-form").hidden) next.focus();
    });
  }

  function unanswer(key) {
    delete state.answers[key];
    state.asked = state.asked.filter(function (k) { return k !== key; });
    writeUrl();
    loadRoadmap();
  }

  function chooseScenario(id) {
    state.scenario = id;
    state.answers = {};
    state.asked = [];
    writeUrl();
    renderScenarioSelect();
    if (!id) {
      $("ask").hidden = true;
      $("answers").hidden = true;
      $("roadmap").hidden = true;
      return;
    }
    loadQuestions().then(loadRoadmap);
  }

  function switchLanguage(lang) {
    state.lang = lang;
    writeUrl();
    applyTexts();
    renderScenarioSelect();
    loadQuestions().then(loadRoadmap);
  }

  function start() {
    readUrl();
    applyTexts();
    contractLink().href = "/contract" + window.location.search;
    $("scenario-select").addEventListener("change", function (event) {
      chooseScenario(event.target.value);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".lang-switch button"), function (button) {
      button.addEventListener("click", function () {
        switchLanguage(button.getAttribute("data-lang"));
      });
    });
    $("print-button").addEventListener("click", function () {
      window.print();
    });
    $("phases").addEventListener("click", function (event) {
      var button = event.target.closest(".ref-button");
      if (button) togglePassage(button);
    });
    loadScenarios()
      .then(loadQuestions)
      .then(loadRoadmap)
      .catch(function (error) {
        $("status").textContent = words().failed + error.message;
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
