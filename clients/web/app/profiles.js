// Who is who: colleagues' cards by user id (GET /v1/profiles, SPEC.md §9), cached in
// memory and in IndexedDB, asked in batches for the ids the screens need. A card older
// than an hour is asked again (a new badge, a new name). Screens call nameOf() and
// re-render on the "profiles" event when names arrive.
import * as store from "./store.js";
import { h } from "./dom.js";
import { app, emit, on, rest } from "./state.js";

const FRESH_MS = 60 * 60 * 1000;
const BATCH = 100; // the server's limit per request
const cards = new Map(); // user id -> {card: object | null (not visible), at: ms}
const wanted = new Set();
let timer = null;

export async function loadProfiles() {
  const saved = (await store.get("profiles")) || {};
  for (const [user, entry] of Object.entries(saved)) cards.set(user, entry);
}

export async function forgetProfiles() {
  cards.clear();
  await store.del("profiles");
}

function persist() {
  store.put("profiles", Object.fromEntries(cards)).catch(() => {});
}

/** The card of `user` if known (asking for it when missing or stale), else undefined. */
export function cardOf(user) {
  if (!user) return undefined;
  want(user);
  const entry = cards.get(user);
  return entry ? entry.card : undefined;
}

/** "Dr Anne Martin"; "…" while unknown; "Confrère" when the card is not ours to see. */
export function nameOf(user) {
  const card = cardOf(user);
  if (card === undefined) return "…";
  if (card === null) return "Confrère";
  return fullName(card);
}

/** As nameOf, but "Vous" for oneself (senders, typing, receipts). */
export function whoIs(user) {
  return user === app.session?.userId ? "Vous" : nameOf(user);
}

export function fullName(card) {
  return [card.title, card.first_name, card.last_name].filter(Boolean).join(" ");
}

export function initials(user) {
  const card = cardOf(user);
  if (!card) return "?";
  return `${card.first_name?.[0] || ""}${card.last_name?.[0] || ""}`.toUpperCase();
}

/** Ask again for a card known to be outdated (e.g. a message came from someone whose
 * card says unverified: only verified practitioners can send). */
export function refresh(user) {
  const entry = cards.get(user);
  if (entry) entry.at = 0;
  want(user);
}

/** Cards seen elsewhere (a directory result names its account): no request needed. */
export function learn(card) {
  if (!card?.user || cards.get(card.user)?.card) return;
  cards.set(card.user, { card: { directory: null, profession: "practitioner", ...card }, at: 0 });
  persist();
  emit("profiles");
}

function fresh(user) {
  const entry = cards.get(user);
  return entry !== undefined && Date.now() - entry.at <= FRESH_MS;
}

/** Ask for these users' cards unless fresh ones are held (in one request with the
 * others asked meanwhile). */
export function want(...users) {
  for (const user of users.flat()) if (user && !fresh(user)) wanted.add(user);
  if (!timer && wanted.size) timer = setTimeout(flush, 20);
}

async function flush() {
  timer = null;
  if (!app.session) return;
  const ids = [...wanted].slice(0, BATCH);
  if (!ids.length) return;
  for (const id of ids) wanted.delete(id);
  try {
    const { profiles } = await rest.profiles(ids);
    const now = Date.now();
    const found = new Map(profiles.map((p) => [p.user, p]));
    for (const id of ids) cards.set(id, { card: found.get(id) || null, at: now });
    persist();
    emit("profiles");
  } catch (err) {
    console.info("profiles", ids, err); // asked again next time they are shown
  }
  if (wanted.size && !timer) timer = setTimeout(flush, 20);
}

/** A name that fills itself in: a span showing nameOf(user), redrawn as cards arrive
 * until it has left the page. */
export function nameTag(user, attrs = {}) {
  const el = h("span", attrs, nameOf(user));
  want(user);
  let shown = false;
  const off = on("profiles", () => {
    if (el.isConnected) shown = true;
    else if (shown) {
      off();
      return;
    }
    el.textContent = nameOf(user);
  });
  return el;
}
