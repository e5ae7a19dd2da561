// Confrère's service worker: the application shell only, for starts without a
// network. It caches the page and the application's own files (/app/, /vendor/, the
// manifest and icons), always asking the network first so that a deployment shows at
// once; it never touches /v1/ (the API: messages, files, profiles, sessions) nor
// anything else, so no decrypted content and no API answer is ever stored here
// (decrypted files only live in the page, as blob: URLs).
//
// Web Push (SPEC.md §9.5): a push carries {title, room}, never a message's content;
// it is shown as a notification ("Confrère", the title as its text, one per room), and
// a click opens that conversation in the client's window (or a new one).
const CACHE = "confrere-shell-v1";
const SHELL = ["/", "/app/main.js", "/app/style.css", "/manifest.webmanifest", "/app/icons/icon.svg"];
const PAGES = /^\/(connexion|inscription|inscription-regulateur|verification|conversations(\/[^/]+)?|conditions|confidentialite|signup|mot-de-passe-oublie|compte\/securite)?$/;

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

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const room = typeof data.room === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(data.room) ? data.room : null;
  const body = typeof data.title === "string" && data.title ? data.title.slice(0, 120) : "Nouveau message";
  event.waitUntil(self.registration.showNotification("Confrère", {
    body,
    tag: room ? `room:${room}` : "confrere",
    icon: "/app/icons/icon-192.png",
    badge: "/app/icons/icon-192.png",
    data: { room },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const room = event.notification.data?.room;
  const target = new URL(room ? `/conversations/${room}` : "/conversations", self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const open = windows.find((w) => new URL(w.url).origin === self.location.origin);
    if (open) {
      await open.focus();
      if ("navigate" in open) return open.navigate(target);
      return undefined;
    }
    return self.clients.openWindow(target);
  })());
});
