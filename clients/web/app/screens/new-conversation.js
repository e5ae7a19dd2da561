// "Nouveau message": the guide's three kinds of conversation (1 à 1, a group, a
// patient case), colleagues found in the directory, and for a group or a case,
// colleagues not registered yet invited by e-mail at creation (they join as guests).
import { utf8 } from "../crypto.js";
import { h, replace } from "../dom.js";
import { app } from "../state.js";
import { upsertRoom } from "../rooms.js";
import { go } from "../router.js";
import { dialog, errorLine, fail } from "../widgets.js";
import { emailAdder, peoplePicker } from "./people-picker.js";

export function newConversationDialog() {
  const error = errorLine("new-conversation-error");
  const picked = new Map(); // user id -> label
  const emails = new Set();
  const chips = h("ul", { class: "chips", id: "picked" });
  const renderChips = () => replace(chips,
    [...picked].map(([id, label]) => h("li", {}, label, h("button", { type: "button", class: "chip-x", "aria-label": `Retirer ${label}`, onclick: () => { picked.delete(id); renderChips(); } }, "×"))),
    [...emails].map((email) => h("li", { class: "guest" }, `${email} (invité)`, h("button", { type: "button", class: "chip-x", "aria-label": `Retirer ${email}`, onclick: () => { emails.delete(email); renderChips(); } }, "×"))));
  let kind = "direct";
  const name = h("input", { name: "name", placeholder: "Nom du groupe", maxlength: 200, "aria-label": "Nom" });
  const caseHeader = h("textarea", { name: "header", rows: 3, placeholder: "Patient (chiffré) : nom, date de naissance, motif…", "aria-label": "Patient" });
  const guests = h("div", { class: "guests" },
    h("h3", {}, "Inviter un confrère pas encore inscrit"),
    h("p", { class: "hint" }, "Il recevra un e-mail lui indiquant qu'un message l'attend ; il deviendra membre dès son compte créé."),
    emailAdder((email) => {
      emails.add(email);
      renderChips();
    }));
  const extra = h("div", { class: "extra" });
  const create = h("button", { class: "primary", id: "create-room", type: "button", onclick: () => submit() }, "Créer");
  const picker = peoplePicker((id, label) => {
    if (kind === "direct") {
      picked.clear();
      picked.set(id, label);
      submit();
      return;
    }
    picked.set(id, label);
    renderChips();
  }, { placeholder: "Rechercher parmi plus de 400 000 professionnels de santé" });
  const tabs = h("nav", { class: "tabs", role: "tablist" },
    [["direct", "1 à 1"], ["group", "Groupe"], ["patient_case", "Cas patient"]].map(([k, label]) =>
      h("button", { type: "button", role: "tab", dataset: { kind: k }, onclick: () => setKind(k) }, label)));
  function setKind(k) {
    kind = k;
    for (const b of tabs.children) {
      b.classList.toggle("active", b.dataset.kind === k);
      b.setAttribute("aria-selected", String(b.dataset.kind === k));
    }
    name.placeholder = k === "patient_case" ? "Nom du cas patient" : "Nom du groupe";
    replace(extra, k === "direct" ? h("p", { class: "hint" }, "Choisissez le confrère à qui écrire.")
      : [name, k === "patient_case" ? caseHeader : null, chips, guests, create]);
  }
  const d = dialog("Nouveau message", tabs, picker, extra, error);
  d.id = "new-conversation-dialog";
  setKind("direct");

  async function submit() {
    create.disabled = true;
    try {
      const info = await app.client.createRoom(kind, [...picked.keys()]);
      upsertRoom(info);
      if (kind !== "direct" && emails.size) {
        // Invited first: the name and header are then encrypted with a key made after
        // the invitation, which the guests get once they join (SPEC.md §11.3, §11.4).
        const ack = await app.client.invite(info.id, [], [...emails]);
        await app.e2ee.afterInvite(upsertRoom(info), ack.seq);
      }
      if (kind !== "direct" && name.value.trim()) await app.e2ee.setName(info.id, name.value.trim());
      if (kind === "patient_case" && caseHeader.value.trim()) await app.e2ee.setHeader(info.id, utf8(caseHeader.value.trim()));
      d.close();
      go(`/conversations/${info.id}`);
    } catch (err) {
      fail(error, err);
    } finally {
      create.disabled = false;
    }
  }
}
