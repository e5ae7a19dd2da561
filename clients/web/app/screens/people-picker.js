// The directory's search bar ("+400 000 professionnels de santé"): results with their
// badge, specialty and city; picking one calls onPick(user id, label); the ⓘ button
// opens their card. Practitioners not on Confrère yet cannot be picked: they are
// invited by e-mail instead.
import { h, icon, replace } from "../dom.js";
import { fullName, learn } from "../profiles.js";
import { rest } from "../state.js";
import { verifiedBadge } from "../widgets.js";
import { showDirectoryHit } from "./profile-card.js";

export function peoplePicker(onPick, { placeholder = "Nom, spécialité, ville…" } = {}) {
  const results = h("ul", { class: "results", id: "search-results", "aria-label": "Résultats" });
  const input = h("input", { type: "search", id: "directory-search", placeholder, "aria-label": "Rechercher un confrère", autocomplete: "off" });
  let timer = null;
  let asked = 0;
  const search = async () => {
    const q = input.value.trim();
    if (q.length < 2) {
      replace(results);
      return;
    }
    const mine = ++asked;
    let people = [];
    try {
      people = (await rest.search(q)).results || [];
    } catch (err) {
      console.info("directory search", err);
    }
    if (mine !== asked) return; // a newer search is on its way
    const items = people.map((p) => {
      const id = p.user;
      const card = { user: id, title: p.title, first_name: p.first_name, last_name: p.last_name, specialty: p.specialty, verified: p.verified };
      if (id) learn(card);
      const label = fullName(card);
      return h("li", { class: "person-row" },
        h("button", {
          type: "button", class: "person", disabled: !id, dataset: { user: id || "" },
          title: id ? `Choisir ${label}` : "Pas encore sur Confrère : invitez ce confrère par e-mail",
          onclick: () => onPick(id, label),
        }, h("span", { class: "person-name" }, label, verifiedBadge(p.verified)),
        h("small", {}, `${p.specialty || ""}${p.city ? ` — ${p.city}` : ""}${id ? "" : " — pas encore inscrit(e)"}`)),
        h("button", { type: "button", class: "icon info", title: "Voir le profil", "aria-label": `Profil de ${label}`, onclick: () => showDirectoryHit(p) }, icon("info")));
    });
    // A Confrère identifier (16 characters, as the app shows in a profile) also works.
    if (/^[A-Za-z0-9_-]{16}$/.test(q)) {
      items.push(h("li", { class: "person-row" }, h("button", { type: "button", class: "person by-id", onclick: () => onPick(q, q) },
        h("span", { class: "person-name" }, `Identifiant ${q}`))));
    }
    replace(results, items.length ? items : h("li", { class: "empty" }, "Aucun résultat"));
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });
  return h("div", { class: "picker" }, input, results);
}

/** An e-mail field that adds addresses to invite (guests), shown as chips. */
export function emailAdder(onAdd) {
  const input = h("input", { type: "email", id: "invite-email", placeholder: "confrere@exemple.fr", "aria-label": "Adresse e-mail à inviter" });
  const add = () => {
    const value = input.value.trim().toLowerCase();
    if (!value || !input.checkValidity()) {
      input.reportValidity();
      return;
    }
    onAdd(value);
    input.value = "";
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      add();
    }
  });
  return h("div", { class: "inline" }, input, h("button", { type: "button", id: "invite-email-add", onclick: add }, "Inviter"));
}
