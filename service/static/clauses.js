/*
 * The clause finder (/clauses) and the clause view at a stable address (/clauses/ai-act:art-26).
 * The search's state lives in the URL (?q=&doc=&kind=&lang=&scenario=), so a search can be shared too.
 * All data is put in the page as text; matches are highlighted with <mark> elements built node by node.
 */
(function () {
  "use strict";

  var KB = window.KBCommon; // common.js, loaded before this script
  var el = KB.el;
  var clear = KB.clear;
  var getJSON = KB.getJSON;

  var TEXT = {
    da: {
      skip: "Gå til indhold",
      brand: "Klausulsøgning",
      home: "Forside",
      docs: "API-dokumentation",
      language: "Sprog",
      nav: "Hovedmenu",
      searchForm: "Søg",
      title: "Find en bestemmelse eller klausul",
      query: "Søgeord eller reference",
      search: "Søg",
      doc: "Dokument",
      kind: "Type",
      lang: "Sprog",
      scenario: "Scenarie",
      all: "Alle",
      law: "Lov",
      contract: "Kontrakt",
      guidance: "Vejledning",
      da: "Dansk",
      en: "Engelsk",
      searching: "Søger …",
      results: "{n} resultater for »{q}«",
      none: "Ingen resultater for »{q}«. Prøv andre ord eller færre filtre.",
      failed: "Søgningen mislykkedes: {message}",
      loading: "Henter bestemmelsen …",
      notFound: "Bestemmelsen kunne ikke vises: {message}",
      back: "← Til søgningen",
      partOf: "Del af",
      version: "Version",
      source: "Officiel kilde",
      versionIn: { da: "Dansk version", en: "Engelsk version" },
      cites: "Henviser til",
      citedBy: "Henvises til af",
      similar: "Lignende bestemmelser i andre dokumenter",
      similarLaw: "Lovbestemmelserne bag (mest lignende i loven)",
      noneListed: "Ingen.",
      notHeld: "(ikke i vidensbasen)",
      kinds: { regulation: "forordning", directive: "direktiv", act: "lov", contract: "kontrakt", guidance: "vejledning" },
      change: "Ændret ved forordning (EU) {act}",
      changeIntro: "Den tidligere ordlyd ({old}) og den gældende ({new}); de ændrede ord er markeret.",
      before: "Før: {version}",
      after: "Gældende: {version}",
      amendingArticle: "Den ændrende bestemmelse",
      supersededDa:
        "Den danske tekst i vidensbasen er den oprindelige fra 2024; bestemmelsen er ændret, og den gældende ordlyd findes kun på engelsk.",
      implementedBy: "Gennemføres i dansk ret af",
      implements: "Gennemfører direktivets",
      fromText: "(udbudslovens {source}: »{says}«)",
      fromHeading: "(samme emne: »{says}«)",
    },
    en: {
      skip: "Skip to content",
      brand: "Clause finder",
      home: "Home",
      docs: "API documentation",
      language: "Language",
      nav: "Main menu",
      searchForm: "Search",
      title: "Find a provision or clause",
      query: "Words or a reference",
      search: "Search",
      doc: "Document",
      kind: "Kind",
      lang: "Language",
      scenario: "Scenario",
      all: "All",
      law: "Law",
      contract: "Contract",
      guidance: "Guidance",
      da: "Danish",
      en: "English",
      searching: "Searching …",
      results: "{n} results for “{q}”",
      none: "No results for “{q}”. Try other words or fewer filters.",
      failed: "The search failed: {message}",
      loading: "Loading the provision …",
      notFound: "The provision could not be shown: {message}",
      back: "← Back to the search",
      partOf: "Part of",
      version: "Version",
      source: "Official source",
      versionIn: { da: "Danish version", en: "English version" },
      cites: "Refers to",
      citedBy: "Referred to by",
      similar: "Similar provisions in other documents",
      similarLaw: "The provisions of law behind it (most similar in the law)",
      noneListed: "None.",
      notHeld: "(not in the knowledge base)",
      kinds: { regulation: "regulation", directive: "directive", act: "act", contract: "contract", guidance: "guidance" },
      change: "Amended by Regulation (EU) {act}",
      changeIntro: "The earlier wording ({old}) and the wording in force ({new}); the changed words are marked.",
      before: "Before: {version}",
      after: "In force: {version}",
      amendingArticle: "The amending provision",
      supersededDa:
        "The Danish text in the knowledge base is the 2024 original; the provision was amended and its wording in force exists in English only.",
      implementedBy: "Implemented in Danish law by",
      implements: "Implements the directive's",
      fromText: "(udbudsloven {source}: “{says}”)",
      fromHeading: "(same subject: “{says}”)",
    },
  };

  var uiLang = readLang();
  var scenarios = [];
  var documents = [];

  function readLang() {
    try {
      var saved = window.localStorage.getItem("kb-ui-lang");
      if (saved === "da" || saved === "en") return saved;
    } catch (e) {
      /* storage blocked */
    }
    return document.documentElement.lang === "en" ? "en" : "da";
  }

  var t = KB.translator(TEXT, function () {
    return uiLang;
  });

  function clauseHref(ref) {
    return "/clauses/" + encodeURIComponent(ref).replace(/%3A/gi, ":");
  }

  function clauseLink(ref, className) {
    var a = el("a", className || "link-ref", ref);
    a.href = clauseHref(ref);
    return a;
  }

  // --- highlighting: the query's words (and their inflections) in a text, as <mark> nodes ---------------------
  function highlighter(query) {
    var words = (query.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || []).map(function (word) {
      // a stem: Danish and English words inflect at the end ("databehandleren", "deployers")
      var stem = word.length > 5 ? word.slice(0, Math.max(4, word.length - 2)) : word;
      return stem.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    });
    if (!words.length) return null;
    return new RegExp("(" + words.join("|") + ")[\\p{L}\\p{N}]*", "giu");
  }

  function highlighted(container, text, pattern) {
    if (!pattern) {
      container.textContent = text;
      return;
    }
    pattern.lastIndex = 0;
    var last = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      if (match[0].length === 0) {
        pattern.lastIndex++;
        continue;
      }
      if (match.index > last) container.appendChild(document.createTextNode(text.slice(last, match.index)));
      container.appendChild(el("mark", null, match[0]));
      last = match.index + match[0].length;
    }
    if (last < text.length) container.appendChild(document.createTextNode(text.slice(last)));
  }

  /** A long passage cut to a window around its first match. */
  function excerpt(text, pattern) {
    var limit = 600;
    if (text.length <= limit) return text;
    var start = 0;
    if (pattern) {
      pattern.lastIndex = 0;
      var first = pattern.exec(text);
      if (first) start = Math.max(0, first.index - 150);
    }
    return (start > 0 ? "… " : "") + text.slice(start, start + limit) + (start + limit < text.length ? " …" : "");
  }

  // --- the page's static words -------------------------------------------------------------------------------
  function applyLanguage() {
    KB.applyTexts(TEXT[uiLang], uiLang);
    fillScenarios();
  }

  function fillDocuments() {
    var select = document.getElementById("filter-doc");
    var chosen = select.value || new URLSearchParams(window.location.search).get("doc") || "";
    documents.forEach(function (doc) {
      var option = el("option", null, doc.doc_id + " – " + doc.title);
      option.value = doc.doc_id;
      select.appendChild(option);
    });
    select.value = chosen;
  }

  function fillScenarios() {
    var select = document.getElementById("filter-scenario");
    var chosen = select.value || new URLSearchParams(window.location.search).get("scenario") || "";
    while (select.options.length > 1) select.remove(1);
    scenarios.forEach(function (s) {
      var option = el("option", null, s.label[uiLang] + " – " + s.description[uiLang]);
      option.value = s.id;
      select.appendChild(option);
    });
    select.value = chosen;
  }

  // --- search ------------------------------------------------------------------------------------------------
  var FILTERS = ["doc", "kind", "lang", "scenario"];

  function formParams() {
    var params = new URLSearchParams();
    var q = document.getElementById("q").value.trim();
    if (q) params.set("q", q);
    FILTERS.forEach(function (name) {
      var value = document.getElementById("filter-" + name).value;
      if (value) params.set(name, value);
    });
    return params;
  }

  function fillForm(params) {
    document.getElementById("q").value = params.get("q") || "";
    FILTERS.forEach(function (name) {
      document.getElementById("filter-" + name).value = params.get(name) || "";
    });
  }

  var searchNumber = 0; // only the latest search may fill the list (filters change faster than answers come)

  function runSearch(params) {
    var mine = ++searchNumber;
    var status = document.getElementById("search-status");
    var results = document.getElementById("results");
    var q = params.get("q");
    clear(results);
    if (!q) {
      status.textContent = "";
      return Promise.resolve();
    }
    status.textContent = t("searching");
    results.setAttribute("aria-busy", "true");
    var api = new URLSearchParams(params);
    api.set("k", "20");
    return getJSON("/api/clauses?" + api.toString()).then(
      function (hits) {
        if (mine !== searchNumber) return;
        var pattern = highlighter(q);
        status.textContent = hits.length ? t("results", { n: hits.length, q: q }) : t("none", { q: q });
        hits.forEach(function (hit) {
          results.appendChild(resultItem(hit, pattern));
        });
        results.setAttribute("aria-busy", "false");
      },
      function (error) {
        if (mine !== searchNumber) return;
        status.textContent = t("failed", { message: error.message });
        results.setAttribute("aria-busy", "false");
      }
    );
  }

  function resultItem(hit, pattern) {
    var item = el("li", "result");
    item.setAttribute("data-ref", hit.ref);
    item.setAttribute("lang", hit.language);
    var heading = el("h2", "result-heading");
    heading.appendChild(clauseLink(hit.ref, "result-ref"));
    heading.appendChild(document.createTextNode(" "));
    var headingText = el("span", "result-heading-text");
    highlighted(headingText, hit.heading, pattern);
    heading.appendChild(headingText);
    item.appendChild(heading);
    var kind = TEXT[uiLang].kinds[hit.kind] || hit.kind;
    item.appendChild(el("p", "result-meta", hit.title + " · " + kind + " · " + hit.language + " · " + hit.version));
    var text = el("p", "result-text");
    highlighted(text, excerpt(hit.text, pattern), pattern);
    item.appendChild(text);
    return item;
  }

  // --- the clause view ---------------------------------------------------------------------------------------
  function clauseRef() {
    var match = window.location.pathname.match(/^\/clauses\/(.+)$/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  function versionColumn(passages, language) {
    var column = el("section", "clause-version");
    column.setAttribute("lang", language);
    column.setAttribute("data-lang", language);
    column.appendChild(el("h2", null, TEXT[uiLang].versionIn[language] || language));
    var first = passages[0];
    column.appendChild(el("p", "clause-meta", t("version") + ": " + first.version + (first.valid_from ? " (" + first.valid_from + ")" : "")));
    var note = passages.map(function (p) { return p.version_note; }).filter(Boolean)[0];
    if (note) column.appendChild(el("p", "clause-version-note", note));
    passages.forEach(function (p) {
      var block = el("div", "clause-passage");
      block.setAttribute("data-passage-id", p.passage_id);
      var head = el("p", "clause-passage-head");
      head.appendChild(clauseLink(p.ref, "clause-passage-ref"));
      if (p.heading && p.heading !== first.heading) head.appendChild(el("span", null, " " + p.heading));
      block.appendChild(head);
      block.appendChild(el("p", "clause-passage-text", p.text));
      column.appendChild(block);
    });
    if (first.url && /^https?:/i.test(first.url)) {
      var source = el("a", "clause-source", t("source"));
      source.href = first.url;
      source.rel = "noopener noreferrer";
      column.appendChild(source);
    }
    return column;
  }

  // --- what an amendment changed: the old and the new wording side by side, the changed words marked -----------
  function markedText(segments, tag) {
    var text = el("p", "clause-passage-text");
    segments.forEach(function (segment) {
      text.appendChild(segment.changed ? el(tag, "changed", segment.text) : document.createTextNode(segment.text));
    });
    return text;
  }

  function changeSection(change) {
    var section = el("section", "clause-change");
    section.id = "clause-change";
    section.appendChild(el("h2", null, t("change", { act: change.amended_by })));
    if (change.version_note) section.appendChild(el("p", "clause-version-note", change.version_note));
    if (uiLang === "da" && change.superseded_languages.indexOf("da") >= 0) {
      section.appendChild(el("p", "clause-superseded", t("supersededDa")));
    }
    section.appendChild(el("p", "clause-meta", t("changeIntro", { old: change.old_version, new: change.new_version })));
    var sides = el("div", "clause-change-sides");
    var before = el("div", "clause-change-old");
    before.setAttribute("lang", change.old_language);
    before.appendChild(el("h3", null, t("before", { version: change.old_version })));
    before.appendChild(markedText(change.old, "del"));
    var after = el("div", "clause-change-new");
    after.appendChild(el("h3", null, t("after", { version: change.new_version })));
    after.appendChild(markedText(change.new, "ins"));
    sides.appendChild(before);
    sides.appendChild(after);
    section.appendChild(sides);
    if (change.amending.length) {
      var amending = linkList(t("amendingArticle"), change.amending, function (link) {
        return link.known ? link.heading : t("notHeld");
      });
      amending.id = "clause-amending";
      section.appendChild(amending);
    }
    return section;
  }

  function transpositionSection(transpositions) {
    var section = el("section", "clause-link-list");
    section.id = "clause-transpositions";
    transpositions.forEach(function (tr) {
      var title = tr.direction === "implemented_by" ? t("implementedBy") : t("implements");
      section.appendChild(el("h2", null, title));
      var list = el("ul");
      tr.links.forEach(function (link) {
        var item = el("li");
        item.setAttribute("data-ref", link.ref);
        item.appendChild(clauseLink(link.ref));
        if (link.known && link.heading) item.appendChild(el("span", "link-heading", " " + link.heading));
        list.appendChild(item);
      });
      section.appendChild(list);
      var why = tr.source === "heading" ? t("fromHeading", { says: tr.says }) : t("fromText", { source: tr.source.split(":")[1], says: tr.says });
      section.appendChild(el("p", "clause-meta", why));
    });
    return section;
  }

  function linkList(titleText, links, describe) {
    var section = el("section", "clause-link-list");
    section.appendChild(el("h2", null, titleText));
    if (!links.length) {
      section.appendChild(el("p", "link-none", t("noneListed")));
      return section;
    }
    var list = el("ul");
    links.forEach(function (link) {
      var item = el("li");
      item.setAttribute("data-ref", link.ref);
      item.appendChild(clauseLink(link.ref));
      var detail = describe(link);
      if (detail) item.appendChild(el("span", "link-heading", " " + detail));
      list.appendChild(item);
    });
    section.appendChild(list);
    return section;
  }

  function showClause(ref) {
    var finder = document.getElementById("finder");
    var view = document.getElementById("clause");
    finder.hidden = true;
    view.hidden = false;
    clear(view);
    view.appendChild(el("p", "status", t("loading")));
    return getJSON("/api/clauses/" + encodeURIComponent(ref) + "?lang=" + uiLang).then(
      function (clause) {
        clear(view);
        document.title = clause.ref + " – " + clause.heading;
        var back = el("a", "clause-back", t("back"));
        back.href = "/clauses";
        view.appendChild(back);
        view.appendChild(el("p", "clause-title", clause.title));
        var h1 = el("h1", "clause-heading");
        h1.appendChild(el("span", "clause-ref", clause.ref));
        h1.appendChild(document.createTextNode(" " + clause.heading));
        h1.tabIndex = -1;
        view.appendChild(h1);
        if (clause.parent) {
          var parent = el("p", "clause-parent", t("partOf") + " ");
          parent.appendChild(clauseLink(clause.parent));
          view.appendChild(parent);
        }
        var columns = el("div", "clause-columns" + (clause.parallel.length ? " has-parallel" : ""));
        columns.appendChild(versionColumn(clause.passages, clause.language));
        if (clause.parallel.length) columns.appendChild(versionColumn(clause.parallel, clause.parallel[0].language));
        view.appendChild(columns);
        if (clause.change) view.appendChild(changeSection(clause.change));

        var links = el("div", "clause-links");
        if (clause.transpositions && clause.transpositions.length) links.appendChild(transpositionSection(clause.transpositions));
        function heading(link) {
          return link.known ? link.heading : t("notHeld");
        }
        var cites = linkList(t("cites"), clause.cites, heading);
        cites.id = "clause-cites";
        var citedBy = linkList(t("citedBy"), clause.cited_by, heading);
        citedBy.id = "clause-cited-by";
        var law = ["regulation", "directive", "act"].indexOf(clause.kind) < 0;
        var similar = linkList(law ? t("similarLaw") : t("similar"), clause.similar, function (s) {
          return s.heading + " (" + s.title.split(" – ")[0] + ")";
        });
        similar.id = "clause-similar";
        links.appendChild(cites);
        links.appendChild(citedBy);
        links.appendChild(similar);
        view.appendChild(links);
        h1.focus();
      },
      function (error) {
        clear(view);
        var back = el("a", "clause-back", t("back"));
        back.href = "/clauses";
        view.appendChild(back);
        var problem = el("p", "error", t("notFound", { message: error.message }));
        problem.setAttribute("role", "alert");
        view.appendChild(problem);
      }
    );
  }

  // --- wiring ------------------------------------------------------------------------------------------------
  function route() {
    var ref = clauseRef();
    if (ref) return showClause(ref);
    document.getElementById("finder").hidden = false;
    document.getElementById("clause").hidden = true;
    var params = new URLSearchParams(window.location.search);
    fillForm(params);
    return runSearch(params);
  }

  document.getElementById("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var params = formParams();
    window.history.pushState(null, "", "/clauses?" + params.toString());
    runSearch(params);
  });
  FILTERS.forEach(function (name) {
    document.getElementById("filter-" + name).addEventListener("change", function () {
      if (!document.getElementById("q").value.trim()) return;
      var params = formParams();
      window.history.replaceState(null, "", "/clauses?" + params.toString());
      runSearch(params);
    });
  });
  window.addEventListener("popstate", route);
  document.querySelectorAll(".lang-switch button").forEach(function (b) {
    b.addEventListener("click", function () {
      uiLang = b.getAttribute("data-lang");
      try {
        window.localStorage.setItem("kb-ui-lang", uiLang);
      } catch (e) {
        /* storage blocked: the choice lasts for this page */
      }
      applyLanguage();
      route();
    });
  });

  applyLanguage();
  // The page answers at once; the filters' lists fill in when they come and keep the URL's choice. Routing only
  // after the lists came would empty the search box a quick reader had already typed in, and drop their search.
  route();
  Promise.all([
    getJSON("/api/documents").catch(function () {
      return [];
    }),
    getJSON("/api/scenarios").catch(function () {
      return [];
    }),
  ]).then(function (loaded) {
    documents = loaded[0];
    scenarios = loaded[1];
    fillDocuments();
    fillScenarios();
  });
})();
