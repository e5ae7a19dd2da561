// One conversation: its header (who, presence, the case header, the actions), the
// timeline (messages with their sender's name, files, receipts, events; "modifié"
// after an edit, "Message supprimé" once deleted for everyone), each message's actions
// (reply, forward, edit, delete), replies with their quote, @mentions highlighted, who is
// typing, and the composer (text and encrypted PDF/JPEG/PNG files; it edits a
// message in place or answers one when asked; "@" suggests the room's members).
import { h, icon, replace, when } from "../dom.js";
import { describe, UNREADABLE } from "../i18n.js";
import { app, KIND_LABELS, notice, on, rooms } from "../state.js";
import { cardOf, nameOf, want, whoIs } from "../profiles.js";
import { markRead, otherOf, setRoomSettings, shownOf } from "../rooms.js";
import { back } from "../router.js";
import { confirmDialog, dialog, presenceDot, verifiedBadge } from "../widgets.js";
import { roomTitle } from "./messaging.js";
import { roomDetails, safetyDialog, setCaseStatus } from "./room-details.js";
import { showProfile } from "./profile-card.js";
import { MAX_FILES } from "../e2ee.js";
import { acceptDrops, fileView } from "./files.js";

const TYPING_IDLE_MS = 3000; // after this long without a keystroke, "stopped typing"
const CHANGE_WINDOW_MS = 48 * 3600 * 1000; // an author edits or deletes for 48 h (SPEC.md §4.2, §4.20)
const QUOTE_CHARS = 200; // of a reply's excerpt (SPEC.md §11.2)
const dropTargets = new WeakSet(); // panes listening for dropped files
let reveal = null; // {room, seq}: a message to scroll to and highlight (a search result)
let view = null; // {id, highlight, header, messages, typing, composer, text, progress, editing, replyTo, mentions, menu}

export function conversation(pane, id) {
  const messages = h("ol", { id: "messages", class: "messages", "aria-label": "Messages" });
  const typing = h("p", { id: "typing", class: "typing", "aria-live": "polite" });
  const header = h("header", { class: "chat-header" });
  const composer = h("div", { class: "composer-slot" });
  const opened = rooms.get(id);
  view = { id, highlight: null, header, messages, typing, composer, text: null, unreadFrom: opened ? firstUnread(opened) : null, progress: null, closed: null, editing: null, replyTo: null, mentions: new Map(), menu: null, banner: null, submit: null, suggest: null };
  replace(pane, header, messages, typing, composer);
  if (!dropTargets.has(pane)) {
    dropTargets.add(pane);
    acceptDrops(pane, (files) => view?.progress && sendFiles(files, view.progress));
  }
  renderHeader();
  renderComposer();
  renderMessages();
  const room = rooms.get(id);
  if (room?.markedUnread) setRoomSettings(room, { unread: false }).catch(() => {}); // opened: read
  if (room) markRead(room);
  view.text?.focus({ preventScroll: true });
}

/** Open on message `seq` of `room` (a search result): scrolled to and highlighted,
 * now if that conversation is open, else when it opens. */
export function revealMessage(room, seq) {
  reveal = { room, seq };
  if (view && view.id === room && view.header.isConnected) renderMessages();
}

/** The first message from someone else past the read marker, where the "Nouveaux
 * messages" line goes (fixed while the conversation stays open). */
function firstUnread(room) {
  let first = null;
  for (const m of room.messages.values()) {
    if (m.type !== "event" && m.sender !== app.session.userId && m.seq > room.readSeq && (first === null || m.seq < first)) first = m.seq;
  }
  return first;
}

function current() {
  return view && view.id === app.current && view.header.isConnected ? rooms.get(view.id) : null;
}

