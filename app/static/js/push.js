// "Turn on notifications": only when the person asks, never on first load. iPhone and
// iPad allow web push only from the portal added to the Home Screen, and the page says so.
(function () {
  "use strict";

  function show(selector) {
    var element = document.querySelector(selector);
    if (element) element.hidden = false;
  }

  function keyBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(raw, function (c) {
      return c.charCodeAt(0);
    });
  }

  function setUp() {
    var button = document.querySelector("[data-push-subscribe]");
    if (!button || button.dataset.ready) return;
    button.dataset.ready = "1";
    var ios = /iPhone|iPad|iPod/.test(navigator.userAgent);
    var installed = window.matchMedia("(display-mode: standalone)").matches || navigator.standalone;
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      show(ios && !installed ? "[data-push-ios]" : "[data-push-unsupported]");
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      var token = document.querySelector('meta[name="csrf-token"]');
      Notification.requestPermission()
        .then(function (permission) {
          if (permission !== "granted") throw new Error(permission);
          return navigator.serviceWorker.ready;
        })
        .then(function (registration) {
          return registration.pushManager.subscribe({
            userVisibleOnly: true,
            applicationServerKey: keyBytes(button.dataset.key),
          });
        })
        .then(function (subscription) {
          return fetch(button.dataset.url, {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.content : "" },
            body: JSON.stringify(subscription.toJSON()),
          });
        })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (result) {
          window.location.assign(result.redirect);
        })
        .catch(function () {
          button.disabled = false;
          var out = document.getElementById("push-status");
          if (out) {
            out.textContent = button.dataset.failed;
            out.hidden = false;
          }
        });
    });
  }

  setUp(); // start.js runs this file once the page has loaded
  document.addEventListener("htmx:load", setUp);
})();
