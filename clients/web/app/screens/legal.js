// /conditions and /confidentialite: the texts a sign-up accepts, in the versions the
// server currently requires (GET /v1/accounts/form).
import { h } from "../dom.js";
import { PRIVACY, TERMS } from "../legal-texts.js";
import { back } from "../router.js";
import { publicPage } from "./frame.js";
import { signUpForm } from "./signup.js";

async function legalPage(texts, key) {
  const spec = await signUpForm().catch(() => null);
  const version = spec?.[key];
  const text = texts[version];
  publicPage([
    h("h1", {}, text ? text.title : "Texte indisponible"),
    text
      ? [h("p", { class: "hint", id: "legal-version" }, `Version ${version}, en vigueur depuis le ${text.date}.`),
        text.sections.map(([title, body]) => [h("h2", {}, title), h("p", {}, body)])]
      : h("p", { class: "error shown" }, `Le texte de la version ${version || "en vigueur"} n'est pas disponible dans cette version de l'application : rechargez la page.`),
    h("p", {}, h("button", { type: "button", onclick: () => back("/inscription") }, "← Retour")),
  ], { wide: true });
}

export function termsView() {
  return legalPage(TERMS, "terms_version");
}

export function privacyView() {
  return legalPage(PRIVACY, "privacy_version");
}
