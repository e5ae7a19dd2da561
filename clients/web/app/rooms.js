// Rooms: the list with unread counts, the open room (history, receipts, typing), and
// what the transport and the E2EE layer deliver into them, re-rendered in batches.
import { h, replace, size, when } from "./dom.js";
import { app, describe, KIND_LABELS, nameOf, notice, rooms, roomTitle } from "./state.js";
import { download, onComposerKey, onFile, onSend, onTyping } from "./chat.js";
import { inviteDialog, safetyDialog } from "./dialogs.js";

const TYPING_SHOWN_MS = 6000; // a peer typing with no news for this long has stopped

// -- rooms

export function upsertRoom(info) {
  let room = rooms.get(info.id);
  if (!room) {
    room = { id: info.id, messages: new Map(), receipts: new Map(), typing: new Map(), members: [], readSeq: 0, lastSeq: 0 };
    rooms.set(info.id, room);
  }
  Object.assign(room, { kind: info.kind, status: info.status, role: info.role });
  if (info.name !== undefined) room.name = info.name;
  if (info.header) room.header = info.header;
  if (info.read_seq !== undefined) room.readSeq = Math.max(room.readSeq, info.read_seq);
  if (info.members) {
    room.members = info.members.map((m) => m.user);
    room.invited = (info.invited || []).map((i) => i.email);
  }
  else if (!room.membersLoaded) {
    room.membersLoaded = true;
    app.client.roomGet(info.id).then((full) => {
      Object.assign(room, { kind: full.kind, status: full.status, role: full.role });
      if (full.name) room.name = full.name;
      if (full.header) room.header = full.header;
      room.members = full.members.map((m) => m.user);
      room.invited = (full.invited || []).map((i) => i.email);
      renderRooms();
      if (app.current === room.id) renderChatHeader();
    }).catch(() => {});
  }
  return room;
}

export function unread(room) {
  let n = 0;
  for (const m of room.messages.values()) if (m.sender !== app.session.userId && m.type !== "event" && m.seq > room.readSeq) n++;
  return n;
}

export function lastActivity(room) {
  let ts = 0;
  for (const m of room.messages.values()) ts = Math.max(ts, m.ts || 0);
  return ts;
}

/** The last message of a room, shortened, for the room list. */
function preview(room) {
  let last = null;
  for (const m of room.messages.values()) if (m.type === "msg" && (!last || m.seq > last.seq)) last = m;
  if (!last) return null;
  const text = last.text || (last.files?.length ? `Fichier : ${last.files[0].name || "sans nom"}` : "");
  const who = last.sender === app.session.userId ? "Vous : " : "";
  return `${who}${text.length > 48 ? text.slice(0, 47) + "…" : text}`;
}

export function renderRooms() {
  if (!app.ui?.list) return;
  const sorted = [...rooms.values()].sort((a, b) => lastActivity(b) - lastActivity(a));
  replace(
    app.ui.list,
    sorted.map((room) => {
      const count = unread(room);
      return h(
        "li",
        {},
        h(
          "button",
          { class: `room ${room.id === app.current ? "active" : ""}`, dataset: { room: room.id, testid: "room" }, onclick: () => openRoom(room.id) },
          h("span", { class: "room-name" }, roomTitle(room)),
          h("span", { class: `kind kind-${room.kind}` }, preview(room) || KIND_LABELS[room.kind]),
          count ? h("span", { class: "unread", dataset: { testid: "unread" }, "aria-label": `${count} non lu(s)` }, String(count)) : null,
        ),
      );
    }),
  );
}

export function openRoom(id) {
  app.current = id;
  const room = rooms.get(id);
  const messages = h("ol", { id: "messages", class: "messages" });
  const typing = h("p", { id: "typing", class: "typing", "aria-live": "polite" });
  const progress = h("progress", { id: "upload-progress", max: 1, value: 0, hidden: true });
  const fileInput = h("input", { type: "file", id: "file-input", accept: "application/pdf,image/jpeg,image/png", hidden: true, onchange: (e) => onFile(e, progress) });
  const text = h("textarea", { id: "composer", rows: 2, placeholder: "Écrire un message chiffré…", oninput: onTyping, onkeydown: onComposerKey });
  const closed = room.status === "closed";
  app.ui.room = { messages, typing, text, header: h("div", { class: "chat-header" }) };
  replace(
    app.ui.chat,
    app.ui.room.header,
    messages,
    typing,
    closed
      ? h("p", { class: "closed" }, "Ce dossier patient est clos : lecture seule.")
      : h(
          "form",
          { class: "composer", onsubmit: onSend },
          h("button", { type: "button", class: "attach", title: "Joindre un PDF, JPEG ou PNG", onclick: () => fileInput.click() }, "Joindre"),
          fileInput,
          text,
          h("button", { type: "submit", class: "primary", id: "send" }, "Envoyer"),
          progress,
        ),
  );
  renderChatHeader();
  renderMessages();
  renderRooms();
  markRead(room);
  text.focus();
}

