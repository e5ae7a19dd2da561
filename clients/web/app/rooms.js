// The rooms, as the transport and the end-to-end layer deliver them: descriptions
// (room.get), timelines (messages and events in seq order), receipts, typing, presence,
// unread counts and the tab title. Screens listen to the "rooms" and "room" events.
import { app, emit, rooms, ROLE_LABELS } from "./state.js";
import { cardOf, refresh, want, whoIs } from "./profiles.js";
import { indexMessage, unindex } from "./search.js";
import { maybeNotify } from "./notify.js";

const TYPING_SHOWN_MS = 6000; // a peer typing with no news for this long has stopped
const PRESENCE_EVERY_MS = 60000; // presence has no event: the open room is asked again
// At most one `read` per room per second while it stays open (SPEC.md §4.4): what was
// read meanwhile goes at the end of that second, or at once when the room is left.
const READ_EVERY_MS = 1000;

function blank(id) {
  return {
    id,
    kind: "group",
    status: "open",
    role: "member",
    name: null,
    header: null,
    members: [], // user ids
    roles: new Map(), // user id -> owner | admin | member
    online: new Set(), // user ids with a live connection (room.get)
    invited: [], // {email, by, at, expires_at}
    messages: new Map(), // seq -> item
    edits: new Map(), // seq of an original -> its latest edit {seq, sender, text, files}
    deleted: new Map(), // seq of a message deleted for everyone -> who deleted it
    receipts: new Map(), // user -> read upto
    typing: new Map(), // user -> timer
    readSeq: 0, // this user's read marker, as shown
    readSent: 0, // the highest marker told to the server (or by it)
    readSentAt: 0, // when the last `read` went
    readTimer: null, // the `read` due at the end of that second
    // This user's own settings (room.settings, SPEC.md §4.21), synced across devices.
    notify: "all", // "all" | "mentions" | "none"
    archived: false,
    pinned: false,
    markedUnread: false,
    notes: [],
    described: false,
  };
}

/** Merge a RoomInfo (SPEC.md §5.2) into the room's state. */
export function upsertRoom(info) {
  let room = rooms.get(info.id);
  if (!room) {
    room = blank(info.id);
    rooms.set(info.id, room);
  }
  for (const key of ["kind", "status", "role"]) if (info[key] !== undefined) room[key] = info[key];
  if (info.name !== undefined) room.name = info.name;
  if (info.header) room.header = info.header;
  if (info.read_seq !== undefined) {
    room.readSeq = Math.max(room.readSeq, info.read_seq);
    room.readSent = Math.max(room.readSent, info.read_seq);
  }
  if (info.kind !== undefined) applySettings(room, info); // a whole RoomInfo: defaults left out
  if (info.members) {
    room.described = true;
    room.members = info.members.map((m) => m.user);
    room.roles = new Map(info.members.map((m) => [m.user, m.role]));
    room.online = new Set(info.members.filter((m) => m.online).map((m) => m.user));
    room.invited = info.invited || [];
    want(room.members);
  } else if (!room.described) describeRoom(room.id);
  return room;
}

function applySettings(room, s) {
  room.notify = s.notify || "all";
  room.archived = !!s.archived;
  room.pinned = !!s.pinned;
  room.markedUnread = !!s.unread;
}

/** Change this user's settings of a room ({notify?, archived?, pinned?, unread?}): shown
 * at once, stored by the server, which tells this user's other devices. */
export async function setRoomSettings(room, fields) {
  const before = { notify: room.notify, archived: room.archived, pinned: room.pinned, unread: room.markedUnread };
  applySettings(room, { ...before, ...fields });
  emit("rooms");
  emit("room", room.id);
  try {
    applySettings(room, await app.client.roomSettings(room.id, fields));
  } catch (err) {
    applySettings(room, before);
    throw err;
  } finally {
    emit("rooms");
    emit("room", room.id);
    updateTitle();
  }
}

