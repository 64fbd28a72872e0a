/*
 * The build banner: while the knowledge base is still being built, the pages and the chat widget say so.
 *
 * Pages: an element with `data-kb-build-banner` (optionally `data-lang`) is filled in by itself once this script
 * loads. The widget calls `KBBuildBanner.watch(element, {baseUrl, lang})` (lang may be a function). The banner
 * reads GET /healthz, shows the build's progress as text only (no markup from the server), polls every few
 * seconds while a build runs and hides itself once the build is done.
 */
(function () {
  "use strict";

  if (window.KBBuildBanner) return;

  var POLL_MS = 4000;
  var TEXT = {
    da: {
      partial: "Indekset bygges stadig ({percent} %): svarene bruger søgning på ord for nogle tekster",
      starting: "Indekset bygges: de første svar kommer inden for et minut",
      stopped: "Opbygningen af indekset stoppede ved {percent} %: svarene bruger søgning på ord for nogle tekster",
      left: " · ca. {minutes} min. tilbage",
    },
    en: {
      partial: "The index is still being built ({percent} %): answers use keyword search for some texts",
      starting: "The index is being built: the first answers come within a minute",
      stopped: "Building the index stopped at {percent} %: answers use keyword search for some texts",
      left: " · about {minutes} min left",
    },
  };

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) {
      return values[name] === undefined ? "" : String(values[name]);
    });
  }

  /* The banner's sentence for a /healthz body, or "" when there is nothing to say. */
  function message(health, lang) {
    var text = TEXT[lang] || TEXT.en;
    var build = health && health.build;
    if (!build || build.state === "done") return "";
    if (health.status === "not_built") return build.state === "building" ? text.starting : "";
    var values = { percent: build.percent };
    if (build.state !== "building") return fill(text.stopped, values);
    var line = fill(text.partial, values);
    if (typeof build.seconds_left === "number") {
      line += fill(text.left, { minutes: Math.max(1, Math.round(build.seconds_left / 60)) });
    }
    return line;
  }

  function watch(container, options) {
    options = options || {};
    var baseUrl = (options.baseUrl || "").replace(/\/+$/, "");
    var lang = options.lang || document.documentElement.lang || "en";
    var last = null;
    container.hidden = true;
    container.setAttribute("role", "status");
    container.setAttribute("aria-live", "polite");
    if (!container.classList.contains("kb-build-banner")) container.classList.add("kb-build-banner");

    function render() {
      var line = message(last, typeof lang === "function" ? lang() : lang);
      container.textContent = line;
      container.hidden = !line;
      return line;
    }

    function poll() {
      fetch(baseUrl + "/healthz", { headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          return response.json();
        })
        .then(function (health) {
          last = health;
          var building = !!(health && health.build && health.build.state === "building");
          render();
          if (building) window.setTimeout(poll, POLL_MS);
        })
        .catch(function () {
          window.setTimeout(poll, POLL_MS * 2); // the service restarting: look again later
        });
    }

    poll();
    return { render: render };
  }

  window.KBBuildBanner = { message: message, watch: watch };

  function mountAll() {
    var nodes = document.querySelectorAll("[data-kb-build-banner]");
    Array.prototype.forEach.call(nodes, function (node) {
      watch(node, {
        lang: function () {
          return node.getAttribute("data-lang") || document.documentElement.lang || "en";
        },
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
