// Inlined in every page without these comment lines (the CSP allows it by its hash). It adds
// the page's scripts once the page has loaded and painted, so a slow phone shows the page
// before it fetches or runs any script: everything works without them, they only make it
// smoother. Waiting for "load" also suits htmx 2, which starts only on DOMContentLoaded or
// on a complete document. data-scripts lists "url" or "url@selector": the second kind only
// when the page (or one htmx swaps in later) has an element the selector matches.
(function (me) {
  "use strict";
  var scripts = me.getAttribute("data-scripts").split(" ").map(function (entry) {
    return entry.split("@");
  });
  var added = {};
  var types = window.PerformanceObserver && PerformanceObserver.supportedEntryTypes;
  var loaded = false;
  var painted = !types || types.indexOf("paint") < 0;
  function add() {
    if (!loaded || !painted) return;
    scripts.forEach(function (entry) {
      if (added[entry[0]] || (entry[1] && !document.querySelector(entry[1]))) return;
      added[entry[0]] = true;
      var script = document.createElement("script");
      script.src = entry[0];
      script.async = false; // run in the order listed
      document.head.appendChild(script);
    });
  }
  if (!painted) {
    new PerformanceObserver(function () {
      painted = true;
      add();
    }).observe({ type: "paint", buffered: true });
  }
  window.addEventListener("load", function () {
    loaded = true;
    add();
    // A page opened in the background paints only when shown: do not wait for ever.
    window.setTimeout(function () {
      painted = true;
      add();
    }, 3000);
  });
  document.addEventListener("htmx:load", add);
  // Chrome may offer to install before portal.js has arrived: keep the offer for it.
  window.addEventListener("beforeinstallprompt", function (event) {
    event.preventDefault();
    window.portalInstallPrompt = event;
  });
})(document.currentScript);