/** room.get: members with roles and presence, pending invitations. */
export async function describeRoom(id) {
  const room = rooms.get(id);
  if (room) room.described = true;
  try {
    upsertRoom(await app.client.roomGet(id));
    emit("rooms");
    emit("room", id);
  } catch (err) {
    console.info("room.get", id, err);
  }
}

let presenceTimer = null;
/** Keep the open room's presence fresh while it is shown. */
export function watchPresence(id) {
  clearInterval(presenceTimer);
  if (id) presenceTimer = setInterval(() => app.current === id && describeRoom(id), PRESENCE_EVERY_MS);
}

export function roomFor(id) {
  return rooms.get(id) || upsertRoom({ id });
}

export function unread(room) {
  let n = 0;
  for (const m of room.messages.values()) if (m.sender !== app.session.userId && (m.type === "msg" || m.type === "bad") && m.seq > room.readSeq) n++;
  return n;
}

export function lastActivity(room) {
  let ts = 0;
  for (const m of room.messages.values()) ts = Math.max(ts, m.ts || 0);
  return ts;
}

/** The tab title says how many messages are unread: "(3) Confrère". */
export function updateTitle() {
  let total = 0;
  for (const room of rooms.values()) total += unread(room) || (room.markedUnread ? 1 : 0);
  document.title = total ? `(${total}) Confrère` : "Confrère — messagerie sécurisée des professionnels de santé";
}

/** The other member of a direct room. */
export function otherOf(room) {
  return room.members.find((m) => m !== app.session?.userId) || null;
}

export function markRead(room) {
  let last = 0;
  for (const m of room.messages.values()) last = Math.max(last, m.seq);
  if (last > room.readSeq && document.visibilityState === "visible" && app.current === room.id) {
    room.readSeq = last;
    sendRead(room);
    emit("rooms");
    updateTitle();
  }
}

/** Tell the server the room's read marker: at once if no `read` went for it in the last
 * READ_EVERY_MS, else at the end of that second (`now`: at once, e.g. leaving it). */
function sendRead(room, now = false) {
  if (room.readSeq <= room.readSent) return;
  const wait = room.readSentAt + READ_EVERY_MS - Date.now();
  if (!now && wait > 0) {
    if (!room.readTimer) {
      room.readTimer = setTimeout(() => {
        room.readTimer = null;
        sendRead(room);
      }, wait);
    }
    return;
  }
  clearTimeout(room.readTimer);
  room.readTimer = null;
  room.readSent = room.readSeq;
  room.readSentAt = Date.now();
  app.client.read(room.id, room.readSeq).catch(() => {});
}

/** Send the read markers still waiting for their second to end (the room was left, the
 * page hidden). */
export function flushReads() {
  for (const room of rooms.values()) sendRead(room, true);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") flushReads();
  else if (app.current && rooms.has(app.current)) markRead(rooms.get(app.current));
});
window.addEventListener("pagehide", flushReads);
window.addEventListener("online", () => app.client?.retryNow());

// -- what arrives (history replays many items at once: changes render in batches)

let pending = null;

function changed(room) {
  if (!pending) {
    pending = new Set();
    setTimeout(() => {
      const ids = pending;
      pending = null;
      for (const id of ids) emit("room", id);
      if (app.current && ids.has(app.current) && rooms.has(app.current)) markRead(rooms.get(app.current));
      emit("rooms");
      updateTitle();
    }, 16);
  }
  pending.add(room.id);
}

/** What the conversation shows of a message: {text, files, edited}, from its latest
 * edit by the same sender if any (whose files, if it has some, replace the original's). */
export function shownOf(room, m) {
  const edit = room.edits.get(m.seq);
  if (!edit || edit.sender !== m.sender) return { text: m.text, files: m.files || [], edited: false };
  return { text: edit.text, files: edit.files?.length ? edit.files : m.files || [], edited: true };
}

