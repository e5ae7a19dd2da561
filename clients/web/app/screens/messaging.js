// The messaging (/, /conversations, /conversations/:room): the top bar (connection,
// who is signed in), the list of conversations and the open one. On a wide screen
// both panes show; on a phone one at a time (data-view "list" or "chat"), the phone's
// back button returning from a conversation to the list (router.js).
import { h, replace, when } from "../dom.js";
import { app, emit, KIND_LABELS, notice, on, rooms } from "../state.js";
import { initials, nameOf, want } from "../profiles.js";
import { flushReads, lastActivity, otherOf, shownOf, unread, watchPresence } from "../rooms.js";
import { clearHash, go } from "../router.js";
import { avatar, presenceDot } from "../widgets.js";
import { search } from "../search.js";
import { askPermission, supported as notificationsSupported } from "../notify.js";
import { conversation, revealMessage } from "./conversation.js";
import { newConversationDialog } from "./new-conversation.js";
import { chrome } from "./shell.js";

let ui = null; // {layout, list, chat, query}
let hits = null; // the search's results while a query is typed, else null
let showArchived = false; // the archived conversations unfolded under the list
let waiting = null; // a conversation opened (reload, link) before the welcome listed it

export function messagingView({ params, hash = {} }) {
  if (hash.verification === "verified") {
    // Back from Pro Santé Connect, verified: the guard brought us straight here.
    clearHash();
    sessionStorage.setItem("welcome", "1");
  }
  if (!ui || !ui.layout.isConnected) build();
  else chrome(); // the menu's current entry
  const id = params.room || null;
  if (id && !rooms.has(id) && rooms.size) {
    // Not (or no longer) one of ours: back to the list.
    go("/", { replace: true });
    return;
  }
  if (id !== app.current) flushReads(); // the room left: its marker goes now
  app.current = id;
  ui.layout.dataset.view = id ? "chat" : "list";
  watchPresence(id);
  waiting = id && !rooms.has(id) ? id : null; // drawn again once the welcome lists it
  if (id) conversation(ui.chat, id);
  else replace(ui.chat, h("div", { class: "empty" }, h("p", {}, "Choisissez une conversation ou créez-en une."),
    h("button", { type: "button", class: "primary", onclick: newConversationDialog }, "Nouveau message")));
  renderList();
  if (sessionStorage.getItem("password-reset")) {
    sessionStorage.removeItem("password-reset");
    notice("Votre mot de passe a été changé. Toutes les autres sessions de votre compte ont été fermées.");
  }
  if (sessionStorage.getItem("welcome")) {
    sessionStorage.removeItem("welcome");
    notice("Félicitations, votre compte est créé ! Vous pouvez désormais communiquer de manière sécurisée avec vos confrères.");
  }
}

function build() {
  hits = null;
  const query = h("input", { type: "search", id: "message-search", placeholder: "Rechercher dans mes messages", "aria-label": "Rechercher dans mes messages",
    autocomplete: "off", oninput: runSearch, onkeydown: (e) => e.key === "Escape" && clearSearch() });
  const list = h("ul", { id: "room-list", class: "rooms", "aria-label": "Conversations" });
  const chat = h("section", { id: "chat", class: "chat", "aria-live": "polite" });
  const layout = h("div", { class: "layout", dataset: { view: "list" } },
    chrome(),
    h("nav", { class: "side", "aria-label": "Conversations" },
      app.profile?.email_confirmed === false
        ? h("p", { class: "banner warn", id: "confirm-email" }, "Votre adresse e-mail n'est pas encore confirmée. ",
          h("button", { type: "button", class: "link", onclick: () => go("/verification") }, "Vérifier mon adresse mail"))
        : null,
      notificationsBanner(),
      h("button", { id: "new-conversation", class: "primary wide", onclick: newConversationDialog }, "+ Nouveau message"),
      h("form", { class: "message-search", role: "search", onsubmit: (e) => e.preventDefault() },
        query),
      list),
    chat);
  ui = { layout, list, chat, query };
  replace(document.getElementById("app"), layout);
}

/** Until this browser was asked: a button that asks permission to show notifications
 * while Confrère is in the background (asked on a click, never on load). */