function renderHeader() {
  const room = current();
  if (!room) return;
  const other = room.kind === "direct" ? otherOf(room) : null;
  const card = other ? cardOf(other) : null;
  let caseHeader = null;
  if (room.kind === "patient_case") {
    const plain = room.header ? app.e2ee.decryptHeader(room.id, room.header) : null;
    caseHeader = h("p", { class: "case-header", id: "case-header" }, plain ?? (room.header ? "En-tête chiffré (clé en attente)" : "Pas d'en-tête"));
  }
  const online = room.members.filter((m) => m !== app.session.userId && room.online.has(m)).length;
  const subtitle = other
    ? [presenceDot(room.online.has(other)), card ? card.specialty : "", room.online.has(other) ? " · en ligne" : ""]
    : [`${KIND_LABELS[room.kind]}${room.status === "closed" ? " — clos" : ""} · ${room.members.length} membres`, online ? ` · ${online} en ligne` : ""];
  const admin = room.role !== "member";
  replace(view.header,
    h("div", { class: "chat-title" },
      h("button", { type: "button", class: "icon back", id: "back", "aria-label": "Retour aux conversations", title: "Retour", onclick: () => back("/") }, icon("back")),
      h("button", { type: "button", class: "title-button", onclick: () => (other ? showProfile(other) : roomDetails(room.id)) },
        h("h2", { id: "room-title" }, roomTitle(room), other ? verifiedBadge(card?.verified) : null),
        h("span", { class: "members", id: "room-subtitle" }, subtitle)),
      h("div", { class: "actions" },
        room.kind === "direct" ? h("button", { type: "button", id: "safety", class: "icon-text", title: "Vérifier la sécurité", onclick: () => safetyDialog(room) }, icon("shield"), h("span", {}, " Vérifier la sécurité")) : null,
        room.kind === "patient_case" && admin
          ? h("button", { type: "button", id: "case-status", onclick: () => setCaseStatus(room, room.status === "closed" ? "open" : "closed") },
            room.status === "closed" ? "Rouvrir le cas" : "Clore le cas")
          : null,
        h("button", { type: "button", id: "room-info", class: "icon-text", "aria-label": "Infos et membres", title: "Infos et membres", onclick: () => roomDetails(room.id) }, icon("info"), h("span", {}, " Infos")))),
    caseHeader,
    room.notes.map((n) => h("p", { class: "key-change", role: "alert" }, typeof n === "function" ? n() : n)));
}

function renderComposer() {
  const room = current();
  if (!room) return;
  const closed = room.status === "closed";
  if (view.closed === closed) return;
  view.closed = closed;
  if (closed) {
    view.text = null;
    view.editing = null;
    view.replyTo = null;
    replace(view.composer, h("p", { class: "closed" }, "Ce cas patient est clos : lecture seule."));
    return;
  }
  const progress = h("progress", { id: "upload-progress", max: 1, value: 0, hidden: true });
  const fileInput = h("input", { type: "file", id: "file-input", accept: "application/pdf,image/jpeg,image/png", multiple: true, hidden: true, onchange: (e) => onFile(e, progress) });
  const text = h("textarea", { id: "composer", rows: 1, placeholder: "Message chiffré…", "aria-label": "Message", oninput: onInput, onkeydown: onComposerKey,
    "aria-autocomplete": "list", "aria-controls": "mention-list" });
  view.text = text;
  view.progress = progress;
  view.banner = h("div", { class: "composer-context", id: "composer-context", hidden: true });
  view.suggest = h("ul", { class: "mentions-list", id: "mention-list", role: "listbox", "aria-label": "Mentionner un membre", hidden: true });
  view.submit = h("button", { type: "submit", class: "primary", id: "send" }, "Envoyer");
  replace(view.composer, h("form", { class: "composer", onsubmit: onSend },
    view.banner,
    view.suggest,
    h("button", { type: "button", class: "attach icon-text", title: "Joindre des PDF, JPEG ou PNG (10 fichiers de 50 Mo au plus), ou les glisser-déposer sur la conversation", "aria-label": "Joindre des fichiers", onclick: () => fileInput.click() },
      icon("attach"), h("span", {}, " Joindre")),
    fileInput, text,
    view.submit,
    progress));
}