export function onMessage(m) {
  const room = roomFor(m.room);
  if (m.edits != null) {
    // An edit is not a message of its own: it changes the one it names (SPEC.md §11.2).
    const known = room.edits.get(m.edits);
    if (!room.deleted.has(m.edits) && (!known || known.seq < m.seq)) {
      room.edits.set(m.edits, m);
      indexMessage(m);
    }
    changed(room);
    return;
  }
  if (room.deleted.has(m.seq)) return; // its key came after its deletion
  room.messages.set(m.seq, { type: "msg", ...m });
  indexMessage(m);
  maybeNotify(room, m);
  clearTimeout(room.typing.get(m.sender));
  room.typing.delete(m.sender);
  if (cardOf(m.sender)?.verified === false) refresh(m.sender); // they are, to have sent it
  changed(room);
}

/** A message deleted for everyone, as sync returns it (or the deletion event). */
export function onDeleted(m) {
  const room = roomFor(m.room);
  forget(room, m.edits ?? m.seq, m.by);
  if (m.edits == null) room.messages.set(m.seq, { type: "deleted", seq: m.seq, sender: m.sender, ts: m.ts, by: m.by });
  changed(room);
}

function forget(room, seq, by) {
  room.deleted.set(seq, by);
  unindex(room.id, seq);
  room.edits.delete(seq);
  const m = room.messages.get(seq);
  if (m && m.type !== "event") room.messages.set(seq, { type: "deleted", seq, sender: m.sender, ts: m.ts, by });
}

export function onUndecryptable(m) {
  const room = roomFor(m.room);
  // An edit that cannot be read leaves its original as it was.
  if (m.edits != null || room.deleted.has(m.seq)) return;
  room.messages.set(m.seq, { type: "bad", ...m });
  want(m.sender);
  changed(room);
}

/** Timeline events, told as sentences ("Vous avez …", "Dr Paul Durand a …"); the
 * text is a function so that names arriving later show up. */
export function onEvent(ev) {
  const me = app.session.userId;
  if (ev.kind === "member.joined" && ev.users.includes(me) && !rooms.has(ev.room)) {
    describeRoom(ev.room);
  }
  const room = roomFor(ev.room);
  let text = null;
  const said = (user, mine, theirs) => (user === me ? `Vous ${mine}` : `${whoIs(user)} ${theirs}`);
  const by = (user) => (user === me ? "vous" : whoIs(user));
  if (ev.by) want(ev.by);
  if (ev.kind === "member.joined") {
    want(ev.users);
    for (const u of ev.users) {
      if (!room.members.includes(u)) room.members.push(u);
      if (!room.roles.has(u)) room.roles.set(u, u === ev.by && ev.seq === 1 && room.kind !== "direct" ? "owner" : "member");
    }
    text = ev.seq === 1
      ? () => said(ev.by, "avez créé", "a créé") + " la conversation"
      : () => `${ev.users.map(whoIs).join(", ")} ${ev.users.length > 1 ? "ont" : "a"} rejoint la conversation`;
  } else if (ev.kind === "member.left") {
    want(ev.user);
    room.members = room.members.filter((u) => u !== ev.user);
    room.roles.delete(ev.user);
    text = ev.reason === "removed"
      ? () => `${said(ev.user, "avez été retiré(e)", "a été retiré(e)")} par ${by(ev.by)}`
      : () => said(ev.user, "avez quitté", "a quitté") + " la conversation";
    if (ev.user === me) {
      rooms.delete(ev.room);
      if (app.current === ev.room) app.current = null;
      emit("left", ev.room);
      emit("rooms");
      updateTitle();
      return;
    }
  } else if (ev.kind === "guest.invited") {
    // Visible on purpose: from here on, a new sender key (e2ee.js) that the guest gets.
    text = () => said(ev.by, "avez invité", "a invité") + " un confrère par e-mail";
  } else if (ev.kind === "device.revoked") {
    // Visible on purpose: from here on, a new sender key (e2ee.js) that device never gets.
    want(ev.user);
    text = () => (ev.user === me ? "Vous avez révoqué un de vos appareils" : `Un appareil de ${whoIs(ev.user)} a été révoqué`)
      + " : il ne lit plus les messages de la conversation";
  } else if (ev.kind === "member.promoted") {
    want(ev.user);
    if (!room.members.includes(ev.user)) room.members.push(ev.user);
    room.roles.set(ev.user, "member");
    text = () => `${whoIs(ev.user)}, invité(e) par e-mail, a rejoint la conversation`;
  } else if (ev.kind === "msg.deleted") {
    forget(room, ev.target, ev.by);
  } else if (ev.kind === "room.updated") {
    if (ev.name) room.name = ev.name;
    if (ev.header) room.header = ev.header;
    if (ev.status) room.status = ev.status;
    if (ev.role) {
      room.roles.set(ev.user, ev.role);
      if (ev.role === "owner" && ev.by) room.roles.set(ev.by, "admin");
      if (ev.user === me) room.role = ev.role;
      if (ev.role === "owner" && ev.by === me) room.role = "admin";
      want(ev.user);
    }
    text = ev.status === "closed" ? () => said(ev.by, "avez clos", "a clos") + " le cas patient"
      : ev.status === "open" ? () => said(ev.by, "avez rouvert", "a rouvert") + " le cas patient"
      : ev.role ? () => `${said(ev.user, "êtes", "est")} désormais ${ROLE_LABELS[ev.role].toLowerCase()} (par ${by(ev.by)})`
      : ev.header ? () => said(ev.by, "avez mis", "a mis") + " à jour l'en-tête du cas patient"
      : () => said(ev.by, "avez renommé", "a renommé") + ` la conversation en « ${app.e2ee.decryptHeader(room.id, ev.name) ?? "nom chiffré, clé en attente"} »`;
  }
  if (text) room.messages.set(ev.seq, { type: "event", seq: ev.seq, ts: ev.ts, sender: ev.by, text });
  changed(room);
}

