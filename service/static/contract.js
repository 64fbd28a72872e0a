/*
 * The contract draft page (/contract): asks the roadmap's questions one at a time and shows the contract draft
 * growing, section by section, with every clause quoted from the knowledge base, the provisions behind it and the
 * points to fill in; any clause or provision opens in place (KBPassageView); the draft downloads as DOCX or Markdown.
 *
 * State (scenario, language, answers) lives in the URL (?scenario=&lang=&a=key:value,…), the roadmap page's format,
 * so a roadmap links here with its answers. The interview (scenario, questions, answers, passages in place) is
 * interview.js's, shared with the roadmap page; this script adds the draft. Every piece of data goes into the page as
 * text, never as HTML.
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
      done: "Alle spørgsmål er besvaret.",
      draftTitle: "Udkast",
      downloadDocx: "Hent som Word (DOCX)",
      downloadMd: "Hent som Markdown",
      legend: "Afsnit og klausuler markeret „åbent“ afhænger af et spørgsmål, der ikke er besvaret; begge varianter vises. Det gule skal køberen udfylde eller vælge.",
      disclaimer: "Udkastet er sat sammen af modelklausuler og bestemmelser fra vidensbasen; det er ikke juridisk rådgivning.",
      pageTitle: "Kontraktudkast til indkøb af klinisk AI",
      loading: "Henter udkastet …",
      failed: "Udkastet kunne ikke hentes: ",
      settles: "Fastlægger: ",
      provisions: "Bestemmelser bag afsnittet",
      fillIns: "Udfyldes af køberen",
      option: "valg",
      placeholder: "udfyldes",
      notInKb: "(teksten er ikke i vidensbasen)",
      otherLanguage: function (lang) { return "citeret på " + (lang === "en" ? "engelsk" : "dansk") + " – findes ikke på dansk"; },
      versions: "Tekster brugt: ",
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
      done: "All questions are answered.",
      draftTitle: "Draft",
      downloadDocx: "Download as Word (DOCX)",
      downloadMd: "Download as Markdown",
      legend: "Sections and clauses marked “open” depend on a question not answered yet; both variants are shown. The yellow marks are for the buyer to fill in or choose.",
      disclaimer: "The draft is put together from model clauses and provisions in the knowledge base; it is not legal advice.",
      pageTitle: "Contract draft for procuring clinical AI",
      loading: "Loading the draft …",
      failed: "The draft could not be loaded: ",
      settles: "Settles: ",
      provisions: "Provisions behind this section",
      fillIns: "For the buyer to fill in",
      option: "option",
      placeholder: "fill in",
      notInKb: "(the text is not in the knowledge base)",
      otherLanguage: function (lang) { return "quoted in " + (lang === "da" ? "Danish" : "English") + " – no English text"; },
      versions: "Texts used: ",
      openClause: "Open",
    },
  };

  var interview = window.KBInterview.create({ // interview.js, loaded before this script
    words: WORDS,
    resultUrl: "/api/contract",
    render: render,
    resultId: "draft",
    questionId: "question",
    listId: "sections",
    itemSelector: ".section",
    sourceClass: "muted",
    urlChanged: function (query) {
      $("roadmap-link").href = "/roadmap?" + query; // the roadmap for the same answers
    },
    started: function () {
      interview.writeUrl();
    },
  });
  var state = interview.state;
  var words = interview.words;

  function downloadUrl(extension) {
    var params = new URLSearchParams();
    params.set("scenario", state.scenario);
    params.set("lang", state.lang);
    state.asked.forEach(function (key) {
      if (key in state.answers) params.append("answer", key + "=" + state.answers[key]);
    });
    return "/api/contract." + extension + "?" + params.toString();
  }

  // --- rendering --------------------------------------------------------------------------------

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

  function openMark(item) {
    var mark = el("span", "open-mark", words().open);
    mark.title = interview.dependsOn(item.depends_on);
    return mark;
  }

  function renderClause(clause) {
    var w = words();
    var item = el("div", "clause" + (clause.open ? " clause-open" : ""));
    item.setAttribute("data-ref", clause.ref);
    var head = el("div", "clause-head");
    if (clause.passages.length) head.appendChild(interview.refButton(clause.ref, clause.passages[0].passage_id, clause.heading));
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
        if (provision.passage_id) li.appendChild(interview.refButton(provision.ref, provision.passage_id, provision.heading));
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

  // The draft's own part; the interview renders the question and the answers and shows #draft.
  function render(draft) {
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
  }

  interview.start();
})();
