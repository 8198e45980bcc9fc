// The portal's service worker. It keeps only the app shell (styles, scripts, icons and the
// offline page) and never stores a page with health data: navigations go to the network,
// and only when the network fails does the offline page answer.
"use strict";

const CACHE = "portal-shell-__CACHE_VERSION__";
const PRECACHE_URLS = __PRECACHE_URLS__;
const OFFLINE_URL = "/offline";
// A notification whose payload cannot be read still speaks the person's language: the page
// registers this worker as /sw.js?lang=<its language>; else the browser's language decides.
const FALLBACK_TEXTS = __FALLBACK_TEXTS__;

function fallbackText() {
  const asked = new URLSearchParams(self.location.search || "").get("lang");
  const browser = String((self.navigator && self.navigator.language) || "").slice(0, 2);
  return FALLBACK_TEXTS[asked] || FALLBACK_TEXTS[browser] || FALLBACK_TEXTS.en;
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(PRECACHE_URLS)).then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(keys.filter((key) => key.startsWith("portal-shell-") && key !== CACHE).map((key) => caches.delete(key)))
      )
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (request.mode === "navigate") {
    // Network first; the offline page only when the network cannot answer at all.
    event.respondWith(
      fetch(request).catch(() => caches.match(OFFLINE_URL, { cacheName: CACHE }))
    );
    return;
  }

  if (url.pathname.startsWith("/static/")) {
    // Versioned assets: the cache first, then the network (and nothing new is stored).
    event.respondWith(caches.match(request, { cacheName: CACHE }).then((hit) => hit || fetch(request)));
  }
});

// Push: the payload carries no health data, only a title, a short text, a link and a tag.
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = {};
  }
  const fallback = fallbackText();
  const title = data.title || fallback.title;
  // Only a screen of this portal: "//elsewhere" also starts with a slash.
  let url = "/home";
  try {
    const target = new URL(String(data.url || "/home"), self.location.origin);
    if (target.origin === self.location.origin) url = target.pathname + target.search + target.hash;
  } catch (error) {
    url = "/home";
  }
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body || fallback.body,
      icon: "/static/icons/icon-192.png",
      badge: "/static/icons/icon-192.png",
      tag: data.tag || undefined,
      data: { url },
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/home", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      // An open portal window goes to the linked screen and comes to the front; without
      // one (or if it cannot be moved), a new window opens there.
      const open = windows.find((client) => new URL(client.url).origin === target.origin && "navigate" in client);
      if (!open) return self.clients.openWindow(target.href);
      return open.navigate(target.href).then(
        (moved) => (moved || open).focus().catch(() => moved),
        () => self.clients.openWindow(target.href)
      );
    })
  );
});
