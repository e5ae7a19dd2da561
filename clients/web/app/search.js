// Search in one's messages (issue 19): this device keeps an index of the messages it
// decrypted (text and file names), in IndexedDB, each entry encrypted (AES-GCM) under a
// key made in this browser as a non-extractable CryptoKey: the page can use it, never
// read it out, and the database on disk holds ciphertext only. Queries run here; the
// server sees neither the query nor the index. Matching ignores case and accents and
// takes word prefixes: "reunion" finds "Réunion", "cardio" finds "cardiologue".
// An edit replaces the entry's text; a deletion for everyone removes the entry.

const STORE = "entries";
const META = "meta";
const MAX_HITS = 50;

let state = null; // {db, key, entries: Map("room|seq" -> entry), ready: Promise}

/** Lower case, accents and ligatures removed: "Œdème Réunion" → "oedeme reunion". */
export const fold = (s) => s.replace(/œ/gi, "oe").replace(/æ/gi, "ae").normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();

/** The words of a text with where each starts: [{word (folded), at, end}]. */
function words(text) {
  const out = [];
  for (const m of text.matchAll(/[\p{L}\p{N}]+/gu)) out.push({ word: fold(m[0]), at: m.index, end: m.index + m[0].length });
  return out;
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function tx(db, stores, mode, fn) {
  return new Promise((resolve, reject) => {
    const t = db.transaction(stores, mode);
    const out = fn(t);
    t.oncomplete = () => resolve(out);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
}

async function load(deviceId) {
  const open = indexedDB.open(`confrere-search:${deviceId}`, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore(STORE);
    open.result.createObjectStore(META);
  };
  const db = await request(open);
  let key = await tx(db, [META], "readonly", (t) => request(t.objectStore(META).get("key")));
  if (!key) {
    key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    await tx(db, [META], "readwrite", (t) => t.objectStore(META).put(key, "key"));
  }
  const stored = await tx(db, [STORE], "readonly", (t) => {
    const s = t.objectStore(STORE);
    return Promise.all([request(s.getAllKeys()), request(s.getAll())]);
  });
  const [ids, sealed] = stored;
  const entries = new Map();
  for (let i = 0; i < ids.length; i++) {
    try {
      const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed[i].iv }, key, sealed[i].data);
      entries.set(ids[i], JSON.parse(new TextDecoder().decode(plain)));
    } catch (err) {
      console.warn("search index: an entry does not decrypt", err);
    }
  }
  return { db, key, entries };
}

/** Open this device's index (at sign-in); what arrives before it is loaded waits. */
export function openIndex(deviceId) {
  const s = { db: null, key: null, entries: new Map(), ready: null };
  s.ready = load(deviceId).then((loaded) => Object.assign(s, loaded)).catch((err) => console.warn("search index unavailable", err));
  state = s;
}

export function closeIndex() {
  state?.db?.close();
  state = null;
}

async function write(s, id, entry) {
  if (!s.db) return;
  if (!entry) {
    await tx(s.db, [STORE], "readwrite", (t) => t.objectStore(STORE).delete(id));
    return;
  }
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, s.key, new TextEncoder().encode(JSON.stringify(entry)));
  await tx(s.db, [STORE], "readwrite", (t) => t.objectStore(STORE).put({ iv, data }, id));
}

function later(fn) {
  const s = state;
  if (!s) return Promise.resolve();
  return s.ready.then(() => (state === s ? fn(s) : null)).catch((err) => console.warn("search index", err));
}

/** A decrypted message (rooms.js onMessage): indexed, or, for an edit, its original's
 * entry takes the new text (history re-read at each start finds what it has). */
export function indexMessage(m) {
  return later((s) => {
    const text = [m.text || "", ...(m.files || []).map((f) => f.name || "")].filter(Boolean).join(" ");
    if (m.edits != null) {
      const id = `${m.room}|${m.edits}`;
      const entry = s.entries.get(id);
      if (!entry || entry.sender !== m.sender || (entry.edit || 0) >= m.seq) return null;
      const next = { ...entry, text, edit: m.seq };
      s.entries.set(id, next);
      return write(s, id, next);
    }
    const id = `${m.room}|${m.seq}`;
    const entry = s.entries.get(id);
    if (entry && (entry.edit || entry.text === text)) return null; // known (or edited since)
    const next = { room: m.room, seq: m.seq, sender: m.sender, ts: m.ts, text };
    s.entries.set(id, next);
    return write(s, id, next);
  });
}

/** A message deleted for everyone: out of the index. */
export function unindex(room, seq) {
  return later((s) => {
    const id = `${room}|${seq}`;
    if (!s.entries.has(id)) return null;
    s.entries.delete(id);
    return write(s, id, null);
  });
}

/** The messages whose words start with each word of the query, newest first:
 * [{room, seq, sender, ts, text, match: [at, end] of the first word found}]. */
export async function search(query) {
  const s = state;
  if (!s) return [];
  await s.ready;
  const wanted = words(query).map((w) => w.word);
  if (!wanted.length) return [];
  const hits = [];
  for (const entry of s.entries.values()) {
    const found = words(entry.text);
    let first = null;
    const all = wanted.every((q) => {
      const w = found.find((f) => f.word.startsWith(q));
      if (w && (!first || w.at < first.at)) first = w;
      return Boolean(w);
    });
    if (all) hits.push({ ...entry, match: [first.at, first.end] });
  }
  hits.sort((a, b) => b.ts - a.ts || b.seq - a.seq);
  return hits.slice(0, MAX_HITS);
}
