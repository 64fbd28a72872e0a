/*
 * The chat widget. One script tag embeds it in any page:
 *
 *   <script src="https://kb.example.dk/widget.js" data-kb-url="https://kb.example.dk" data-lang="da"></script>
 *
 * Everything it loads (its stylesheet, the passage view) comes from data-kb-url; it lives in a Shadow DOM so the
 * host page's styles and its own never mix. Questions, answers and passages are put in the page as text only.
 * The conversation lasts for the browser session (sessionStorage).
 * This file needs common.js before it: the service serves both as one script at /widget.js (service/routes/pages.py).
 */
(function () {
  "use strict";

  if (window.__kbChatWidget) return; // embedded twice: one widget
  window.__kbChatWidget = true;

  // the shared helpers (common.js), served in front of this file as /widget.js: the host page needs one tag only
  var KB = window.KBCommon;
  var el = KB.el;
  var clear = KB.clear;

  var script =
    document.currentScript || document.querySelector('script[src$="/widget.js"], script[src="widget.js"]');
  var scriptOrigin = script && script.src ? new URL(script.src, window.location.href).origin : window.location.origin;
  var KB_URL = ((script && script.getAttribute("data-kb-url")) || scriptOrigin).replace(/\/+$/, "");
  var STORE_KEY = "kb-chat-widget:" + KB_URL;

  var TEXT = {
    da: {
      open: "Spørg om udbud af klinisk AI",
      title: "Spørg vidensbasen",
      close: "Luk",
      language: "Sprog",
      scenarioLegend: "Hvor er I i forløbet?",
      auto: "Find det for mig",
      autoDescription: "Scenariet udledes af spørgsmålet.",
      question: "Dit spørgsmål",
      placeholder: "Fx: Hvilke pligter har en idriftsætter af et højrisiko-AI-system?",
      send: "Send",
      thinking: "Finder svar …",
      you: "Dig",
      kb: "Vidensbasen",
      scenarioChosen: "Scenarie: {label} (valgt af dig)",
      scenarioInferred: "Scenarie: {label} (udledt af spørgsmålet, sikkerhed {confidence} %)",
      scenarioNone: "Intet klart scenarie – vælg et scenarie",
      scenarioNoneNote: "Svaret antager intet scenarie. Vælg et, og spørg igen:",
      scenarioAskAgain: "Spørg igen som {label}",
      declined:
        "Vidensbasen kan ikke besvare dette spørgsmål ud fra de kilder, den har. Her er de nærmeste passager:",
      nearest: "Nærmeste passager",
      copy: "Kopiér som notat",
      copied: "Kopieret",
      sources: "Kilder",
      citation: "Kilde {n}: {ref}",
      back: "Tilbage til samtalen",
      passage: "Kilde",
      clear: "Ryd samtalen",
      error: "Der opstod en fejl: {message}",
      empty: "Skriv et spørgsmål først.",
      intro: "Stil et spørgsmål om lov, vejledning og kontrakter for indkøb af AI til hospitaler. Svarene citerer kilderne.",
      // the reading view (issue 19)
      scenarioFold: "Scenarie: {label} · skift",
      wide: "Bredere visning",
      partDirect: "Svar",
      partScenario: "I scenariet",
      partSources: "Kilder",
      seeAlso: "Se også",
      amendedBy: "ændret ved {act}",
      nextSteps: "Næste skridt",
      roadmap: "Køreplan for {label}",
      contract: "Kontraktudkast for {label}",
      memo: "Hent som notat (DOCX)",
      memoQuestion: "Spørgsmål",
      memoDate: "Dato",
      memoScenario: "Scenarie",
      memoReferences: "Henvisninger",
      notes: "Bemærk",
      partial:
        "Svaret er foreløbigt: vidensbasen bygges stadig, og nogle tekster findes indtil videre kun ved søgning på ord.",
    },
    en: {
      open: "Ask about procuring clinical AI",
      title: "Ask the knowledge base",
      close: "Close",
      language: "Language",
      scenarioLegend: "Where are you in the process?",
      auto: "Find it for me",
      autoDescription: "The scenario is inferred from the question.",
      question: "Your question",
      placeholder: "E.g.: What must a deployer of a high-risk AI system do?",
      send: "Send",
      thinking: "Finding an answer …",
      you: "You",
      kb: "Knowledge base",
      scenarioChosen: "Scenario: {label} (chosen by you)",
      scenarioInferred: "Scenario: {label} (inferred from the question, confidence {confidence} %)",
      scenarioNone: "No clear scenario – choose a scenario",
      scenarioNoneNote: "The answer assumes no scenario. Choose one and ask again:",
      scenarioAskAgain: "Ask again as {label}",
      declined: "The knowledge base cannot answer this question from the sources it holds. The nearest passages:",
      nearest: "Nearest passages",
      copy: "Copy as memo",
      copied: "Copied",
      sources: "Sources",
      citation: "Source {n}: {ref}",
      back: "Back to the conversation",
      passage: "Source",
      clear: "Clear the conversation",
      error: "Something went wrong: {message}",
      empty: "Write a question first.",
      intro: "Ask about law, guidance and contracts for buying AI for hospitals. The answers cite their sources.",
      // the reading view (issue 19)
      scenarioFold: "Scenario: {label} · change",
      wide: "Wider view",
      partDirect: "Answer",
      partScenario: "In the scenario",
      partSources: "Sources",
      seeAlso: "See also",
      amendedBy: "amended by {act}",
      nextSteps: "Next steps",
      roadmap: "Roadmap for {label}",
      contract: "Contract draft for {label}",
      memo: "Download as memo (DOCX)",
      memoQuestion: "Question",
      memoDate: "Date",
      memoScenario: "Scenario",
      memoReferences: "References",
      notes: "Note",
      partial:
        "A provisional answer: the knowledge base is still being built, and some texts are found by keyword search only for now.",
    },
  };

  // --- state kept for the browser session -------------------------------------------------------------------
  var state = loadState();

  function loadState() {
    var initial = { lang: (script && script.getAttribute("data-lang")) === "en" ? "en" : "da", scenario: "", turns: [] };
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(STORE_KEY) || "null");
      if (saved && Array.isArray(saved.turns)) {
        return { lang: saved.lang === "en" ? "en" : "da", scenario: saved.scenario || "", turns: saved.turns, wide: !!saved.wide };
      }
    } catch (e) {
      /* storage blocked or corrupt: start afresh */
    }
    return initial;
  }

  function saveState() {
    try {
      window.sessionStorage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (e) {
      /* storage full or blocked: the conversation just does not survive a reload */
    }
  }

  var t = KB.translator(TEXT, function () {
    return state.lang;
  });

  // --- DOM helpers: text only, never HTML (el and clear: common.js) ------------------------------------------
  function button(className, text, onClick) {
    var node = el("button", className, text);
    node.type = "button";
    if (onClick) node.addEventListener("click", onClick);
    return node;
  }

  // --- the shadow root and its parts -------------------------------------------------------------------------
  var host = el("div");
  host.id = "kb-chat-widget";
  var root = host.attachShadow({ mode: "open" });
  ["widget.css", "passage-view.css", "build-banner.css"].forEach(function (name) {
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = KB_URL + "/static/" + name;
    root.appendChild(link);
  });

  var launcher = button("kbw-launcher", "", togglePanel);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "kbw-panel");
  var launcherIcon = el("span", "kbw-launcher-icon", "?");
  launcherIcon.setAttribute("aria-hidden", "true");
  var launcherLabel = el("span", "kbw-launcher-label");
  launcher.appendChild(launcherIcon);
  launcher.appendChild(launcherLabel);

  var panel = el("section", "kbw-panel");
  panel.id = "kbw-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "false");
  panel.setAttribute("aria-labelledby", "kbw-title");
  panel.hidden = true;

  var header = el("header", "kbw-header");
  var title = el("h2", "kbw-title");
  title.id = "kbw-title";
  var langGroup = el("div", "kbw-lang");
  langGroup.setAttribute("role", "group");
  var langButtons = {};
  ["da", "en"].forEach(function (lang) {
    var b = button("kbw-lang-button", lang.toUpperCase(), function () {
      setLanguage(lang);
    });
    b.setAttribute("lang", lang);
    b.setAttribute("data-lang", lang);
    langButtons[lang] = b;
    langGroup.appendChild(b);
  });
  var closeButton = button("kbw-close", "×", closePanel);
  var wideButton = button("kbw-wide", "⤢", toggleWide);
  header.appendChild(title);
  header.appendChild(langGroup);
  header.appendChild(wideButton);
  header.appendChild(closeButton);

  var body = el("div", "kbw-body");
  var conversation = el("div", "kbw-conversation");
  var intro = el("p", "kbw-intro");
  var log = el("div", "kbw-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-relevant", "additions text");
  conversation.appendChild(intro);
  conversation.appendChild(log);

  var form = el("form", "kbw-form");
  form.noValidate = true;
  var scenarioSet = el("fieldset", "kbw-scenarios");
  scenarioSet.id = "kbw-scenarios";
  var formBar = el("div", "kbw-form-bar"); // after the first question: the folded picker and "clear"
  var scenarioFold = button("kbw-scenario-fold", "", openPicker);
  scenarioFold.setAttribute("aria-controls", "kbw-scenarios");
  scenarioFold.setAttribute("aria-expanded", "false");
  formBar.appendChild(scenarioFold);
  var scenarioLegend = el("legend");
  scenarioSet.appendChild(scenarioLegend);
  var scenarioList = el("div", "kbw-scenario-list");
  scenarioSet.appendChild(scenarioList);
  var scenarios = []; // from /api/scenarios
  var questionLabel = el("label", "kbw-question-label");
  questionLabel.htmlFor = "kbw-question";
  var question = el("textarea", "kbw-question");
  question.id = "kbw-question";
  question.name = "question";
  question.rows = 2;
  question.maxLength = 2000;
  var formRow = el("div", "kbw-form-row");
  var sendButton = el("button", "kbw-send");
  sendButton.type = "submit";
  var clearButton = button("kbw-clear", "", clearConversation);
  var formMessage = el("p", "kbw-form-message");
  formMessage.setAttribute("role", "status");
  formRow.appendChild(question);
  formRow.appendChild(sendButton);
  formBar.appendChild(clearButton);
  form.appendChild(formBar);
  form.appendChild(scenarioSet);
  form.appendChild(questionLabel);
  form.appendChild(formRow);
  form.appendChild(formMessage);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitQuestion();
  });
  question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      submitQuestion();
    }
  });

  var side = el("aside", "kbw-side");
  side.hidden = true;
  side.setAttribute("role", "region");
  side.setAttribute("aria-labelledby", "kbw-side-title");
  var sideTitle = el("h3", "kbw-side-title");
  sideTitle.id = "kbw-side-title";
  var backButton = button("kbw-back", "", closeSide);
  var sideHead = el("div", "kbw-side-head");
  sideHead.appendChild(backButton);
  sideHead.appendChild(sideTitle);
  var sideContent = el("div", "kbw-passage");
  side.appendChild(sideHead);
  side.appendChild(sideContent);
  var lastChip = null;

  // while the knowledge base is still being built: how far, and that some answers rest on keyword search only
  var buildBanner = el("p", "kbw-build-banner kb-build-banner");
  buildBanner.hidden = true;
  var bannerWatch = null;
  function watchBuild() {
    bannerWatch = window.KBBuildBanner.watch(buildBanner, {
      baseUrl: KB_URL,
      lang: function () {
        return state.lang;
      },
    });
  }
  if (window.KBBuildBanner) {
    watchBuild();
  } else {
    var bannerScript = document.createElement("script");
    bannerScript.src = KB_URL + "/static/build-banner.js";
    bannerScript.addEventListener("load", watchBuild);
    document.head.appendChild(bannerScript);
  }

  body.appendChild(conversation);
  body.appendChild(form);
  panel.appendChild(header);
  panel.appendChild(buildBanner);
  panel.appendChild(body);
  panel.appendChild(side);
  root.appendChild(launcher);
  root.appendChild(panel);

  panel.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    if (!side.hidden) closeSide();
    else closePanel();
  });

  // --- interface language ------------------------------------------------------------------------------------
  function applyLanguage() {
    host.setAttribute("lang", state.lang);
    launcherLabel.textContent = t("open");
    launcher.setAttribute("aria-label", t("open"));
    title.textContent = t("title");
    langGroup.setAttribute("aria-label", t("language"));
    Object.keys(langButtons).forEach(function (lang) {
      langButtons[lang].setAttribute("aria-pressed", String(lang === state.lang));
    });
    closeButton.setAttribute("aria-label", t("close"));
    wideButton.setAttribute("aria-label", t("wide"));
    wideButton.title = t("wide");
    intro.textContent = t("intro");
    if (bannerWatch) bannerWatch.render();
    scenarioLegend.textContent = t("scenarioLegend");
    questionLabel.textContent = t("question");
    question.placeholder = t("placeholder");
    sendButton.textContent = t("send");
    clearButton.textContent = t("clear");
    backButton.textContent = "← " + t("back");
    sideTitle.textContent = t("passage");
    renderScenarios();
    renderLog();
    applyReading();
  }

  function setLanguage(lang) {
    state.lang = lang;
    saveState();
    applyLanguage();
  }

  // --- scenario picker ---------------------------------------------------------------------------------------
  function renderScenarios() {
    clear(scenarioList);
    var options = [{ id: "", label: t("auto"), description: t("autoDescription") }].concat(
      scenarios.map(function (s) {
        return { id: s.id, label: s.label[state.lang] || s.id, description: s.description[state.lang] || "" };
      })
    );
    options.forEach(function (option) {
      var id = "kbw-scenario-" + (option.id || "auto");
      var wrapper = el("div", "kbw-scenario");
      var input = el("input");
      input.type = "radio";
      input.name = "scenario";
      input.id = id;
      input.value = option.id;
      input.checked = option.id === state.scenario;
      input.addEventListener("change", function () {
        state.scenario = option.id;
        saveState();
        applyReading();
      });
      var label = el("label");
      label.htmlFor = id;
      label.appendChild(el("span", "kbw-scenario-label", option.label));
      label.appendChild(el("span", "kbw-scenario-description", option.description));
      wrapper.appendChild(input);
      wrapper.appendChild(label);
      scenarioList.appendChild(wrapper);
    });
  }

  function loadScenarios() {
    return fetch(KB_URL + "/api/scenarios", { headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.ok ? r.json() : [];
      })
      .then(function (list) {
        scenarios = list;
        renderScenarios();
        applyReading();
      })
      .catch(function () {
        /* the picker keeps "find it for me"; asking still works */
      });
  }

  // --- the conversation --------------------------------------------------------------------------------------
  function scenarioLine(scenario) {
    if (!scenario) return "";
    if (scenario.id === null || scenario.id === undefined) return t("scenarioNone");
    if (scenario.inferred) {
      return t("scenarioInferred", { label: scenario.label, confidence: Math.round((scenario.confidence || 0) * 100) });
    }
    return t("scenarioChosen", { label: scenario.label });
  }

  /** No clear scenario: the picker's choices, each asking the question again in that scenario. */
  function scenarioChoices(turn) {
    var box = el("div", "kbw-scenario-none");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", t("scenarioNone"));
    box.appendChild(el("p", "kbw-scenario-note", t("scenarioNoneNote")));
    scenarios.forEach(function (s) {
      var label = s.label[state.lang] || s.id;
      var choice = button("kbw-scenario-choice", label, function () {
        state.scenario = s.id;
        saveState();
        renderScenarios();
        question.value = turn.question;
        submitQuestion();
      });
      choice.setAttribute("data-scenario", s.id);
      choice.setAttribute("aria-label", t("scenarioAskAgain", { label: label }));
      choice.title = s.description[state.lang] || "";
      box.appendChild(choice);
    });
    return box;
  }

  /** The answer text with each [n] turned into a chip that opens its passage. */
  function answerText(container, text, citations) {
    clear(container);
    var byNumber = {};
    (citations || []).forEach(function (c) {
      byNumber[c.n] = c;
    });
    var pattern = /\[(\d+)\]/g;
    var last = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) container.appendChild(document.createTextNode(text.slice(last, match.index)));
      var citation = byNumber[Number(match[1])];
      container.appendChild(citation ? chip(citation) : document.createTextNode(match[0]));
      last = pattern.lastIndex;
    }
    if (last < text.length) container.appendChild(document.createTextNode(text.slice(last)));
  }

  function chip(citation) {
    var node = button("kbw-chip", "[" + citation.n + "]", function () {
      openPassage(citation.passage_id, node);
    });
    node.setAttribute("data-passage-id", citation.passage_id);
    node.setAttribute("data-ref", citation.ref);
    node.setAttribute("data-doc-id", citation.doc_id);
    node.setAttribute("aria-label", t("citation", { n: citation.n, ref: citation.ref }));
    node.title = citation.ref + (citation.heading ? " – " + citation.heading : "");
    return node;
  }

  function passageList(passages, className) {
    var list = el("ul", className);
    passages.forEach(function (p) {
      var item = el("li");
      var open = button("kbw-nearest", "", function () {
        openPassage(p.passage_id, open);
      });
      open.setAttribute("data-passage-id", p.passage_id);
      open.appendChild(el("span", "kbw-nearest-ref", p.ref));
      open.appendChild(el("span", "kbw-nearest-heading", p.heading || p.title || ""));
      item.appendChild(open);
      list.appendChild(item);
    });
    return list;
  }

  /** The answer as a memo to paste: question, date, scenario, the answer, numbered references with versions. */
  function copyText(turn) {
    var lines = [
      t("memoQuestion") + ": " + turn.question,
      t("memoDate") + ": " + new Date().toISOString().slice(0, 10),
      t("memoScenario") + ": " + (turn.scenario ? turn.scenario.label : t("auto")),
      "",
      turn.text.trim(),
    ];
    var notes = (turn.partial ? [t("partial")] : []).concat(turn.notes || []);
    if (notes.length) lines.push("", t("notes") + ":", notes.join("\n"));
    var cited = turn.citations || [];
    if (cited.length) {
      lines.push("", t("memoReferences") + ":");
      cited.forEach(function (c) {
        var version = [c.version, versionNote(c)].filter(Boolean).join(", ");
        lines.push("[" + c.n + "] " + c.ref + " – " + (c.heading || "") + " (" + version + ")" + (c.url ? ": " + c.url : ""));
      });
    }
    return lines.join("\n");
  }

  function copyAnswer(turn, copyButton) {
    var text = copyText(turn);
    function done() {
      copyButton.textContent = t("copied");
      copyButton.setAttribute("data-copied", "true");
      window.setTimeout(function () {
        copyButton.textContent = t("copy");
      }, 2000);
    }
    function fallback() {
      // older browsers and non-secure pages: a hidden textarea and the copy command
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try {
        document.execCommand("copy");
      } finally {
        document.body.removeChild(area);
      }
      done();
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  function renderTurn(turn, index) {
    var item = el("div", "kbw-turn");
    item.setAttribute("data-turn", String(index));
    var asked = el("div", "kbw-message kbw-question-message");
    asked.appendChild(el("span", "kbw-speaker", t("you")));
    asked.appendChild(el("p", "kbw-question-text", turn.question));
    item.appendChild(asked);

    var answer = el("div", "kbw-message kbw-answer");
    answer.setAttribute("data-state", turn.state || "done");
    answer.appendChild(el("span", "kbw-speaker", t("kb")));
    if (turn.scenario) answer.appendChild(el("p", "kbw-scenario-line", scenarioLine(turn.scenario)));
    if (turn.scenario && turn.scenario.id === null && turn.state !== "streaming") answer.appendChild(scenarioChoices(turn));
    if (turn.error) {
      var problem = el("p", "kbw-error", t("error", { message: turn.error }));
      problem.setAttribute("role", "alert");
      answer.appendChild(problem);
    } else if (turn.abstained) {
      answer.setAttribute("data-declined", "true");
      answer.appendChild(el("p", "kbw-declined", t("declined")));
      answer.appendChild(passageList(turn.see_also || [], "kbw-nearest-list"));
      var declinedNotes = answerNotes(turn, index); // a partial index may decline what the whole one answers
      if (declinedNotes) answer.appendChild(declinedNotes);
    } else {
      var text = el("div", "kbw-answer-text");
      if (turn.language && turn.language !== state.lang) text.setAttribute("lang", turn.language); // WCAG 3.1.2
      if (turn.state !== "streaming" && turn.sections && turn.sections.length) {
        text.classList.add("kbw-answer-parts");
        renderParts(text, turn);
      } else answerText(text, turn.text || "", turn.citations);
      answer.appendChild(text);
      if (turn.state !== "streaming") {
        var notes = answerNotes(turn, index);
        if (notes) answer.appendChild(notes);
      }
      if (turn.state === "streaming") answer.appendChild(el("p", "kbw-thinking", t("thinking")));
      if (turn.state !== "streaming" && turn.text) {
        var copyButton = button("kbw-copy", t("copy"), function () {
          copyAnswer(turn, copyButton);
        });
        answer.appendChild(copyButton);
        answer.appendChild(nextSteps(turn));
      }
    }
    item.appendChild(answer);
    return item;
  }

  /**
   * What the reader must know to weigh the answer: that it is provisional while the knowledge base is built (said in
   * the interface language) and the server's notes on the versions quoted (in the answer's language, marked as such
   * when it is not the interface's): e.g. that the Danish text is the original and the wording in force is English.
   */
  function answerNotes(turn, index) {
    var lines = [];
    if (turn.partial) lines.push({ text: t("partial"), lang: state.lang });
    (turn.notes || []).forEach(function (note) {
      lines.push({ text: note, lang: turn.language || state.lang });
    });
    if (!lines.length) return null;
    var box = el("section", "kbw-notes");
    var headingId = "kbw-notes-" + index;
    box.setAttribute("aria-labelledby", headingId);
    var heading = el("h3", "kbw-notes-heading", t("notes"));
    heading.id = headingId;
    box.appendChild(heading);
    var list = el("ul", "kbw-notes-list");
    lines.forEach(function (line) {
      var item = el("li", "kbw-note", line.text);
      if (line.lang !== state.lang) item.setAttribute("lang", line.lang);
      list.appendChild(item);
    });
    box.appendChild(list);
    return box;
  }

  function renderLog() {
    clear(log);
    state.turns.forEach(function (turn, index) {
      log.appendChild(renderTurn(turn, index));
    });
  }

  function updateTurn(index) {
    var old = log.querySelector('[data-turn="' + index + '"]');
    var fresh = renderTurn(state.turns[index], index);
    if (old) log.replaceChild(fresh, old);
    else log.appendChild(fresh);
    applyReading();
    keepInView(index);
  }

  function clearConversation() {
    state.turns = [];
    saveState();
    renderLog();
    applyReading();
    question.focus();
  }

  // --- asking: server-sent events over a POST ----------------------------------------------------------------
  function parseEvents(buffer, onEvent) {
    var blocks = buffer.split(/\r?\n\r?\n/);
    var rest = blocks.pop();
    blocks.forEach(function (block) {
      var name = "message";
      var data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (line.indexOf("event:") === 0) name = line.slice(6).trim();
        else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
      });
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    });
    return rest;
  }

  function ask(turn, index) {
    var payload = { question: turn.question };
    if (turn.chosen) payload.scenario = turn.chosen;
    return fetch(KB_URL + "/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(payload),
    }).then(function (response) {
      if (!response.ok) return KB.failure(response);
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function onEvent(name, data) {
        if (name === "scenario") turn.scenario = data;
        else if (name === "citations") turn.citations = data;
        else if (name === "answer") turn.text = (turn.text || "") + data.text;
        else if (name === "done") {
          turn.abstained = data.abstained;
          turn.see_also = data.see_also;
          turn.sections = data.sections || [];
          turn.notes = data.notes || [];
          turn.partial = !!data.partial;
          if (data.language) turn.language = data.language;
          turn.state = "done";
        }
        updateTurn(index);
      }
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            buffer = parseEvents(buffer + decoder.decode() + "\n\n", onEvent);
            return;
          }
          buffer = parseEvents(buffer + decoder.decode(chunk.value, { stream: true }), onEvent);
          return pump();
        });
      }
      return pump();
    });
  }

  var busy = false;

  function submitQuestion() {
    var text = question.value.trim();
    if (!text) {
      formMessage.textContent = t("empty");
      question.focus();
      return;
    }
    if (busy) return;
    busy = true;
    pickerOpen = false;
    readerMoved = false;
    formMessage.textContent = "";
    sendButton.disabled = true;
    var turn = { question: text, chosen: state.scenario || null, text: "", citations: [], state: "streaming" };
    state.turns.push(turn);
    var index = state.turns.length - 1;
    updateTurn(index);
    question.value = "";
    ask(turn, index)
      .catch(function (error) {
        turn.error = error.message || String(error);
      })
      .then(function () {
        turn.state = "done";
        updateTurn(index);
        saveState();
        busy = false;
        sendButton.disabled = false;
        question.focus();
      });
  }

  // --- the passage side panel --------------------------------------------------------------------------------
  var passageViewLoading = null;

  function passageView() {
    if (window.KBPassageView) return Promise.resolve(window.KBPassageView);
    if (!passageViewLoading) {
      passageViewLoading = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = KB_URL + "/static/passage-view.js";
        tag.onload = function () {
          resolve(window.KBPassageView);
        };
        tag.onerror = function () {
          passageViewLoading = null;
          reject(new Error("passage-view.js"));
        };
        document.head.appendChild(tag);
      });
    }
    return passageViewLoading;
  }

  function openPassage(passageId, opener) {
    lastChip = opener || null;
    side.hidden = false;
    panel.classList.add("kbw-side-open");
    passageView().then(
      function (view) {
        return view.render(sideContent, passageId, { baseUrl: KB_URL, lang: state.lang });
      },
      function (error) {
        clear(sideContent);
        sideContent.appendChild(el("p", "kbw-error", t("error", { message: error.message })));
      }
    );
    backButton.focus();
  }

  function closeSide() {
    side.hidden = true;
    panel.classList.remove("kbw-side-open");
    if (lastChip && lastChip.isConnected) lastChip.focus();
  }

  // --- the reading view (issue 19): room for the answer, its parts shown as parts ---------------------------------
  var pickerOpen = false; // after the first question the picker folds into one line until the reader opens it
  var readerMoved = false; // the reader scrolled the conversation: it stops following the text

  function currentScenarioLabel() {
    var chosen = scenarios.filter(function (s) {
      return s.id === state.scenario;
    })[0];
    return chosen ? chosen.label[state.lang] || chosen.id : t("auto");
  }

  function applyReading() {
    var reading = state.turns.length > 0;
    var folded = reading && !pickerOpen;
    if (reading) panel.setAttribute("data-reading", "true");
    else panel.removeAttribute("data-reading");
    scenarioSet.hidden = folded;
    formBar.hidden = !reading;
    scenarioFold.hidden = !folded;
    scenarioFold.setAttribute("aria-expanded", String(!folded));
    scenarioFold.textContent = t("scenarioFold", { label: currentScenarioLabel() });
    panel.classList.toggle("kbw-wide-open", !!state.wide);
    wideButton.setAttribute("aria-pressed", String(!!state.wide));
  }

  function openPicker() {
    pickerOpen = true;
    applyReading();
    var checked = scenarioList.querySelector("input:checked") || scenarioList.querySelector("input");
    if (checked) checked.focus();
  }

  function toggleWide() {
    state.wide = !state.wide;
    saveState();
    applyReading();
  }

  /** Follow the text as it grows, but never past the turn's first line; not at all once the reader has scrolled. */
  function keepInView(index) {
    var node = log.querySelector('[data-turn="' + index + '"]');
    if (!node || readerMoved || panel.hidden) return;
    var top = conversation.scrollTop + node.getBoundingClientRect().top - conversation.getBoundingClientRect().top;
    var bottom = conversation.scrollHeight - conversation.clientHeight;
    conversation.scrollTop = Math.max(0, Math.min(bottom, top - 4));
  }

  ["wheel", "touchmove", "keydown"].forEach(function (name) {
    conversation.addEventListener(
      name,
      function () {
        readerMoved = true;
      },
      { passive: true }
    );
  });

  function versionNote(citation) {
    if (citation.version_note) return citation.version_note;
    if (citation.amended_by) {
      var act = Array.isArray(citation.amended_by) ? citation.amended_by.join(", ") : citation.amended_by;
      return t("amendedBy", { act: act });
    }
    return "";
  }

  /** A cited passage's reference and version, beside a quote or in the sources. */
  function sourceNote(citation, withHeading) {
    var note = el("span", "kbw-source");
    note.appendChild(chip(citation));
    note.appendChild(el("span", "kbw-source-ref", citation.ref + (withHeading && citation.heading ? " – " + citation.heading : "")));
    var version = [citation.version, versionNote(citation)].filter(Boolean).join(", ");
    if (version) note.appendChild(el("span", "kbw-source-version", version));
    return note;
  }

  var TRAILING_MARKS = /((?:\s*\[\d+\])+)\s*$/;

  /** A line of the direct answer or the scenario part: a quote (it ends in [n]) with its sources beside it. */
  function partLine(line, byNumber) {
    var trailing = line.match(TRAILING_MARKS);
    if (!trailing) {
      var plain = el("p", "kbw-part-text");
      answerText(plain, line, Object.keys(byNumber).map(function (n) {
        return byNumber[n];
      }));
      return plain;
    }
    var figure = el("figure", "kbw-quote");
    var quote = el("blockquote", "kbw-quote-text");
    answerText(quote, line.slice(0, trailing.index), Object.keys(byNumber).map(function (n) {
      return byNumber[n];
    }));
    figure.appendChild(quote);
    var caption = el("figcaption", "kbw-quote-source");
    var seen = {};
    (line.match(/\[(\d+)\]/g) || []).forEach(function (mark) {
      var citation = byNumber[Number(mark.slice(1, -1))];
      if (!citation || seen[citation.n]) return;
      seen[citation.n] = true;
      caption.appendChild(sourceNote(citation, false));
    });
    figure.appendChild(caption);
    // the quote is in its passage's language, which may not be the answer's (a Danish answer quotes the English
    // wording in force of an amended provision): WCAG 3.1.2
    var quoted = byNumber[Number(((line.match(/\[(\d+)\]/) || [])[1]))];
    if (quoted && quoted.language) quote.setAttribute("lang", quoted.language);
    return figure;
  }

  /** Under an answer: the roadmap and the contract draft for its scenario, and the memo to download. */
  function nextSteps(turn) {
    var nav = el("nav", "kbw-next");
    nav.setAttribute("aria-label", t("nextSteps"));
    var id = turn.scenario && turn.scenario.id;
    if (id) {
      ["roadmap", "contract"].forEach(function (page) {
        var link = el("a", "kbw-next-link kbw-next-" + page, t(page, { label: turn.scenario.label }));
        link.href = KB_URL + "/" + page + "?scenario=" + encodeURIComponent(id);
        link.target = "_blank";
        link.rel = "noopener";
        nav.appendChild(link);
      });
    }
    var download = button("kbw-memo", t("memo"), function () {
      downloadMemo(turn, download);
    });
    nav.appendChild(download);
    return nav;
  }

  function downloadMemo(turn, control) {
    var payload = { question: turn.question };
    if (turn.chosen) payload.scenario = turn.chosen;
    control.disabled = true;
    fetch(KB_URL + "/api/memo", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status + " " + response.statusText);
        return response.blob();
      })
      .then(function (blob) {
        var link = document.createElement("a");
        link.href = URL.createObjectURL(blob);
        link.download = state.lang === "da" ? "notat.docx" : "memo.docx";
        document.body.appendChild(link);
        link.click();
        document.body.removeChild(link);
        window.setTimeout(function () {
          URL.revokeObjectURL(link.href);
        }, 10000);
      })
      .catch(function (error) {
        formMessage.textContent = t("error", { message: error.message || String(error) });
      })
      .then(function () {
        control.disabled = false;
      });
  }

  function renderParts(container, turn) {
    clear(container);
    var byNumber = {};
    (turn.citations || []).forEach(function (c) {
      byNumber[c.n] = c;
    });
    var defaults = { direct: t("partDirect"), scenario: t("partScenario"), sources: t("partSources") };
    // the parts are the server's, in the answer's language (and marked so): the see-also line inside them too
    var inAnswer = KB.translator(TEXT, function () {
      return turn.language || state.lang;
    });
    turn.sections.forEach(function (section) {
      var part = el("section", "kbw-part");
      part.setAttribute("data-kind", section.kind);
      part.appendChild(el("h3", "kbw-part-heading", section.heading || defaults[section.kind] || ""));
      if (section.kind === "sources") {
        [section.citations, section.see_also].forEach(function (numbers, i) {
          var cited = (numbers || []).map(function (n) {
            return byNumber[n];
          }).filter(Boolean);
          if (!cited.length) return;
          if (i === 1) part.appendChild(el("h4", "kbw-part-subheading", inAnswer("seeAlso")));
          var list = el("ul", "kbw-sources");
          cited.forEach(function (c) {
            var item = el("li");
            item.appendChild(sourceNote(c, true));
            list.appendChild(item);
          });
          part.appendChild(list);
        });
      } else {
        section.text.split("\n").forEach(function (line) {
          if (line.trim()) part.appendChild(partLine(line, byNumber));
        });
      }
      container.appendChild(part);
    });
  }

  // --- opening and closing -----------------------------------------------------------------------------------
  function openPanel() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    host.setAttribute("data-open", "true");
    applyReading();
    question.focus();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    host.removeAttribute("data-open");
    launcher.focus();
  }

  function togglePanel() {
    if (panel.hidden) openPanel();
    else closePanel();
  }

  function start() {
    document.body.appendChild(host);
    applyLanguage();
    loadScenarios();
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