export function renderChatHeader() {
  const room = rooms.get(app.current);
  if (!room || !app.ui.room) return;
  let header = null;
  if (room.kind === "patient_case") {
    const plain = room.header ? app.e2ee.decryptHeader(room.id, room.header) : null;
    header = h("p", { class: "case-header", id: "case-header" }, plain ?? (room.header ? "En-tête chiffré (clé en attente)" : "Pas d'en-tête"));
  }
  const members = (room.members || []).map(nameOf).join(", ");
  replace(
    app.ui.room.header,
    h("h2", { id: "room-title" }, roomTitle(room)),
    h("span", { class: `kind kind-${room.kind}` }, KIND_LABELS[room.kind], room.status === "closed" ? " — clos" : ""),
    header,
    h("p", { class: "members" }, `Membres : ${members}`,
      room.invited?.length ? ` — invités : ${room.invited.join(", ")}` : ""),
    (room.notes || []).map((n) => h("p", { class: "key-change", role: "alert" }, n)),
    h("div", { class: "actions" },
      room.kind !== "direct" && room.role !== "member" ? h("button", { id: "invite", onclick: () => inviteDialog(room) }, "Inviter") : null,
      room.kind === "direct" ? h("button", { id: "safety", onclick: () => safetyDialog(room) }, "Vérifier la sécurité") : null,
      room.kind === "patient_case" && room.role !== "member"
        ? h("button", { id: "case-status", onclick: () => setCaseStatus(room, room.status === "closed" ? "open" : "closed") },
          room.status === "closed" ? "Rouvrir le dossier" : "Clore le dossier")
        : null),
  );
}

export async function setCaseStatus(room, status) {
  try {
    await app.client.updateRoom(room.id, { status });
  } catch (err) {
    notice(describe(err), "error");
  }
}

export function messageView(room, m) {
  if (m.type === "event") return h("li", { class: "event" }, m.text);
  const mine = m.sender === app.session.userId;
  const readers = mine ? [...room.receipts.entries()].filter(([u, upto]) => u !== app.session.userId && upto >= m.seq).map(([u]) => nameOf(u)) : [];
  return h(
    "li",
    { class: `msg ${mine ? "mine" : "theirs"} ${m.type === "bad" ? "bad" : ""}`, dataset: { seq: String(m.seq), testid: "message" } },
    h("div", { class: "meta" }, h("span", { class: "sender" }, nameOf(m.sender)), " · ", h("time", {}, when(m.ts))),
    m.type === "bad"
      ? h("p", { class: "text undecryptable" }, "Message illisible : ", m.reason)
      : h("p", { class: "text" }, m.text),
    (m.files || []).map((f) =>
      h("div", { class: "file", dataset: { testid: "file" } },
        h("span", { class: "file-type" }, f.type === "application/pdf" ? "PDF" : f.type === "image/png" ? "PNG" : "JPEG"),
        h("span", { class: "file-name" }, f.name || "fichier", ` (${size(f.size)})`),
        h("button", { class: "download", onclick: (e) => download(f, e.target) }, "Télécharger"))),
    mine ? h("span", { class: "receipt", dataset: { testid: "receipt" } }, readers.length ? `✓✓ Lu par ${readers.join(", ")}` : "✓ Envoyé") : null,
  );
}

export function renderMessages() {
  const room = rooms.get(app.current);
  if (!room || !app.ui.room) return;
  const list = app.ui.room.messages;
  const ordered = [...room.messages.values()].sort((a, b) => a.seq - b.seq);
  replace(list, ordered.map((m) => messageView(room, m)));
  list.scrollTop = list.scrollHeight;
  renderTyping();
}

/** Who is typing in the open room: only this line changes on a typing event. */
function renderTyping() {
  const room = rooms.get(app.current);
  if (!room || !app.ui.room) return;
  const typers = [...room.typing.keys()].filter((u) => u !== app.session.userId).map(nameOf);
  app.ui.room.typing.textContent = typers.length ? `${typers.join(", ")} ${typers.length > 1 ? "écrivent" : "écrit"}…` : "";
}

export function markRead(room) {
  let last = 0;
  for (const m of room.messages.values()) last = Math.max(last, m.seq);
  if (last > room.readSeq && document.visibilityState === "visible" && app.current === room.id) {
    room.readSeq = last;
    app.client.read(room.id, last).catch(() => {});
    renderRooms();
  }
}

window.addEventListener("online", () => app.client?.retryNow());

document.addEventListener("visibilitychange", () => {
  if (app.current && rooms.has(app.current)) markRead(rooms.get(app.current));
});

// -- incoming

export let renderPending = null; // rooms changed since the last render (history replays many at once)

export function changed(room) {
  if (!renderPending) {
    renderPending = new Set();
    setTimeout(() => {
      const ids = renderPending;
      renderPending = null;
      if (app.current && ids.has(app.current) && rooms.has(app.current)) {
        renderMessages();
        markRead(rooms.get(app.current));
      }
      renderRooms();
    }, 16);
  }
  renderPending.add(room.id);
}