/** A sender key arrived: a room name or case header it encrypted can now be shown. */
export function onKey(roomId) {
  const room = rooms.get(roomId);
  if (room && (room.name || room.header)) changed(room);
}

export function onKeysChanged({ user, replaced, identity }) {
  // With cross-signing (SPEC.md §11.1) only a new identity key changes the number: a
  // new device signed by the same identity does not.
  const serious = identity || replaced.length > 0;
  const text = () => identity
    ? `Attention : la clé d'identité de ${whoIs(user)} a changé, et son numéro de sécurité aussi. Comparez-le avant d'échanger des données de patients.`
    : replaced.length
      ? `Attention : une clé de sécurité de ${whoIs(user)} a été remplacée. Comparez votre numéro de sécurité avant d'échanger des données de patients.`
      : `${whoIs(user)} utilise un nouvel appareil : son numéro de sécurité a changé.`;
  for (const room of rooms.values()) {
    if (!room.members.includes(user)) continue;
    room.notes.push(text);
    changed(room);
  }
  emit("keys-changed", { text, serious });
}

export function onEphemeral(ev) {
  const room = rooms.get(ev.room);
  if (!room) return;
  if (ev.kind === "room.settings") { // from this user's other device
    applySettings(room, ev);
    emit("rooms");
    emit("room", room.id);
    updateTitle();
    return;
  }
  if (ev.kind === "receipts") { // markers raised since the room's last receipts (SPEC.md §4.4)
    for (const { user, upto } of ev.reads || []) {
      room.receipts.set(user, Math.max(room.receipts.get(user) || 0, upto));
      if (user === app.session.userId && upto > room.readSeq) { // read on another device
        room.readSeq = upto;
        room.readSent = Math.max(room.readSent, upto);
        emit("rooms");
        updateTitle();
      }
    }
    emit("room", room.id);
  } else if (ev.kind === "typing") {
    clearTimeout(room.typing.get(ev.user));
    if (ev.on) {
      room.typing.set(ev.user, setTimeout(() => {
        room.typing.delete(ev.user);
        emit("typing", room.id);
      }, TYPING_SHOWN_MS));
    } else room.typing.delete(ev.user);
    want(ev.user);
    emit("typing", room.id);
  }
}
