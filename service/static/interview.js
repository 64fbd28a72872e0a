/*
 * KBInterview: the interview the roadmap page (/roadmap) and the contract draft page (/contract) share, in one place:
 * the state in the URL (?lang=&scenario=&a=key:value,…, KBCommon.readAnswers), the scenario select, the questions
 * asked one at a time, the answers given (each one can be changed), the page's result fetched again after every
 * answer, and a passage opening in place (KBPassageView) under the reference button that cites it.
 *
 * Pages load it after common.js and before their own script, which calls KBInterview.create(page) with what
 * differs (its words, its API, its element ids, its own rendering) and then start() on what comes back.
 * A plain script (no modules). Everything goes into the page as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  if (window.KBInterview) return;

  // The interview's own words; a page's table (KBInterview.create's page.words) adds to them.
  var WORDS = {
    da: {
      scenarioTitle: "Hvilket scenarie er I i?",
      scenario: "Scenarie",
      chooseScenario: "Vælg scenarie …",
      answersTitle: "Jeres svar",
      dontKnow: "Ved ikke",
      change: "Ændr",
      open: "Åbent",
      dependsOn: "Afhænger af: ",
      source: { answer: "", scenario: "givet af scenariet", derived: "følger af reglerne" },
      closePassage: "Luk",
    },
    en: {
      scenarioTitle: "Which scenario are you in?",
      scenario: "Scenario",
      chooseScenario: "Choose a scenario …",
      answersTitle: "Your answers",
      dontKnow: "Don't know",
      change: "Change",
      open: "Open",
      dependsOn: "Depends on: ",
      source: { answer: "", scenario: "given by the scenario", derived: "follows from the rules" },
      closePassage: "Close",
    },
  };

  var KB = window.KBCommon; // common.js, loaded before this script
  var $ = KB.byId;
  var el = KB.el;
  var clear = KB.clear;

  /**
   * page: {
   *   words: { da: {…}, en: {…} }, the page's texts (pageTitle, loading and failed among them), added to WORDS,
   *   resultUrl: the API the scenario, answers and language are POSTed to; render(data) draws what it answers,
   *   resultId: the section render fills (shown after it, hidden with no scenario),
   *   questionId: the element that holds the next question (hidden when all are answered),
   *   listId, itemSelector: where the reference buttons are, and the item whose .passage-panel opens a passage,
   *   sourceClass: the class of the note saying where an answer comes from,
   *   printable: the page prints, so its controls are marked no-print,
   *   urlChanged(query): after the state is written to the URL,
   *   started(): once the texts are in, before the listeners and the first load,
   *   and optionally scenarioShown(scenario) (after the select is filled; it is filled again on a new scenario),
   *   questionShown(next, data), answersHead(list, data), answerExtra(dd, item, question).
   * }
   */
  function create(page) {
    var state = { lang: "da", scenario: "", answers: {}, asked: [], scenarios: [], questions: {} };
    var noPrint = page.printable ? " no-print" : "";

    var tables = {};

    // The words in the state's language (Danish when the page has no table for it): the interview's and the page's.
    function words() {
      var lang = page.words[state.lang] ? state.lang : "da";
      if (!tables[lang]) tables[lang] = Object.assign({}, WORDS[lang], page.words[lang]);
      return tables[lang];
    }

    function writeUrl() {
      var query = KB.answersQuery(state);
      window.history.replaceState(null, "", window.location.pathname + "?" + query);
      page.urlChanged(query);
    }

    function applyTexts() {
      KB.applyTexts(words(), state.lang);
      document.title = words().pageTitle;
    }

    // --- API ------------------------------------------------------------------------------------

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

    function loadResult() {
      if (!state.scenario) return Promise.resolve();
      var status = $("status");
      status.textContent = words().loading;
      return KB.getJSON(page.resultUrl, {
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

    // --- rendering ------------------------------------------------------------------------------

    function scenarioLabel(s) {
      return state.lang === "en" ? s.label.en : s.label.da;
    }

    function chosenScenario() {
      return state.scenarios.filter(function (s) { return s.id === state.scenario; })[0];
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
      if (page.scenarioShown) page.scenarioShown(chosenScenario());
    }

    function optionLabel(key, value) {
      if (value === "unknown") return words().dontKnow;
      var q = state.questions[key];
      var match = q ? q.options.filter(function (o) { return o.value === value; })[0] : null;
      return match ? match.label : value;
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

    function renderQuestion(data) {
      var next = data.questions[0];
      var options = $("question-options");
      clear(options);
      $("ask").hidden = false;
      $(page.questionId).hidden = !next;
      $("done").hidden = !!next;
      if (page.questionShown) page.questionShown(next, data);
      if (!next) return;
      $("question").setAttribute("data-key", next.key);
      $("question-text").textContent = next.text;
      $("question-help").textContent = next.help;
      optionButtons(next).forEach(function (button) {
        options.appendChild(button);
      });
    }

    function renderAnswers(data) {
      var w = words();
      var list = $("answer-list");
      clear(list);
      if (page.answersHead) page.answersHead(list, data);
      Object.keys(data.answers).forEach(function (key) {
        var item = data.answers[key];
        var q = state.questions[key];
        list.appendChild(el("dt", null, q ? q.text : key));
        var dd = el("dd");
        dd.setAttribute("data-key", key);
        dd.appendChild(el("span", "answer-value", optionLabel(key, item.value)));
        if (w.source[item.source]) dd.appendChild(el("span", page.sourceClass, " (" + w.source[item.source] + ")"));
        if (item.source === "answer") {
          var change = el("button", "link-button" + noPrint, w.change);
          change.type = "button";
          change.addEventListener("click", function () {
            unanswer(key);
          });
          dd.appendChild(document.createTextNode(" "));
          dd.appendChild(change);
        } else if (page.answerExtra) {
          page.answerExtra(dd, item, q);
        }
        list.appendChild(dd);
      });
      $("answers").hidden = !list.firstChild;
    }

    function render(data) {
      renderQuestion(data);
      renderAnswers(data);
      page.render(data);
      $(page.resultId).hidden = false;
    }

    /** A button that opens the passage `passageId` (cited as `ref`) in place. */
    function refButton(ref, passageId, title) {
      var button = el("button", "ref-button", ref);
      button.type = "button";
      button.setAttribute("data-ref", ref);
      button.setAttribute("data-passage-id", passageId);
      button.setAttribute("aria-expanded", "false");
      if (title) button.title = title;
      return button;
    }

    /** "Depends on: " and the questions `keys` name. */
    function dependsOn(keys) {
      var names = keys.map(function (key) {
        return state.questions[key] ? state.questions[key].text : key;
      });
      return words().dependsOn + names.join(" · ");
    }

    // --- passages in place ----------------------------------------------------------------------

    function togglePassage(button) {
      var item = button.closest(page.itemSelector);
      var panel = item.querySelector(".passage-panel");
      var expanded = button.getAttribute("aria-expanded") === "true";
      Array.prototype.forEach.call(item.querySelectorAll(".ref-button"), function (b) {
        b.setAttribute("aria-expanded", "false");
      });
      clear(panel);
      if (expanded) {
        panel.hidden = true;
        return;
      }
      button.setAttribute("aria-expanded", "true");
      panel.hidden = false;
      var close = el("button", "link-button passage-close" + noPrint, words().closePassage);
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

    // --- actions --------------------------------------------------------------------------------

    function answer(key, value) {
      state.answers[key] = value;
      if (state.asked.indexOf(key) < 0) state.asked.push(key);
      writeUrl();
      loadResult().then(function () {
        var next = document.querySelector("#question-options .option");
        if (next && !$(page.questionId).hidden) next.focus();
      });
    }

    function unanswer(key) {
      delete state.answers[key];
      state.asked = state.asked.filter(function (k) { return k !== key; });
      writeUrl();
      loadResult();
    }

    function chooseScenario(id) {
      state.scenario = id;
      state.answers = {};
      state.asked = [];
      writeUrl();
      if (page.scenarioShown) page.scenarioShown(chosenScenario());
      if (!id) {
        $("ask").hidden = true;
        $("answers").hidden = true;
        $(page.resultId).hidden = true;
        return;
      }
      loadQuestions().then(loadResult);
    }

    function switchLanguage(lang) {
      state.lang = lang;
      writeUrl();
      applyTexts();
      renderScenarioSelect();
      loadQuestions().then(loadResult);
    }

    function run() {
      Object.assign(state, KB.readAnswers(window.location.search)); // lang, scenario, answers, asked
      applyTexts();
      page.started();
      $("scenario-select").addEventListener("change", function (event) {
        chooseScenario(event.target.value);
      });
      Array.prototype.forEach.call(document.querySelectorAll(".lang-switch button"), function (button) {
        button.addEventListener("click", function () {
          switchLanguage(button.getAttribute("data-lang"));
        });
      });
      $(page.listId).addEventListener("click", function (event) {
        var button = event.target.closest(".ref-button");
        if (button) togglePassage(button);
      });
      loadScenarios()
        .then(loadQuestions)
        .then(loadResult)
        .catch(function (error) {
          $("status").textContent = words().failed + error.message;
        });
    }

    /** Runs the interview once the document is parsed. */
    function start() {
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
      else run();
    }

    return {
      state: state,
      words: words,
      writeUrl: writeUrl,
      scenarioLabel: scenarioLabel,
      chosenScenario: chosenScenario,
      optionButtons: optionButtons,
      refButton: refButton,
      dependsOn: dependsOn,
      start: start,
    };
  }

  window.KBInterview = { create: create };
})();
