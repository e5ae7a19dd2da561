// A colleague's card (from a sender's name, a member list or a directory result):
// name, badge, specialty, organisations and places of their directory profile, and a
// way to write to them.
import { h, replace } from "../dom.js";
import { describe } from "../i18n.js";
import { app, on, rest } from "../state.js";
import { cardOf, fullName, want } from "../profiles.js";
import { upsertRoom } from "../rooms.js";
import { go } from "../router.js";
import { avatar, dialog, verifiedBadge } from "../widgets.js";

function body(card, userId) {
  if (card === undefined) return h("p", {}, "Chargement…");
  if (card === null) return h("p", {}, "Ce profil n'est pas visible : ce confrère ne partage aucune conversation avec vous et n'apparaît pas dans l'annuaire.");
  const me = userId === app.session?.userId;
  const directory = card.directory || card._hit || null;
  const initials = `${card.first_name?.[0] || ""}${card.last_name?.[0] || ""}`.toUpperCase();
  const error = h("p", { class: "error", role: "alert" });
  return [
    h("div", { class: "profile-head" }, avatar(initials, "large"),
      h("div", {},
        h("h3", { id: "profile-name" }, fullName(card), verifiedBadge(card.verified)),
        h("p", { class: "profile-specialty" }, card.profession === "regulator" ? "Régulateur (SAS)" : card.specialty),
        h("p", { class: `status ${card.verified ? "verified" : "unverified"}` }, card.verified ? "Identité vérifiée" : "Identité non vérifiée"))),
    directory ? h("p", { class: "hint", id: "in-directory" }, "Fiche visible dans l'annuaire des praticiens.") : null,
    directory?.organisations?.length
      ? [h("h4", {}, "Organisations"), h("ul", { class: "plain" }, directory.organisations.map((o) => h("li", {}, o.name, h("small", {}, ` — ${o.city}`))))]
      : null,
    directory?.places?.length
      ? [h("h4", {}, "Lieux d'exercice"), h("ul", { class: "plain" }, directory.places.map((p) =>
        h("li", {}, h("strong", {}, p.name), h("br"), [p.address, `${p.postcode} ${p.city}`].filter(Boolean).join(", "))))]
      : directory ? null : h("p", { class: "hint" }, "Pas de fiche dans l'annuaire."),
    me ? h("p", { class: "hint" }, `Votre identifiant Confrère : ${userId}`) : null,
    !me && userId
      ? h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "write-to", onclick: async () => {
        try {
          const info = await app.client.createRoom("direct", [userId]);
          upsertRoom(info);
          document.querySelectorAll("dialog[open]").forEach((d) => d.close());
          go(`/conversations/${info.id}`);
        } catch (err) {
          error.textContent = describe(err);
        }
      } }, "Envoyer un message"), error)
      : null,
  ];
}

/** The card of an account, by user id. */
export function showProfile(userId) {
  const content = h("div", { class: "profile-card" });
  const draw = () => replace(content, body(cardOf(userId), userId));
  const d = dialog("Profil", content);
  d.id = "profile-card";
  const stop = on("profiles", () => d.open && draw());
  d.addEventListener("close", stop);
  want(userId);
  draw();
}

/** The card of a directory result (who may not have an account yet). */
export async function showDirectoryHit(hit) {
  if (hit.user) {
    showProfile(hit.user);
    return;
  }
  const content = h("div", { class: "profile-card" }, h("p", {}, "Chargement…"));
  const d = dialog("Profil", content);
  d.id = "profile-card";
  let full = null;
  try {
    full = (await rest.call("GET", `/v1/directory/profiles/${encodeURIComponent(hit.id)}`)).profile;
  } catch {
    // show what the result says
  }
  const card = { ...hit, ...(full || {}), _hit: full || { organisations: hit.organisations, places: [] } };
  replace(content, body(card, null), h("p", { class: "hint" }, "Ce praticien n'est pas encore inscrit sur Confrère : invitez-le par e-mail depuis un groupe."));
}
