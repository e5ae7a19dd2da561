// Confrère's service worker: the application shell only, for starts without a
// network. It caches the page and the application's own files (/app/, /vendor/, the
// manifest and icons), always asking the network first so that a deployment shows at
// once; it never touches /v1/ (the API: messages, files, profiles, sessions) nor
// anything else, so no decrypted content and no API answer is ever stored here
// (decrypted files only live in the page, as blob: URLs).
const CACHE = "confrere-shell-v1";
const SHELL = ["/", "/app/main.js", "/app/style.css", "/manifest.webmanifest", "/app/icons/icon.svg"];
const PAGES = /^\/(connexion|inscription|inscription-regulateur|verification|conversations(\/[^/]+)?|conditions|confidentialite|signup)?$/;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  if (url.origin !== self.location.origin) return false;
  return url.pathname.startsWith("/app/") || url.pathname.startsWith("/vendor/")
    || url.pathname === "/manifest.webmanifest" || PAGES.test(url.pathname);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || !isShell(url)) return; // the API and the rest: the network only
  // Every page of the client is the same document: one cache entry, "/".
  const key = request.mode === "navigate" ? "/" : request;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(key, copy));
        }
        return response;
      })
      .catch(() => caches.match(key).then((hit) => hit || Response.error())),
  );
});
