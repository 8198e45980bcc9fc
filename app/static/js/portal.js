// Portal enhancements. Every page works without this file; it adds the service worker,
// the install hint, and a full navigation when an htmx request cannot reach the server.
(function () {
  "use strict";

  // start.js runs this file once the page has loaded.
  if ("serviceWorker" in navigator) {
    // The page's language goes with the worker, for notices it cannot read.
    var lang = encodeURIComponent(document.documentElement.lang || "en");
    navigator.serviceWorker.register("/sw.js?lang=" + lang, { scope: "/" }).catch(function () {});
  }

  // Offline during an htmx navigation: let the browser navigate, so the service worker can
  // answer with the offline page instead of leaving the old page on screen.
  document.addEventListener("htmx:sendError", function (event) {
    var path = event.detail && event.detail.pathInfo && event.detail.pathInfo.requestPath;
    if (path && event.detail.requestConfig && event.detail.requestConfig.verb === "get") {
      window.location.assign(path);
    }
  });

  // Print buttons (the record's printable pages): the browser's own print dialog.
  function showPrintButtons() {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
    });
  }
  showPrintButtons();
  document.addEventListener("htmx:load", showPrintButtons);
  document.addEventListener("click", function (event) {
    if (event.target instanceof Element && event.target.closest("[data-print]")) window.print();
  });

  // After htmx swaps the page, move focus to the main content for screen reader users,
  // or to the first field a refused form asks to put right (its error is read with it).
  document.addEventListener("htmx:afterSettle", function (event) {
    var boosted = event.detail && event.detail.boosted;
    var main = document.getElementById("main");
    var field = main && main.querySelector('[aria-invalid="true"]');
    if (boosted && main) (field || main).focus({ preventScroll: !field });
  });

  // Health data does not stay on an unattended screen: when the idle timeout has passed,
  // end the session (the server would refuse it by now anyway) and leave the page. The
  // sign-out says why (reason=idle), so the start page it leaves for can say so too; the
  // redirect is not followed here, or that page would use up the notice unseen.
  var idleMeta = document.querySelector('meta[name="session-idle-seconds"]');
  if (idleMeta) {
    var idleMs = parseInt(idleMeta.content, 10) * 1000;
    var idleTimer = null;
    var restart = function () {
      window.clearTimeout(idleTimer);
      idleTimer = window.setTimeout(function () {
        var token = document.querySelector('meta[name="csrf-token"]');
        var leave = function () {
          var start = idleMeta.getAttribute("data-start");
          window.location.assign(start + "?next=" + encodeURIComponent(location.pathname));
        };
        fetch(idleMeta.getAttribute("data-sign-out"), {
          method: "POST",
          credentials: "same-origin",
          redirect: "manual",
          headers: { "X-CSRFToken": token ? token.content : "" },
          body: new URLSearchParams({ reason: "idle" }),
        }).then(leave, leave);
      }, idleMs);
    };
    ["click", "keydown", "touchstart", "htmx:afterRequest"].forEach(function (name) {
      document.addEventListener(name, restart, { passive: true });
    });
    restart();
  }
  // A page with health data brought back from the back/forward cache is fetched again,
  // so the server can say whether the session still stands.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && document.querySelector('meta[name="session-idle-seconds"]')) {
      window.location.reload();
    }
  });

  var deferredPrompt = window.portalInstallPrompt || null;
  var standalone =
    window.matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;

  // For the clinic's dashboard: this device added the portal to its home screen, or opened
  // it from there. Told once per tab session; the server counts a record once.
  function reportInstall(how) {
    var where = idleMeta && idleMeta.getAttribute("data-installed");
    if (!where || sessionStorage.getItem("portal-installed")) return;
    sessionStorage.setItem("portal-installed", how);
    var token = document.querySelector('meta[name="csrf-token"]');
    fetch(where, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.content : "" },
      body: new URLSearchParams({ how: how }),
    }).catch(function () {});
  }
  if (standalone) reportInstall("standalone");

  function showInstallHint() {
    var card = document.getElementById("install");
    if (!card || standalone) return;
    var button = document.getElementById("install-button");
    var ios = document.getElementById("install-ios");
    if (deferredPrompt && button) {
      button.hidden = false;
      card.hidden = false;
    } else if (/iPhone|iPad|iPod/.test(navigator.userAgent) && ios) {
      ios.hidden = false;
      card.hidden = false;
    }
  }

  window.addEventListener("beforeinstallprompt", function (event) {
    event.preventDefault();
    deferredPrompt = event;
    showInstallHint();
  });
  window.addEventListener("appinstalled", function () {
    reportInstall("appinstalled");
    deferredPrompt = null;
    var card = document.getElementById("install");
    if (card) card.hidden = true;
  });
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element) || !target.closest("#install-button") || !deferredPrompt) return;
    deferredPrompt.prompt();
    deferredPrompt.userChoice.finally(function () {
      deferredPrompt = null;
      var card = document.getElementById("install");
      if (card) card.hidden = true;
    });
  });
  showInstallHint();
  document.addEventListener("htmx:load", showInstallHint);
})();