function notificationsBanner() {
  if (!notificationsSupported() || Notification.permission !== "default" || localStorage.getItem("notifications-banner") === "later") return null;
  const banner = h("p", { class: "banner", id: "notifications-banner" },
    "Soyez averti(e) des nouveaux messages quand cet onglet est en arrière-plan. ",
    h("button", { type: "button", class: "link", id: "enable-notifications", onclick: async () => {
      const answer = await askPermission();
      if (answer === "granted") {
        banner.remove();
        notice("Notifications activées sur ce navigateur (sans jamais montrer le contenu des messages).");
      } else if (answer === "denied") {
        replace(banner, "Les notifications sont bloquées pour Confrère dans les réglages de ce navigateur.");
      }
    } }, "Activer les notifications"),
    " · ",
    h("button", { type: "button", class: "link", id: "notifications-later", onclick: () => {
      localStorage.setItem("notifications-banner", "later"); // "Sécurité" still offers them
      banner.remove();
    } }, "Plus tard"));
  return banner;
}

/** One line of the list: who or what, the last message, unread count, presence. */
function preview(room) {
  let last = null;
  for (const m of room.messages.values()) if (m.type === "msg" && (!last || m.seq > last.seq)) last = m;
  if (!last) return KIND_LABELS[room.kind];
  const shown = shownOf(room, last);
  const text = shown.text || (shown.files?.length ? `Fichier : ${shown.files[0].name || "sans nom"}` : "");
  const who = last.sender === app.session.userId ? "Vous : " : room.kind === "direct" ? "" : `${nameOf(last.sender)} : `;
  const line = `${who}${text}`;
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}

/** A room's name, decrypted; null without one or while its key is missing. */
export function roomName(room) {
  return room.name ? app.e2ee.decryptHeader(room.id, room.name) : null;
}

export function roomTitle(room) {
  const name = roomName(room);
  if (name) return name;
  if (room.kind === "direct") {
    const other = otherOf(room);
    return other ? nameOf(other) : KIND_LABELS.direct;
  }
  const others = room.members.filter((m) => m !== app.session.userId).slice(0, 3).map(nameOf);
  return others.length ? `${KIND_LABELS[room.kind]} avec ${others.join(", ")}` : KIND_LABELS[room.kind];
}

const NOTIFY_TAGS = { mentions: "sourdine", none: "sans notification" };

// -- the search in one's messages (search.js): results replace the list while a query
// is typed; opening one opens the message in its conversation.

let searching = 0;
async function runSearch() {
  const q = ui.query.value.trim();
  const run = ++searching;
  const found = q.length >= 2 ? await search(q) : null;
  if (run !== searching) return; // a later keystroke won
  hits = found;
  renderList();
}

function clearSearch() {
  ui.query.value = "";
  hits = null;
  renderList();
}

function excerptOf(hit) {
  const [at, end] = hit.match;
  const start = Math.max(0, hit.text.lastIndexOf(" ", Math.max(0, at - 30)) + 1);
  const stop = Math.min(hit.text.length, end + 60);
  return [start > 0 ? "…" : "", hit.text.slice(start, at), h("mark", {}, hit.text.slice(at, end)), hit.text.slice(end, stop), stop < hit.text.length ? "…" : ""];
}

function hitLine(hit) {
  const room = rooms.get(hit.room);
  want(hit.sender);
  return h("li", {}, h("a", {
    class: "search-hit", href: `/conversations/${hit.room}`, dataset: { testid: "search-hit", room: hit.room, seq: String(hit.seq) },
    onclick: (e) => {
      e.preventDefault();
      revealMessage(hit.room, hit.seq);
      if (app.current !== hit.room) go(`/conversations/${hit.room}`);
    },
  },
  h("span", { class: "room-name" }, roomTitle(room)),
  h("span", { class: "room-time" }, when(hit.ts)),
  h("span", { class: "hit-sender" }, hit.sender === app.session.userId ? "Vous" : nameOf(hit.sender)),
  h("span", { class: "room-preview" }, excerptOf(hit))));
}

