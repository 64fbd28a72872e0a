/*
 * KBPassageView: one passage with its parallel language version, its neighbours and its official source.
 *
 *   window.KBPassageView.render(container, passageId, {baseUrl: "https://kb.example.dk", lang: "da"})
 *
 * A plain script (no modules) so the service's pages, the roadmap page and the embeddable widget can all load it,
 * after common.js (KBCommon).
 * Every piece of passage data goes into the page as text (textContent), never as HTML: the corpus, a question or
 * an answer can hold markup, and none of it may run.
 * render() returns a Promise that resolves with the passage shown (or null after an error); the container gets
 * `data-passage-id` of the passage on view, and a `kb-passage-view:rendered` event is dispatched on it.
 */
(function () {
  "use strict";

  // common.js: loaded before this script by the pages, and part of /widget.js, which loads this one
  var KB = window.KBCommon;
  var el = KB.el;
  var clear = KB.clear;

  var WORDS = {
    da: {
      loading: "Henter passagen …",
      failed: "Passagen kunne ikke hentes",
      reference: "Reference",
      version: "Version",
      validFrom: "gælder fra",
      notInForce: "ikke gældende",
      validTo: "gjaldt til",
      amended: "Ændring",
      switchTo: { da: "Vis dansk version", en: "Vis engelsk version" },
      neighbours: "Naboafsnit",
      before: "Før",
      after: "Efter",
      source: "Officiel kilde",
      cites: "Henviser til",
      language: { da: "dansk", en: "engelsk" },
    },
    en: {
      loading: "Loading the passage …",
      failed: "The passage could not be loaded",
      reference: "Reference",
      version: "Version",
      validFrom: "valid from",
      notInForce: "not in force",
      validTo: "applied until",
      amended: "Amendment",
      switchTo: { da: "Show Danish version", en: "Show English version" },
      neighbours: "Neighbouring passages",
      before: "Before",
      after: "After",
      source: "Official source",
      cites: "Refers to",
      language: { da: "Danish", en: "English" },
    },
  };

  function words(lang) {
    return WORDS[lang] || WORDS.da;
  }

  function trimSlash(url) {
    return String(url || "").replace(/\/+$/, "");
  }

  /** Only http(s) links to official sources: a `javascript:` URL in the data must never become a link. */
  function safeUrl(url) {
    if (!url) return null;
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function fetchPassage(baseUrl, passageId) {
    return KB.getJSON(trimSlash(baseUrl) + "/api/passages/" + encodeURIComponent(passageId));
  }

  function neighbourButton(neighbour, label, onOpen) {
    var button = el("button", "kbpv-neighbour");
    button.type = "button";
    button.setAttribute("data-passage-id", neighbour.passage_id);
    button.appendChild(el("span", "kbpv-neighbour-label", label));
    button.appendChild(el("span", "kbpv-neighbour-ref", neighbour.ref));
    button.appendChild(el("span", "kbpv-neighbour-heading", neighbour.heading));
    button.addEventListener("click", function () {
      onOpen(neighbour.passage_id);
    });
    return button;
  }

  function build(container, view, options, open) {
    var w = words(options.lang);
    var passage = view.passage;
    clear(container);
    container.setAttribute("data-passage-id", passage.passage_id);

    var article = el("article", "kbpv");
    article.setAttribute("lang", passage.language);

    var title = el("p", "kbpv-title", passage.title);
    article.appendChild(title);
    var heading = el("h3", "kbpv-heading", passage.heading || passage.ref);
    heading.tabIndex = -1; // focus lands here after switching language or neighbour
    article.appendChild(heading);

    var meta = el("dl", "kbpv-meta");
    function metaRow(term, value, className) {
      var row = el("div", "kbpv-meta-row");
      row.appendChild(el("dt", null, term));
      row.appendChild(el("dd", className || null, value));
      meta.appendChild(row);
    }
    metaRow(w.reference, passage.ref, "kbpv-ref");
    var version = passage.version || "";
    if (passage.valid_from) version += " (" + w.validFrom + " " + passage.valid_from + ")";
    if (passage.valid_to) version += " (" + w.validTo + " " + passage.valid_to + ")";
    if (passage.in_force === false) version += " – " + w.notInForce;
    metaRow(w.version, version, "kbpv-version");
    // an amended provision: "amended by Regulation (EU) 2026/1744, in force from 27.7.2026" (kb/versions.py)
    if (passage.version_note) metaRow(w.amended, passage.version_note, "kbpv-version-note");
    article.appendChild(meta);

    var text = el("div", "kbpv-text", passage.text);
    text.setAttribute("lang", passage.language);
    article.appendChild(text);

    var actions = el("div", "kbpv-actions");
    var other = (view.parallel || [])[0];
    if (other) {
      var switchButton = el("button", "kbpv-switch", w.switchTo[other.language] || other.language);
      switchButton.type = "button";
      switchButton.setAttribute("data-lang", other.language);
      switchButton.setAttribute("data-passage-id", other.passage_id);
      switchButton.addEventListener("click", function () {
        open(other.passage_id);
      });
      actions.appendChild(switchButton);
    }
    var source = safeUrl(passage.url);
    if (source) {
      var link = el("a", "kbpv-source", w.source);
      link.href = source;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      actions.appendChild(link);
    }
    if (actions.firstChild) article.appendChild(actions);

    if (passage.cites && passage.cites.length) {
      var cites = el("p", "kbpv-cites");
      cites.appendChild(el("span", "kbpv-cites-label", w.cites + ": "));
      cites.appendChild(el("span", null, passage.cites.join(", ")));
      article.appendChild(cites);
    }

    var neighbours = view.neighbours || [];
    if (neighbours.length) {
      var nav = el("nav", "kbpv-neighbours");
      nav.setAttribute("aria-label", w.neighbours);
      nav.appendChild(el("h4", null, w.neighbours));
      neighbours.forEach(function (n) {
        nav.appendChild(neighbourButton(n, n.order < passage.order ? w.before : w.after, open));
      });
      article.appendChild(nav);
    }
    container.appendChild(article);
    return heading;
  }

  /** Render the passage `passageId` into `container`; neighbours and the language switch re-render in place. */
  function render(container, passageId, options) {
    options = options || {};
    var settings = { baseUrl: trimSlash(options.baseUrl || ""), lang: options.lang === "en" ? "en" : "da" };
    var w = words(settings.lang);
    container.classList.add("kbpv-container");
    container.setAttribute("aria-busy", "true");
    clear(container);
    container.appendChild(el("p", "kbpv-loading", w.loading));

    function open(nextId) {
      return render(container, nextId, settings).then(function (passage) {
        var heading = container.querySelector(".kbpv-heading");
        if (heading) heading.focus();
        return passage;
      });
    }

    return fetchPassage(settings.baseUrl, passageId).then(
      function (view) {
        build(container, view, settings, open);
        container.setAttribute("aria-busy", "false");
        container.dispatchEvent(new CustomEvent("kb-passage-view:rendered", { detail: view, bubbles: true }));
        return view.passage;
      },
      function (error) {
        clear(container);
        container.setAttribute("aria-busy", "false");
        var problem = el("p", "kbpv-error", w.failed + ": " + error.message);
        problem.setAttribute("role", "alert");
        container.appendChild(problem);
        return null;
      }
    );
  }

  window.KBPassageView = { render: render };
})();
