// Dialogs: new conversation (directory search), invitations, safety number.
import { formatSafetyNumber, utf8 } from "./crypto.js";
import { h, replace } from "./dom.js";
import { app, describe, learnName, nameOf, rest } from "./state.js";
import { openRoom, renderChatHeader, upsertRoom } from "./rooms.js";

// -- dialogs

export function dialog(title, ...body) {
  const d = h("dialog", { class: "dialog" }, h("h2", {}, title), ...body,
    h("div", { class: "actions" }, h("button", { type: "button", onclick: () => d.close() }, "Fermer")));
  d.addEventListener("close", () => d.remove());
  document.body.append(d);
  d.showModal();
  return d;
}

/** A directory search box; onPick(user id, display name). Also takes a Confrère id. */
export function peoplePicker(onPick) {
  const results = h("ul", { class: "results", id: "search-results" });
  const input = h("input", { type: "search", id: "directory-search", placeholder: "Nom, spécialité, ville… ou identifiant Confrère" });
  let timer = null;
  const search = async () => {
    const q = input.value.trim();
    if (q.length < 2) return replace(results);
    let people = [];
    try {
      const found = await rest.search(q);
      people = found.results || found.hits || found.practitioners || found.profiles || found.items || [];
    } catch (err) {
      console.info("directory search", err);
    }
    const items = people.map((p) => {
      // Directory profiles link to an account by user_id; the others are not on Confrère.
      const id = p.user ?? p.user_id;
      const label = `${p.title ? p.title + " " : ""}${p.first_name} ${p.last_name}`;
      const city = p.city || p.places?.[0]?.city;
      return h("li", {}, h("button", {
        type: "button", class: "person", disabled: !id, title: id ? null : "Pas encore sur Confrère : invitez-le par e-mail",
        onclick: () => { learnName(id, label); onPick(id, label); },
      }, label, p.verified ? h("span", { class: "verified" }, " ✔ vérifié") : "", h("small", {}, ` ${p.specialty || ""}${city ? " — " + city : ""}`)));
    });
    if (/^[A-Za-z0-9_-]{8,64}$/.test(q)) {
      items.push(h("li", {}, h("button", { type: "button", class: "person by-id", onclick: () => onPick(q, nameOf(q)) }, `Identifiant ${q}`)));
    }
    replace(results, items.length ? items : h("li", { class: "empty" }, "Aucun résultat"));
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });
  return h("div", { class: "picker" }, input, results);
}

export function newConversationDialog() {
  const error = h("p", { class: "error", role: "alert" });
  const picked = new Map();
  const chips = h("ul", { class: "chips" });
  const renderChips = () => replace(chips, [...picked].map(([id, label]) => h("li", {}, label)));
  let kind = "direct";
  const name = h("input", { name: "name", placeholder: "Nom de la conversation", maxlength: 200 });
  const caseHeader = h("textarea", { name: "header", rows: 3, placeholder: "Patient (chiffré) : nom, date de naissance, motif…" });
  const extra = h("div", {});
  const create = h("button", { class: "primary", id: "create-room", type: "button", onclick: () => submit() }, "Créer");
  const picker = peoplePicker((id, label) => {
    if (kind === "direct") {
      picked.clear();
      picked.set(id, label);
      submit();
    } else {
      picked.set(id, label);
      renderChips();
    }
  });
  const setKind = (k) => {
    kind = k;
    for (const b of tabs.children) b.classList.toggle("active", b.dataset.kind === k);
    replace(extra, k === "direct" ? null : [name, k === "patient_case" ? caseHeader : null, chips, create]);
  };
  const tabs = h("nav", { class: "tabs" },
    h("button", { type: "button", dataset: { kind: "direct" }, onclick: () => setKind("direct") }, "Message direct"),
    h("button", { type: "button", dataset: { kind: "group" }, onclick: () => setKind("group") }, "Groupe"),
    h("button", { type: "button", dataset: { kind: "patient_case" }, onclick: () => setKind("patient_case") }, "Dossier patient"));
  const d = dialog("Nouvelle conversation", tabs, picker, extra, error);
  d.id = "new-conversation-dialog";
  setKind("direct");

  async function submit() {
    try {
      const info = await app.client.createRoom(kind, [...picked.keys()], kind === "direct" ? null : name.value.trim() || null);
      const room = upsertRoom(info);
      if (kind === "patient_case" && caseHeader.value.trim()) {
        await app.e2ee.setHeader(info.id, utf8(caseHeader.value.trim()));
      }
      d.close();
      openRoom(room.id);
    } catch (err) {
      error.textContent = describe(err);
    }
  }
}

export function inviteDialog(room) {
  const error = h("p", { class: "error", role: "alert" });
  const picker = peoplePicker(async (id) => {
    try {
      await app.client.invite(room.id, [id]);
      app.e2ee.rotate(room.id);
      error.textContent = "Membre ajouté.";
    } catch (err) {
      error.textContent = describe(err);
    }
  });
  const email = h("input", { type: "email", id: "invite-email", placeholder: "confrere@exemple.fr", required: true });
  const form = h("form", { id: "invite-email-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await app.client.invite(room.id, [], [email.value.trim().toLowerCase()]);
      error.textContent = `Invitation envoyée à ${email.value.trim()}.`;
      email.value = "";
      const full = await app.client.roomGet(room.id);
      room.invited = (full.invited || []).map((i) => i.email);
      renderChatHeader();
    } catch (err) {
      error.textContent = describe(err);
    }
  } }, email, h("button", { type: "submit" }, "Inviter par e-mail"));
  dialog("Inviter dans la conversation",
    h("h3", {}, "Un confrère inscrit"), picker,
    h("h3", {}, "Un confrère pas encore inscrit"),
    h("p", {}, "Il recevra un e-mail et rejoindra la conversation en invité, le temps de vérifier son identité."),
    form, error);
}

export async function safetyDialog(room) {
  const other = room.members.find((u) => u !== app.session.userId);
  const number = h("p", { class: "safety", id: "safety-number" }, "Calcul…");
  dialog("Numéro de sécurité",
    h("p", {}, `Comparez ce numéro avec ${nameOf(other)} (de vive voix ou en personne). S'il est identique des deux côtés, personne ne s'interpose dans vos échanges.`),
    number);
  const n = await app.e2ee.safetyNumberWith(other);
  number.textContent = n ? formatSafetyNumber(n) : "Aucune clé connue pour ce confrère.";
}