export function roomFor(id) {
  return rooms.get(id) || upsertRoom({ id, kind: "group", status: "open", role: "member" });
}

export function onMessage(m) {
  const room = roomFor(m.room);
  room.messages.set(m.seq, { type: "msg", ...m });
  clearTimeout(room.typing.get(m.sender));
  room.typing.delete(m.sender);
  changed(room);
}

export function onUndecryptable(m) {
  const room = roomFor(m.room);
  room.messages.set(m.seq, { type: "bad", ...m });
  changed(room);
}

/** "Vous avez …" for oneself, "Paul Durand a …" for others. */
function said(user, mine, theirs) {
  return user === app.session.userId ? `Vous ${mine}` : `${nameOf(user)} ${theirs}`;
}

export function onEvent(ev) {
  const me = app.session.userId;
  if (ev.kind === "member.joined" && ev.users.includes(me) && !rooms.has(ev.room)) {
    app.client.roomGet(ev.room).then((info) => {
      upsertRoom(info);
      renderRooms();
    }).catch(() => {});
  }
  const room = roomFor(ev.room);
  let text = null;
  if (ev.kind === "member.joined") {
    for (const u of ev.users) if (!room.members.includes(u)) room.members.push(u);
    text = ev.seq === 1 ? said(ev.by, "avez créé", "a créé") + " la conversation" : `${ev.users.map(nameOf).join(", ")} ${ev.users.length > 1 ? "ont" : "a"} rejoint la conversation`;
  } else if (ev.kind === "member.left") {
    room.members = room.members.filter((u) => u !== ev.user);
    text = ev.reason === "removed" ? said(ev.user, "avez été retiré(e)", "a été retiré(e)") : said(ev.user, "avez quitté", "a quitté") + " la conversation";
    if (ev.user === me) {
      rooms.delete(ev.room);
      if (app.current === ev.room) app.current = null;
      renderRooms();
      return;
    }
  } else if (ev.kind === "guest.invited") {
    // Visible on purpose: from here on, a new sender key (e2ee.js) that the guest gets.
    text = said(ev.by, "avez invité", "a invité") + " une personne par e-mail";
  } else if (ev.kind === "member.promoted") {
    if (!room.members.includes(ev.user)) room.members.push(ev.user);
    text = `${nameOf(ev.user)}, invité(e) par e-mail, a rejoint la conversation`;
  } else if (ev.kind === "room.updated") {
    if (ev.name) room.name = ev.name;
    if (ev.header) room.header = ev.header;
    if (ev.status && ev.status !== room.status) {
      room.status = ev.status;
      if (room.id === app.current) setTimeout(() => openRoom(room.id), 0);
    }
    const roles = { owner: "propriétaire", admin: "administrateur", member: "membre" };
    text = ev.status === "closed" ? said(ev.by, "avez clos", "a clos") + " le dossier"
      : ev.status === "open" ? said(ev.by, "avez rouvert", "a rouvert") + " le dossier"
      : ev.role ? `${nameOf(ev.user)} est désormais ${roles[ev.role] || ev.role}`
      : ev.header ? said(ev.by, "avez mis", "a mis") + " à jour l'en-tête du dossier"
      : said(ev.by, "avez renommé", "a renommé") + " la conversation";
  }
  if (text) room.messages.set(ev.seq, { type: "event", seq: ev.seq, ts: ev.ts, sender: ev.by, text });
  if (room.id === app.current) renderChatHeader();
  changed(room);
}

export function onKeysChanged({ user, replaced }) {
  const text = replaced.length
    ? `Attention : une clé de sécurité de ${nameOf(user)} a été remplacée. Comparez votre numéro de sécurité avant d'échanger des données de patients.`
    : `${nameOf(user)} utilise un nouvel appareil : son numéro de sécurité a changé.`;
  for (const room of rooms.values()) {
    if (!room.members.includes(user)) continue;
    room.notes = room.notes || [];
    room.notes.push(text);
    if (room.id === app.current) renderChatHeader();
  }
  notice(text, replaced.length ? "error" : "info");
}

export function onEphemeral(ev) {
  const room = rooms.get(ev.room);
  if (!room) return;
  if (ev.kind === "receipt") {
    room.receipts.set(ev.user, Math.max(room.receipts.get(ev.user) || 0, ev.upto));
    if (room.id === app.current) renderMessages();
  } else if (ev.kind === "typing") {
    clearTimeout(room.typing.get(ev.user));
    if (ev.on) room.typing.set(ev.user, setTimeout(() => {
      room.typing.delete(ev.user);
      if (room.id === app.current) renderTyping();
    }, TYPING_SHOWN_MS));
    else room.typing.delete(ev.user);
    if (room.id === app.current) renderTyping();
  }
}
