// Installable web app: the service worker (/sw.js) keeps the application's own files
// for offline starts; it never stores an API answer, a message or a file (sw.js).
// Trusted Types guard the worker's URL: one policy, allowing that URL only
// (the Content-Security-Policy names it, server/routes/web.py).
export function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || !window.trustedTypes) return;
  const policy = trustedTypes.createPolicy("confrere-sw", {
    createScriptURL: (url) => {
      if (url !== "/sw.js") throw new TypeError("only the application's service worker");
      return url;
    },
  });
  navigator.serviceWorker.register(policy.createScriptURL("/sw.js"), { scope: "/" }).catch((err) => console.info("service worker", err));
}
