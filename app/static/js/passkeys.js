// Passkey ceremonies: the server sends WebAuthn options as JSON, the browser's own parsers
// turn them into what navigator.credentials needs, and the credential goes back as JSON.
(function () {
  "use strict";

  function supported() {
    return (
      window.PublicKeyCredential &&
      typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
      typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function"
    );
  }

  function post(url, body) {
    var token = document.querySelector('meta[name="csrf-token"]');
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.content : "" },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          var refused = new Error(data.error || "failed");
          refused.explained = Boolean(data.error); // the server's words, in the person's language
          throw refused;
        }
        return data;
      });
    });
  }

  function say(button, message) {
    var out = document.getElementById(button.getAttribute("data-passkey-status"));
    if (!out) return;
    out.textContent = message;
    out.hidden = false;
  }

  function nextQuery(next) {
    return next ? "?next=" + encodeURIComponent(next) : "";
  }

  // The page names the ceremony's addresses (data-options-url, data-url): the patient's, or
  // the staff console's own.
  function register(next, optionsUrl, url) {
    return post(optionsUrl)
      .then(function (options) {
        return navigator.credentials.create({
          publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
        });
      })
      .then(function (credential) {
        return post(url + nextQuery(next), { credential: credential.toJSON() });
      });
  }

  function signIn(next, optionsUrl, url) {
    return post(optionsUrl)
      .then(function (options) {
        return navigator.credentials.get({
          publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
        });
      })
      .then(function (credential) {
        return post(url + nextQuery(next), {
          credential: credential.toJSON(),
        });
      });
  }

  // Passkeys offered in the browser's autofill on a field marked data-passkey-autofill
  // (conditional mediation). Only one WebAuthn request may be pending, so a button's own
  // ceremony first cancels this one.
  var autofill = null;

  function offerInAutofill() {
    var field = document.querySelector("[data-passkey-autofill]");
    if (!field && autofill) {
      autofill.abort(); // the field's page was swapped away
      autofill = null;
    }
    if (!field || autofill || !supported()) return;
    if (typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") return;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available || autofill) return;
      autofill = new AbortController();
      var signal = autofill.signal;
      post(field.getAttribute("data-options-url"))
        .then(function (options) {
          return navigator.credentials.get({
            mediation: "conditional",
            signal: signal,
            publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
          });
        })
        .then(function (credential) {
          return post(field.getAttribute("data-url"), { credential: credential.toJSON() });
        })
        .then(function (result) {
          window.location.assign(result.redirect);
        })
        .catch(function () {
          autofill = null; // cancelled or refused: the code form still works
        });
    });
  }

  // The server's own words when it refused; else the browser gave up, which (with user
  // verification required) is often a device with no screen lock or a key with no PIN.
  function failure(button, error) {
    if (error && error.explained) return error.message;
    if (error && error.name === "NotAllowedError") return button.getAttribute("data-not-allowed");
    return button.getAttribute("data-failed");
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-passkey]") : null;
    if (!button) return;
    if (autofill) {
      autofill.abort();
      autofill = null;
    }
    if (!supported()) {
      say(button, button.getAttribute("data-unsupported"));
      return;
    }
    button.disabled = true;
    var next = button.getAttribute("data-next");
    var optionsUrl = button.getAttribute("data-options-url");
    var url = button.getAttribute("data-url");
    var flow =
      button.getAttribute("data-passkey") === "register"
        ? register(next, optionsUrl, url)
        : signIn(next, optionsUrl, url);
    flow
      .then(function (result) {
        window.location.assign(result.redirect);
      })
      .catch(function (error) {
        button.disabled = false;
        say(button, failure(button, error));
      });
  });

  function reveal() {
    if (!supported()) return;
    document.querySelectorAll("[data-passkey]").forEach(function (button) {
      button.hidden = false;
    });
  }
  // start.js runs this file once the page has loaded; htmx:load covers pages it swaps in.
  reveal();
  offerInAutofill();
  document.addEventListener("htmx:load", reveal);
  document.addEventListener("htmx:load", offerInAutofill);
})();