// -- a message's actions: reply (anyone), edit (its author, 48 h), delete for everyone
// (its author, 48 h; the owner and admins of a group or case, always)

function actionsOf(room, m) {
  if (room.status === "closed" || (m.type !== "msg" && m.type !== "bad")) return null;
  const mine = m.sender === app.session.userId;
  const recent = Date.now() - m.ts < CHANGE_WINDOW_MS;
  const reply = m.type === "msg";
  const edit = mine && recent && m.type === "msg";
  const remove = (mine && recent) || (room.kind !== "direct" && room.role !== "member");
  if (!reply && !edit && !remove) return null;
  const open = view.menu === m.seq;
  const toggle = () => {
    view.menu = open ? null : m.seq;
    renderMessages();
  };
  return h("div", { class: "msg-actions" },
    h("button", { type: "button", class: "icon msg-menu-toggle", "aria-label": "Actions sur le message", title: "Actions", "aria-expanded": String(open), onclick: toggle }, "⋯"),
    open
      ? h("div", { class: "msg-menu", role: "menu" },
        reply ? h("button", { type: "button", role: "menuitem", class: "reply-message", onclick: () => startReply(room, m) }, "Répondre") : null,
        reply ? h("button", { type: "button", role: "menuitem", class: "forward-message", onclick: () => forwardDialog(room, m) }, "Transférer") : null,
        edit ? h("button", { type: "button", role: "menuitem", class: "edit-message", onclick: () => startEditing(room, m) }, "Modifier") : null,
        remove ? h("button", { type: "button", role: "menuitem", class: "delete-message danger", onclick: () => deleteMessage(room, m) }, "Supprimer pour tous") : null)
      : null);
}

/** The line above the composer: the message being edited or answered. */
function renderContext() {
  if (!view.banner) return;
  const room = rooms.get(view.id);
  let line = null;
  if (view.editing != null) line = h("span", {}, "Modification du message");
  else if (view.replyTo) {
    const r = view.replyTo;
    line = h("span", {}, "Réponse à ", h("strong", {}, whoIs(r.sender)), ` : « ${excerpt(room ? quoted(room, r) : r.text)} »`);
  }
  view.banner.hidden = !line;
  replace(view.banner, line, line ? h("button", { type: "button", id: "cancel-context", onclick: cancelContext }, "Annuler") : null);
  if (view.submit) view.submit.textContent = view.editing != null ? "Enregistrer" : "Envoyer";
}

function startEditing(room, m) {
  view.menu = null;
  if (!view.text) return;
  view.replyTo = null;
  view.editing = m.seq;
  view.text.value = shownOf(room, m).text;
  renderContext();
  renderMessages();
  view.text.focus();
}

function startReply(room, m) {
  view.menu = null;
  if (!view.text) return;
  if (view.editing != null) view.text.value = "";
  view.editing = null;
  view.replyTo = { seq: m.seq, sender: m.sender, text: shownOf(room, m).text.slice(0, QUOTE_CHARS) };
  renderContext();
  renderMessages();
  view.text.focus();
}

/** "Transférer": pick another open conversation or patient case; the message (text and
 * files) is encrypted anew for it (e2ee.js forward). */
function forwardDialog(room, m) {
  view.menu = null;
  renderMessages();
  const shown = shownOf(room, m);
  const targets = [...rooms.values()].filter((r) => r.id !== room.id && r.status !== "closed" && !r.archived)
    .sort((a, b) => roomTitle(a).localeCompare(roomTitle(b), "fr"));
  const error = h("p", { class: "error", role: "alert", id: "forward-error" });
  const d = dialog("Transférer le message",
    h("p", { class: "forward-preview" }, excerpt(shown.text || shown.files.map((f) => f.name || "fichier").join(", "))),
    targets.length
      ? h("ul", { class: "forward-targets", id: "forward-targets" }, targets.map((r) =>
        h("li", {}, h("button", { type: "button", class: "forward-target", dataset: { room: r.id }, onclick: async (e) => {
          e.currentTarget.disabled = true;
          error.textContent = "";
          try {
            await app.e2ee.forward(shown, r.id);
            d.close();
            notice(`Message transféré dans « ${roomTitle(r)} ».`);
          } catch (err) {
            error.textContent = describe(err);
            e.currentTarget.disabled = false;
          }
        } }, roomTitle(r), h("small", {}, ` · ${KIND_LABELS[r.kind]}`)))))
      : h("p", {}, "Aucune autre conversation ouverte."),
    error);
  d.id = "forward-dialog";
}

