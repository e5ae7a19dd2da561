// Adding a device (SPEC.md §11.7). /approbation, on a new browser: "Approuvez cette
// connexion depuis un autre appareil" with the code to compare, or the recovery phrase;
// on a device already signed in, the dialog "Nouvelle connexion à approuver" with the
// same code, Approuver / Refuser. Approving sends the history's keys to the new device.
import { h, replace } from "../dom.js";
import { app, emit, notice, on } from "../state.js";
import { go } from "../router.js";
import { logOut, setLink } from "../session.js";
import { confirmDialog, dialog, errorLine } from "../widgets.js";
import { publicPage } from "./frame.js";

export function linkView() {
  const code = h("p", { class: "link-code", id: "link-code", "aria-label": "Code de connexion" }, app.linkCode || app.e2ee?.linkCode() || "…");
  // With no other device left (lost, revoked), only the recovery phrase can help.
  const state = h("p", { class: "lead", id: "link-state", role: "status" }, app.linkOthers === 0
    ? "Aucun autre appareil n'est connecté à votre compte : utilisez votre phrase de récupération."
    : "En attente d'approbation…");
  const error = errorLine("phrase-error");
  const phraseForm = h("form", { id: "phrase-form", hidden: true, onsubmit: async (e) => {
    e.preventDefault();
    const button = phraseForm.querySelector("button[type=submit]");
    button.disabled = true;
    error.classList.remove("shown");
    try {
      const ok = await app.e2ee.restoreBackup(new FormData(phraseForm).get("phrase"));
      if (!ok) {
        error.textContent = "Cette phrase ne correspond pas à la sauvegarde de vos clés. Vérifiez-la et réessayez.";
        error.classList.add("shown");
        return;
      }
      await setLink("done");
      notice("Clés restaurées : l'historique de vos conversations est lisible sur cet appareil.");
      go("/", { replace: true });
    } catch (err) {
      error.textContent = "La restauration a échoué : vérifiez votre connexion et réessayez.";
      error.classList.add("shown");
      console.warn("restore", err);
    } finally {
      button.disabled = false;
    }
  } },
  h("label", { class: "field" }, h("span", {}, "Phrase de récupération"),
    h("input", { name: "phrase", type: "text", autocomplete: "off", autocapitalize: "none", spellcheck: "false", required: true, placeholder: "xxxx-xxxx-xxxx-xxxx-xxxx-xxxx" })),
  h("button", { type: "submit", class: "primary" }, "Restaurer l'historique"));
  const usePhrase = h("button", { type: "button", id: "use-phrase", onclick: () => {
    phraseForm.hidden = false;
    usePhrase.hidden = true;
    phraseForm.querySelector("input").focus();
  } }, "Utiliser ma phrase de récupération");
  const skip = h("button", { type: "button", id: "skip-link", class: "link-button", onclick: async () => {
    const sure = await confirmDialog("Continuer sans l'historique",
      "Cet appareil ne pourra pas lire vos messages passés. Les nouveaux messages, eux, seront lisibles.", "Continuer sans l'historique");
    if (!sure) return;
    await setLink("done");
    go("/", { replace: true });
  } }, "Continuer sans l'historique");
  const off = on("link-answered", ({ approved }) => {
    if (!document.body.contains(code)) return off();
    if (approved) {
      notice("Connexion approuvée : l'historique de vos conversations arrive sur cet appareil.");
      go("/", { replace: true });
      return;
    }
    state.textContent = "Cette connexion a été refusée depuis un autre de vos appareils.";
    replace(actions, h("button", { type: "button", class: "danger", id: "link-log-out", onclick: async () => {
      await logOut();
      go("/connexion", { replace: true });
    } }, "Se déconnecter"));
  });
  const actions = h("div", { class: "actions link-actions" }, usePhrase, skip);
  publicPage([
    h("h1", {}, "Approuvez cette connexion depuis un autre appareil"),
    h("p", { class: "lead" }, "Pour lire l'historique de vos conversations sur ce nouvel appareil, ouvrez Confrère sur un appareil déjà connecté : l'alerte « Nouvelle connexion à approuver » y affiche un code. Vérifiez que c'est celui-ci, puis choisissez « Approuver »."),
    code,
    state,
    actions,
    phraseForm,
    error,
  ]);
}

/** On a device already signed in: another device of this account asks to join. */
export function askApproval({ device, code }) {
  emit("link-request", { device });
  const error = errorLine("approve-error");
  const d = dialog("Nouvelle connexion à approuver",
    h("p", {}, "Un nouvel appareil s'est connecté à votre compte et demande l'historique de vos conversations. Vérifiez que ce code est celui affiché sur le nouvel appareil :"),
    h("p", { class: "link-code", id: "approve-code" }, code),
    h("p", { class: "lead" }, "Si vous ne reconnaissez pas cette connexion, refusez-la et changez votre mot de passe."),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger", id: "link-refuse", onclick: async () => {
        try {
          await app.e2ee.refuse(device);
          notice("Connexion refusée.");
          d.close();
        } catch (err) {
          error.textContent = "Le refus n'a pas pu être envoyé : réessayez.";
          error.classList.add("shown");
          console.warn("refuse", err);
        }
      } }, "Refuser"),
      h("button", { type: "button", class: "primary", id: "link-approve", onclick: async (e) => {
        e.currentTarget.disabled = true;
        try {
          await app.e2ee.approve(device);
          notice("Appareil approuvé : il reçoit l'historique de vos conversations.");
          d.close();
        } catch (err) {
          e.currentTarget.disabled = false;
          error.textContent = "L'approbation n'a pas pu être envoyée : réessayez.";
          error.classList.add("shown");
          console.warn("approve", err);
        }
      } }, "Approuver")),
    error);
  d.dataset.keep = "1";
  d.id = "approve-dialog";
}