/** Pinned conversations first, then the most recent; archived ones folded at the end. */
function renderList() {
  if (!ui || !ui.layout.isConnected) return;
  if (hits) {
    const shown = hits.filter((hit) => rooms.has(hit.room)); // not those of rooms left
    replace(ui.list, shown.length ? shown.map(hitLine) : h("li", { class: "empty", id: "search-empty" }, "Aucun message ne correspond."));
    ui.list.setAttribute("aria-label", "Résultats de la recherche");
    return;
  }
  ui.list.setAttribute("aria-label", "Conversations");
  const sorted = [...rooms.values()].sort((a, b) => (b.pinned - a.pinned) || lastActivity(b) - lastActivity(a));
  const active = sorted.filter((r) => !r.archived);
  const archived = sorted.filter((r) => r.archived);
  const items = active.map(roomLine);
  if (archived.length) {
    items.push(h("li", { class: "archived-toggle" },
      h("button", { type: "button", id: "archived-toggle", class: "link", "aria-expanded": String(showArchived), onclick: () => {
        showArchived = !showArchived;
        renderList();
      } }, `${showArchived ? "Masquer" : "Afficher"} les conversations archivées (${archived.length})`)));
    if (showArchived) items.push(...archived.map(roomLine));
  }
  replace(ui.list, items.length ? items : h("li", { class: "empty" }, "Aucune conversation pour l'instant."));
}

function roomLine(room) {
  const count = unread(room);
  const other = room.kind === "direct" ? otherOf(room) : null;
  if (other) want(other);
  const ts = lastActivity(room);
  return h("li", {}, h("a", {
    class: `room ${room.id === app.current ? "active" : ""} ${count || room.markedUnread ? "has-unread" : ""}`,
    href: `/conversations/${room.id}`,
    dataset: { room: room.id, testid: "room", kind: room.kind },
    "aria-current": room.id === app.current ? "page" : null,
    onclick: (e) => {
      e.preventDefault();
      if (app.current !== room.id) go(`/conversations/${room.id}`);
    },
  },
  avatar(other ? initials(other) : room.kind === "patient_case" ? "CP" : "G", room.kind),
  other ? presenceDot(room.online.has(other)) : null,
  h("span", { class: "room-name" }, roomTitle(room), room.status === "closed" ? h("span", { class: "tag" }, "clos") : null,
    room.pinned ? h("span", { class: "tag pinned", dataset: { testid: "pinned" } }, "épinglée") : null,
    room.archived ? h("span", { class: "tag", dataset: { testid: "archived" } }, "archivée") : null,
    NOTIFY_TAGS[room.notify] ? h("span", { class: "tag muted", dataset: { testid: "muted" } }, NOTIFY_TAGS[room.notify]) : null),
  h("span", { class: "room-time" }, ts ? when(ts) : ""),
  h("span", { class: "room-preview" }, preview(room)),
  count ? h("span", { class: "unread", dataset: { testid: "unread" }, "aria-label": `${count} non lu(s)` }, String(count))
    : room.markedUnread ? h("span", { class: "unread mark", dataset: { testid: "marked-unread" }, "aria-label": "marquée comme non lue" }, "•")
      : null));
}

on("rooms", () => (hits ? runSearch() : renderList()));
on("profiles", () => {
  renderList();
  if (app.current) emit("room", app.current);
});
on("welcome", () => {
  if (!ui?.layout.isConnected) return;
  const ids = app.client?.rooms?.map((r) => r.id) || [];
  if (sessionStorage.getItem("invitation") && ids.length) {
    // Arrived by an invitation link: straight into the conversation that waited.
    sessionStorage.removeItem("invitation");
    if (ids.length === 1 && app.current !== ids[0]) {
      go(`/conversations/${ids[0]}`, { replace: !app.current });
      return;
    }
  }
  if (waiting && rooms.has(waiting)) messagingView({ params: { room: waiting } });
  else if (waiting) go("/", { replace: true });
});
on("left", (id) => {
  if (location.pathname === `/conversations/${id}`) {
    notice("Vous avez quitté la conversation.");
    go("/", { replace: true });
  }
});
on("keys-changed", ({ text, serious }) => notice(text(), serious ? "error" : "info"));