/** Leave edit or reply mode (Annuler, Escape); an edit's text leaves the composer. */
function cancelContext() {
  if (!view) return;
  if (view.editing != null && view.text) view.text.value = "";
  view.editing = null;
  view.replyTo = null;
  renderContext();
  renderMessages();
}

// -- replies and mentions as shown

const excerpt = (text) => (text.length > 90 ? `${text.slice(0, 89)}…` : text);

/** What a reply shows of the message it answers: the message as this device has it
 * (edited, or deleted whatever the excerpt says), else the excerpt it carries. */
function quoted(room, reply) {
  const original = room.messages.get(reply.seq);
  if (original?.type === "deleted" || room.deleted.has(reply.seq)) return "Message supprimé";
  if (original?.type === "msg" && original.sender === reply.sender) return shownOf(room, original).text || "Fichier";
  return reply.text;
}

function quoteView(room, reply) {
  want(reply.sender);
  return h("button", { type: "button", class: "quote", dataset: { testid: "quote", seq: String(reply.seq) }, title: "Voir le message cité",
    onclick: () => view.messages.querySelector(`[data-seq="${reply.seq}"]`)?.scrollIntoView({ block: "center" }) },
  h("span", { class: "quote-sender" }, whoIs(reply.sender)),
  h("span", { class: "quote-text" }, excerpt(quoted(room, reply))));
}

/** The text with each mentioned member's "@Name" highlighted (stronger for oneself). */
function withMentions(text, mentions) {
  if (!mentions?.length || !text) return text;
  const names = mentions.map((u) => ({ u, tag: `@${nameOf(u)}` })).filter((m) => m.tag.length > 2);
  const parts = [];
  let rest = text;
  while (rest) {
    let best = null;
    for (const m of names) {
      const at = rest.indexOf(m.tag);
      if (at >= 0 && (!best || at < best.at)) best = { ...m, at };
    }
    if (!best) break;
    if (best.at) parts.push(rest.slice(0, best.at));
    parts.push(h("mark", { class: `mention${best.u === app.session.userId ? " me" : ""}`, dataset: { testid: "mention" } }, best.tag));
    rest = rest.slice(best.at + best.tag.length);
  }
  if (rest) parts.push(rest);
  return parts;
}

// -- "@": the room's members to mention

const fold = (s) => s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();

function mentionQuery() {
  const t = view.text;
  const before = t.value.slice(0, t.selectionStart);
  const found = /(?:^|\s)@([^\s@]{0,30})$/u.exec(before);
  return found ? { query: found[1], start: before.length - found[1].length - 1 } : null;
}

function renderSuggestions() {
  const room = rooms.get(view.id);
  const q = view.text && room ? mentionQuery() : null;
  const others = q ? room.members.filter((u) => u !== app.session.userId) : [];
  const hits = others.filter((u) => fold(nameOf(u)).split(/\s+/).some((w) => w.startsWith(fold(q.query))) || fold(nameOf(u)).startsWith(fold(q.query))).slice(0, 8);
  view.suggest.hidden = !hits.length;
  replace(view.suggest, hits.map((u) =>
    h("li", { role: "option" },
      h("button", { type: "button", class: "mention-option", dataset: { user: u }, onmousedown: (e) => e.preventDefault(), onclick: () => pickMention(u) },
        nameOf(u), cardOf(u)?.specialty ? h("small", {}, ` · ${cardOf(u).specialty}`) : null))));
}

