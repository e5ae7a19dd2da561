// Browser notifications while the tab is in the background: content-free, like a push
// (SPEC.md §9.5): "Nouveau message de Dr X" in a direct conversation, "Nouveau message
// dans un groupe" / "dans un dossier patient" otherwise, never the text. Each room's
// setting (room.settings, SPEC.md §4.21) decides: "all", every message; "mentions"
// (muted), only a message that mentions this user; "none", nothing. Permission is asked
// from a button the user presses (messaging.js), never on load.
import { app } from "./state.js";
import { nameOf } from "./profiles.js";
import { go } from "./router.js";

const KIND_PLACES = { group: "un groupe", patient_case: "un dossier patient", direct: "une conversation" };
// Per room, the last seq the server had when this page was welcomed: the history read
// again at each start is not news.
const known = new Map();

export const supported = () => "Notification" in window;

/** What the page knows of a room at a welcome (RoomInfo.last_seq). */
export function welcomed(info) {
  known.set(info.id, Math.max(known.get(info.id) || 0, info.last_seq || 0));
}

export function forgetWelcomes() {
  known.clear();
}

/** Whether a room's setting lets a message through to this user. */
export function wanted(room, m) {
  if (room.notify === "none") return false;
  return room.notify !== "mentions" || (m.mentions || []).includes(app.session.userId);
}

/** The notification's text: who or where, never what. */
export function textOf(room, m) {
  return room.kind === "direct" ? `Nouveau message de ${nameOf(m.sender)}` : `Nouveau message dans ${KIND_PLACES[room.kind] || KIND_PLACES.direct}`;
}

/** A message just decrypted (rooms.js onMessage, not edits): shown as a notification if
 * the tab is hidden, permission granted, it is news, from someone else, and wanted. */
export function maybeNotify(room, m) {
  if (!supported() || Notification.permission !== "granted" || document.visibilityState !== "hidden") return;
  if (m.sender === app.session?.userId || m.seq <= (known.get(room.id) || 0) || !wanted(room, m)) return;
  const n = new Notification("Confrère", { body: textOf(room, m), tag: `room:${room.id}`, icon: "/app/icons/icon-192.png" });
  n.onclick = () => {
    window.focus();
    n.close();
    go(`/conversations/${room.id}`);
  };
}

/** The button's work: ask for permission; resolves with the answer. */
export function askPermission() {
  return supported() ? Notification.requestPermission() : Promise.resolve("denied");
}
