/*
 * KBCommon: the small helpers every script of the service uses, in one place (issue 18), so the pages, the passage
 * view and the chat widget build elements, fill in texts and read the API one way.
 *
 * Pages load it first (`<script src="/static/common.js">` before their own script). The embeddable widget cannot ask
 * the host page for a second tag: /widget.js is served as this file followed by widget.js (service/routes/pages.py),
 * so one tag still embeds it. A plain script (no modules), loaded once however many scripts include it.
 * Everything goes into the page as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  if (window.KBCommon) return;

  /** An element with a class and text content; never HTML. */
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function byId(id) {
    return document.getElementById(id);
  }

  /** `template` with each {name} replaced by values[name]. */
  function fill(template, values) {
    var text = template;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }

  /** t(key, values): the text `key` of `table[lang()]` (Danish when the language has no table), filled in. */
  function translator(table, lang) {
    return function (key, values) {
      return fill((table[lang()] || table.da)[key], values);
    };
  }

  /** The page's static words: [data-text] elements get `words[key]` as text, [data-label] ones as aria-label,
   * and the language switch's buttons say which is on. */
  function applyTexts(words, lang) {
    document.documentElement.lang = lang;
    Array.prototype.forEach.call(document.querySelectorAll("[data-text]"), function (node) {
      var text = words[node.getAttribute("data-text")];
      if (typeof text === "string") node.textContent = text;
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-label]"), function (node) {
      var text = words[node.getAttribute("data-label")];
      if (typeof text === "string") node.setAttribute("aria-label", text);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".lang-switch button"), function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-lang") === lang));
    });
  }

  /** A rejected promise for a response that is not ok: the message of the API's one error shape, or the status. */
  function failure(response) {
    return response.json().then(
      function (body) {
        throw new Error(body && body.error ? body.error.message : response.statusText);
      },
      function () {
        throw new Error(response.status + " " + response.statusText);
      }
    );
  }

  /** fetch() for JSON (Accept: application/json unless the options say otherwise): the body, or an Error. */
  function getJSON(url, options) {
    var settings = Object.assign({}, options);
    settings.headers = Object.assign({ Accept: "application/json" }, settings.headers);
    return fetch(url, settings).then(function (response) {
      if (!response.ok) return failure(response);
      return response.json().then(null, function () {
        throw new Error(response.status + " " + response.statusText);
      });
    });
  }

  /** The roadmap's and the contract draft's state in the URL: ?lang=&scenario=&a=key:value,… (one format, so a
   * roadmap links to the draft for the same answers); `asked` keeps the order the questions were answered in. */
  function readAnswers(search) {
    var params = new URLSearchParams(search);
    var state = { lang: params.get("lang") === "en" ? "en" : "da", scenario: params.get("scenario") || "", answers: {}, asked: [] };
    (params.get("a") || "").split(",").forEach(function (pair) {
      var i = pair.indexOf(":");
      if (i > 0) {
        var key = pair.slice(0, i);
        state.answers[key] = pair.slice(i + 1);
        state.asked.push(key);
      }
    });
    return state;
  }

  function answersQuery(state) {
    var params = new URLSearchParams();
    params.set("lang", state.lang);
    if (state.scenario) params.set("scenario", state.scenario);
    var pairs = state.asked.filter(function (k) { return k in state.answers; }).map(function (k) {
      return k + ":" + state.answers[k];
    });
    if (pairs.length) params.set("a", pairs.join(","));
    return params.toString();
  }

  window.KBCommon = {
    el: el,
    clear: clear,
    byId: byId,
    fill: fill,
    translator: translator,
    applyTexts: applyTexts,
    failure: failure,
    getJSON: getJSON,
    readAnswers: readAnswers,
    answersQuery: answersQuery,
  };
})();
