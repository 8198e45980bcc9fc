// Runs the portal's service worker in Node with a stand-in `self`, then replays one event
// given as JSON on stdin and prints what the worker did. Used by tests/unit/test_service_worker.py.
import vm from "node:vm";
import { readFileSync } from "node:fs";

const input = JSON.parse(readFileSync(0, "utf8"));
const origin = "https://portal.example";
const calls = [];
const handlers = {};
const windows = input.windows.map((url) => ({
  url,
  focus() {
    calls.push(["focus", url]);
    return Promise.resolve(this);
  },
  navigate(target) {
    calls.push(["navigate", target]);
    return Promise.resolve(this);
  },
}));
const self = {
  location: { origin, search: input.search || "" },
  navigator: { language: input.language || "en-US" },
  addEventListener: (type, handler) => (handlers[type] = handler),
  registration: {
    showNotification: (title, options) => {
      calls.push(["show", title, options]);
      return Promise.resolve();
    },
  },
  clients: {
    matchAll: () => Promise.resolve(windows),
    openWindow: (url) => {
      calls.push(["open", url]);
      return Promise.resolve(null);
    },
    claim: () => Promise.resolve(),
  },
  skipWaiting: () => Promise.resolve(),
};
vm.runInNewContext(input.source, {
  self,
  caches: {},
  fetch: () => {},
  URL,
  URLSearchParams,
  Promise,
  console,
});

let waited = Promise.resolve();
const event = {
  waitUntil: (promise) => (waited = promise),
  notification: { data: input.data, close: () => calls.push(["close"]) },
  data: input.payload === undefined ? null : { json: () => JSON.parse(input.payload) },
};
handlers[input.type](event);
await waited;
console.log(JSON.stringify(calls));
