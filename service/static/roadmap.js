/*
 * The roadmap page (/roadmap): asks the roadmap's questions one at a time and shows the roadmap growing,
 * phase by phase, with every cited provision and clause opening in place (KBPassageView).
 *
 * State (scenario, language, answers) lives in the URL (?scenario=&lang=&a=key:value,…), so a roadmap can be
 * shared or reloaded. The interview (scenario, questions, answers, passages in place) is interview.js's, shared with
 * the contract draft page; this script adds the phases. Every piece of data goes into the page as text
 * (textContent), never as HTML.
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
      done: "Alle spørgsmål er besvaret. Vejviseren nedenfor er klar til at blive udskrevet.",
      roadmapTitle: "Vejviser",
      print: "Udskriv",
      legend: "Trin markeret „åbent“ afhænger af et spørgsmål, der ikke er besvaret endnu; begge grene vises.",
      disclaimer: "Vejviseren er vejledning på grundlag af de citerede tekster, ikke juridisk rådgivning.",
      pageTitle: "Vejviser til indkøb af klinisk AI",
      progress: function (n, total) { return "Spørgsmål " + n + " – " + total + " tilbage"; },
      loading: "Henter vejviseren …",
      failed: "Vejviseren kunne ikke hentes: ",
      who: { buyer: "Køber", vendor: "Leverandør", both: "Begge" },
      whoLabel: "Hvem",
      why: "Hvorfor",
      clausesLabel: "Kontraktklausuler",
      notInKb: "(ikke i vidensbasen)",
      scenarioLine: "Scenarie: ",
      steps: function (n) { return n === 1 ? "1 trin" : n + " trin"; },
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
      done: "All questions are answered. The roadmap below is ready to print.",
      roadmapTitle: "Roadmap",
      print: "Print",
      legend: "Steps marked “open” depend on a question not answered yet; both branches are shown.",
      disclaimer: "The roadmap is guidance based on the cited texts, not legal advice.",
      pageTitle: "Roadmap for procuring clinical AI",
      progress: function (n, total) { return "Question " + n + " – " + total + " left"; },
      loading: "Loading the roadmap …",
      failed: "The roadmap could not be loaded: ",
      who: { buyer: "Buyer", vendor: "Vendor", both: "Both" },
      whoLabel: "Who",
      why: "Why",
      clausesLabel: "Contract clauses",
      notInKb: "(not in the knowledge base)",
      scenarioLine: "Scenario: ",
      steps: function (n) { return n === 1 ? "1 step" : n + " steps"; },
      contractLink: "Contract draft for these answers",
    },
  };

  var interview = window.KBInterview.create({ // interview.js, loaded before this script
    words: WORDS,
    resultUrl: "/api/roadmap",
    render: renderPhases,
    resultId: "roadmap",
    questionId: "question-form",
    listId: "phases",
    itemSelector: ".step",
    sourceClass: "answer-source",
    printable: true,
    urlChanged: function (query) {
      contractLink().href = "/contract?" + query;
    },
    started: function () {
      contractLink().href = "/contract" + window.location.search;
      $("print-button").addEventListener("click", function () {
        window.print();
      });
    },
    scenarioShown: function (chosen) {
      $("scenario-description").textContent = chosen ? (state.lang === "en" ? chosen.details.en : chosen.details.da) : "";
    },
    questionShown: function (next, data) {
      $("progress").textContent = next ? words().progress(state.asked.length + 1, data.questions.length) : "";
    },
    answersHead: function (list, data) {
      var scenario = interview.chosenScenario();
      list.appendChild(el("dt", null, words().scenario));
      list.appendChild(el("dd", null, scenario ? interview.scenarioLabel(scenario) : data.scenario_label));
    },
    answerExtra: function (dd, item, q) {
      if (item.source === "scenario" && q) {
        dd.appendChild(document.createTextNode(" "));
        dd.appendChild(changeDefault(q, item.value));
      }
    },
  });
  var state = interview.state;
  var words = interview.words;

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

  // --- rendering --------------------------------------------------------------------------------

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
    interview.optionButtons(q, current).forEach(function (button) {
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
        item.appendChild(interview.refButton(cite.ref, cite.passage_id, cite.heading));
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
      item.appendChild(el("p", "depends-on", interview.dependsOn(step.depends_on)));
    }
    if (step.refs.length) item.appendChild(citeList(w.why, step.refs, "cites-refs"));
    if (step.clauses.length) item.appendChild(citeList(w.clausesLabel, step.clauses, "cites-clauses"));
    var panel = el("div", "passage-panel");
    panel.hidden = true;
    item.appendChild(panel);
    return item;
  }

  // The roadmap's own part; the interview renders the question and the answers and shows #roadmap.
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
  }

  interview.start();
})();
