// Shared state of the page and small helpers every screen uses.
import { ConnectionLost, ServerError } from "./client.js";
import { h } from "./dom.js";
import { AttachmentError } from "./e2ee.js";
import { ApiError, Rest } from "./rest.js";
import * as store from "./store.js";

export const root = document.getElementById("app");
export const rest = new Rest();
export const KIND_LABELS = { direct: "Message direct", group: "Groupe", patient_case: "Dossier patient" };

/** The signed-in session and what hangs off it; `current`: the open room's id. */
export const app = { session: null, client: null, e2ee: null, profile: null, current: null, ui: null };
export const names = new Map(); // user id -> display name
export const rooms = new Map(); // room id -> room state

export function describe(err) {
  if (err instanceof ApiError || err instanceof ServerError) {
    const known = {
      unauthenticated: "E-mail ou mot de passe incorrect.",
      conflict: "Un compte existe déjà pour cet e-mail.",
      identity_unverified: "Votre identité n'est pas encore vérifiée.",
      forbidden: "Action non autorisée.",
      not_found: "Introuvable.",
      rate_limited: "Trop de tentatives, réessayez dans un instant.",
      unavailable: "Service momentanément indisponible, réessayez.",
    };
    return known[err.code] || `Erreur : ${err.message}`;
  }
  if (err instanceof ConnectionLost) return "Connexion perdue : réessayez une fois reconnecté.";
  if (err instanceof AttachmentError) return `Fichier refusé : ${err.message}.`;
  return `Erreur : ${err?.message || err}`;
}

export function nameOf(user) {
  if (user === app.session?.userId) return "Moi";
  return names.get(user) || `Confrère ${user.slice(0, 6)}`;
}

export function learnName(user, label) {
  if (!user || !label) return;
  names.set(user, label);
  store.put("names", Object.fromEntries(names));
}

export function roomTitle(room) {
  if (room.name) return room.name;
  if (room.kind === "direct") {
    const other = (room.members || []).find((m) => m !== app.session.userId);
    return other ? nameOf(other) : "Message direct";
  }
  return KIND_LABELS[room.kind];
}

export function notice(text, kind = "info") {
  const el = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), 5000);
}
