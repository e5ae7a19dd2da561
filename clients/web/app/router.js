// The router: one path per view (SPEC.md §9.3; the server serves the page at each of
// them, server/routes/web.py PAGES), history entries for the phone's back button.
//
// route("/conversations/:room", view) registers a view; a view is called with
// ({params, query, hash, path}) and draws the page. go(path) adds a history entry,
// go(path, {replace: true}) replaces the current one; back(target) goes up to target.
const routes = [];
let depth = 0; // entries of ours below the current one (history.state.depth)
let beforeEach = null;

export function route(pattern, view) {
  const keys = [];
  const source = pattern.replace(/:(\w+)/g, (_, key) => {
    keys.push(key);
    return "([^/]+)";
  });
  routes.push({ regexp: new RegExp(`^${source}/?$`), keys, view });
}

/** `fn(location) -> path | null`: a redirect (replacing the entry) or null to proceed. */
export function guard(fn) {
  beforeEach = fn;
}

export function current() {
  const query = Object.fromEntries(new URLSearchParams(location.search));
  const hash = Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
  return { path: location.pathname, query, hash, rawHash: location.hash.slice(1) };
}

function render() {
  const where = current();
  const redirect = beforeEach?.(where);
  if (redirect && redirect !== where.path + location.search) {
    go(redirect + location.hash, { replace: true }); // the fragment (an outcome) goes along
    return;
  }
  for (const r of routes) {
    const m = r.regexp.exec(where.path);
    if (!m) continue;
    const params = Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1])]));
    for (const d of document.querySelectorAll("dialog[open]:not([data-keep])")) d.close(); // a device approval stays
    r.view({ ...where, params });
    return;
  }
  go("/", { replace: true });
}

export function go(path, { replace = false } = {}) {
  if (replace) history.replaceState({ depth, prev: history.state?.prev }, "", path);
  else {
    const prev = location.pathname;
    depth += 1;
    history.pushState({ depth, prev }, "", path);
  }
  render();
}

/** Up to `target` (a conversation's ← goes to the list): the browser's back when the
 * previous entry is that page, so that history stays as the user walked it; else a
 * new entry. */
export function back(target = "/") {
  if (depth > 0 && history.state?.prev === target) history.back();
  else go(target);
}

/** Forget the fragment (a one-time outcome, e.g. #verification=…) without a new entry. */
export function clearHash() {
  history.replaceState(history.state, "", location.pathname + location.search);
}

export function start() {
  depth = history.state?.depth || 0;
  history.replaceState({ depth, prev: history.state?.prev }, "", location.href);
  window.addEventListener("popstate", (e) => {
    depth = e.state?.depth || 0;
    render();
  });
  render();
}

/** Re-draw the current view (after signing in or out, for instance). */
export function refresh() {
  render();
}