function pickMention(user) {
  const q = mentionQuery();
  if (!q) return;
  const t = view.text;
  const tag = `@${nameOf(user)} `;
  t.value = t.value.slice(0, q.start) + tag + t.value.slice(t.selectionStart);
  const caret = q.start + tag.length;
  t.setSelectionRange(caret, caret);
  view.mentions.set(user, tag.trim());
  view.suggest.hidden = true;
  t.focus();
}

function onInput() {
  onTyping();
  renderSuggestions();
}

async function deleteMessage(room, m) {
  view.menu = null;
  renderMessages();
  const ok = await confirmDialog("Supprimer le message",
    "Le message sera supprimé pour tous les participants, sur tous leurs appareils. Cette action est définitive.",
    "Supprimer pour tous");
  if (!ok) return;
  try {
    await app.e2ee.deleteMessage(room.id, m.seq);
    if (view?.editing === m.seq) cancelContext();
  } catch (err) {
    notice(describe(err), "error");
  }
}

function messageView(room, m) {
  if (m.type === "event") return h("li", { class: "event", dataset: { seq: String(m.seq) } }, typeof m.text === "function" ? m.text() : m.text);
  const mine = m.sender === app.session.userId;
  if (m.type === "deleted") {
    const by = !m.by || m.by === m.sender ? "" : m.by === app.session.userId ? " par vous" : ` par ${whoIs(m.by)}`;
    return h("li", { class: `msg ${mine ? "mine" : "theirs"} deleted`, dataset: { seq: String(m.seq), testid: "message" } },
      h("div", { class: "meta" },
        h("span", { class: "sender" }, mine ? "Vous" : whoIs(m.sender)),
        " · ", h("time", { datetime: new Date(m.ts).toISOString() }, when(m.ts))),
      h("p", { class: "text deleted-note" }, `Message supprimé${by}`));
  }
  const shown = m.type === "msg" ? shownOf(room, m) : { text: "", files: [], edited: false };
  const readers = mine
    ? [...room.receipts.entries()].filter(([u, upto]) => u !== app.session.userId && upto >= m.seq).map(([u]) => nameOf(u))
    : [];
  const card = cardOf(m.sender);
  return h("li", { class: `msg ${mine ? "mine" : "theirs"} ${m.type === "bad" ? "bad" : ""}${m.seq === view.highlight ? " highlight" : ""}`, dataset: { seq: String(m.seq), testid: "message" } },
    h("div", { class: "meta" },
      mine
        ? h("span", { class: "sender" }, "Vous")
        : h("button", { type: "button", class: "sender", title: "Voir le profil", onclick: () => showProfile(m.sender) }, whoIs(m.sender), verifiedBadge(card?.verified)),
      card?.specialty && !mine ? h("span", { class: "sender-specialty" }, ` · ${card.specialty}`) : null,
      " · ", h("time", { datetime: new Date(m.ts).toISOString() }, when(m.ts)),
      shown.edited ? h("span", { class: "edited", dataset: { testid: "edited" } }, " · modifié") : null,
      m.forwarded ? h("span", { class: "forwarded", dataset: { testid: "forwarded" } }, " · transféré") : null,
      actionsOf(room, m)),
    m.reply ? quoteView(room, m.reply) : null,
    m.type === "bad"
      ? h("p", { class: "text undecryptable" }, "Message illisible : ", UNREADABLE[m.kind] || UNREADABLE.other)
      : h("p", { class: "text" }, withMentions(shown.text, m.mentions)),
    shown.files.map((f) => fileView(room.id, f)),
    mine ? h("span", { class: "receipt", dataset: { testid: "receipt" } }, readers.length ? `✓✓ Lu par ${readers.join(", ")}` : "✓ Envoyé") : null);
}

