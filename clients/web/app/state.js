// Shared state of the page: the signed-in session, the rooms, and a small event bus
// between the model (session.js, rooms.js, profiles.js) and the screens.
import { h } from "./dom.js";
import { Rest } from "./rest.js";

export const root = document.getElementById("app");
export const rest = new Rest();
export const KIND_LABELS = { direct: "Conversation 1 à 1", group: "Groupe", patient_case: "Cas patient" };
export const ROLE_LABELS = { owner: "Propriétaire", admin: "Administrateur", member: "Membre" };

/**
 * session: {token, userId, deviceId, email} once logged in; client/e2ee: the transport
 * and the end-to-end layer; profile: the account (GET /v1/me), with `verified` from the
 * welcome; current: the open room's id; roles: the platform roles (GET /v1/me); arrived:
 * the appointment ids booked in this practitioner's agenda since the agenda was last seen.
 */
export const app = { session: null, client: null, e2ee: null, profile: null, current: null, roles: [], arrived: [] };
export const rooms = new Map(); // room id -> room state (rooms.js)

const listeners = new Map();

/** Topics: "rooms" (the list changed), "room" (id: its timeline or header changed),
 * "typing" (id), "profiles" (names arrived), "status" (connection), "welcome",
 * "appointment" (an appointment.booked event), "nav" (the menu's badges changed). */
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic).delete(fn);
}

export function emit(topic, payload) {
  for (const fn of listeners.get(topic) || []) {
    try {
      fn(payload);
    } catch (err) {
      console.error(topic, err);
    }
  }
}

export function notice(text, kind = "info") {
  const el = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), 6000);
}