function renderMessages() {
  const room = current();
  if (!room) return;
  const list = view.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const ordered = [...room.messages.values()].sort((a, b) => a.seq - b.seq);
  replace(list, ordered.map((m) => [
    m.seq === view.unreadFrom ? h("li", { class: "unread-marker", role: "separator", dataset: { testid: "unread-marker" } }, h("span", {}, "Nouveaux messages")) : null,
    messageView(room, m)]));
  if (atBottom || !list.dataset.shown) list.scrollTop = list.scrollHeight;
  list.dataset.shown = "1";
  const target = reveal?.room === room.id ? list.querySelector(`[data-seq="${reveal.seq}"]`) : null;
  if (target) {
    reveal = null;
    view.highlight = Number(target.dataset.seq);
    target.classList.add("highlight");
    target.scrollIntoView({ block: "center" });
  }
  renderTyping();
}

function renderTyping() {
  const room = current();
  if (!room) return;
  const typers = [...room.typing.keys()].filter((u) => u !== app.session.userId).map(nameOf);
  view.typing.textContent = typers.length ? `${typers.join(", ")} ${typers.length > 1 ? "écrivent" : "écrit"}…` : "";
}

on("room", (id) => {
  if (!view || id !== view.id) return;
  renderHeader();
  renderComposer();
  renderMessages();
});
on("typing", (id) => view && id === view.id && renderTyping());

// -- sending

let typingOn = false;
let typingTimer = null;

function onTyping() {
  const room = app.current;
  if (!room) return;
  if (!typingOn) {
    typingOn = true;
    app.client.typing(room, true).catch(() => {});
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => stopTyping(room), TYPING_IDLE_MS);
}

function stopTyping(room) {
  clearTimeout(typingTimer);
  if (typingOn) {
    typingOn = false;
    app.client.typing(room, false).catch(() => {});
  }
}

function onComposerKey(e) {
  const suggesting = view.suggest && !view.suggest.hidden;
  if (e.key === "Escape" && suggesting) {
    e.preventDefault();
    view.suggest.hidden = true;
    return;
  }
  if (e.key === "Escape" && (view.editing != null || view.replyTo)) {
    e.preventDefault();
    cancelContext();
    return;
  }
  if ((e.key === "Enter" || e.key === "Tab") && suggesting && !e.isComposing) {
    e.preventDefault();
    view.suggest.querySelector("button")?.click();
    return;
  }
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    e.target.form.requestSubmit();
  }
}

async function onSend(event) {
  event.preventDefault();
  const text = view.text.value.trim();
  if (!text || !app.current) return;
  const room = app.current;
  const editing = view.editing;
  const reply = view.replyTo;
  // Only the members whose "@Name" is still in the text are mentioned.
  const mentions = [...view.mentions].filter(([, tag]) => text.includes(tag)).map(([u]) => u);
  view.mentions.clear();
  view.suggest.hidden = true;
  stopTyping(room);
  cancelContext();
  view.text.value = "";
  try {
    if (editing != null) await app.e2ee.editText(room, editing, text);
    else await app.e2ee.sendText(room, text, reply, mentions);
  } catch (err) {
    if (view.text) view.text.value = text;
    notice(describe(err), "error");
  }
}

async function onFile(event, progress) {
  const files = [...event.target.files];
  event.target.value = "";
  if (files.length) await sendFiles(files, progress);
}

/** Several files (chosen or dropped) in one message, the composer's text as caption. */
async function sendFiles(files, progress) {
  if (!app.current) return;
  if (files.length > MAX_FILES) {
    notice(`${MAX_FILES} fichiers au plus par message.`, "error");
    return;
  }
  const room = app.current;
  progress.hidden = false;
  progress.value = 0;
  try {
    const items = await Promise.all(files.map(async (file) => ({ data: new Uint8Array(await file.arrayBuffer()), name: file.name })));
    await app.e2ee.sendFiles(room, items, view.text?.value.trim() || "", (f) => (progress.value = f));
    if (view.text) view.text.value = "";
  } catch (err) {
    notice(describe(err), "error");
  } finally {
    progress.hidden = true;
  }
}
