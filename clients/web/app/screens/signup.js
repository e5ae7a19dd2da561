// /inscription (and /signup, the links of earlier invitations): "Créez gratuitement
// votre compte", with the guide's fields in its order, by Pro Santé Connect ("CONTINUER
// AVEC MA CARTE CPS OU E-CPS — Inscription rapide") or by e-mail; ?email= fills the
// address in, &invitation=1 says a conversation awaits; #verification=signup continues
// a Pro Santé Connect sign-up with the card's names and number (SPEC.md §9.2).
// /inscription-regulateur#TOKEN: the SAS regulator's sign-up from the e-mailed link.
import { h } from "../dom.js";
import { REASONS } from "../i18n.js";
import { app, rest } from "../state.js";
import { logIn, logOut } from "../session.js";
import { clearHash, go, refresh } from "../router.js";
import { errorLine, fail, field } from "../widgets.js";
import { link, publicPage, steps } from "./frame.js";

const REGULATOR = "Régulateur";
let form = null; // GET /v1/accounts/form: specialties, consent versions, psc_available

export async function signUpForm() {
  if (!form) form = await rest.call("GET", "/v1/accounts/form");
  return form;
}

/** What the page remembers across the trip to Pro Santé Connect and back. */
function remembered() {
  try {
    return JSON.parse(sessionStorage.getItem("signup") || "{}");
  } catch {
    return {};
  }
}

export async function signUpView({ query, hash, path }) {
  const regulator = path.startsWith("/inscription-regulateur");
  const saved = remembered();
  const email = query.email || saved.email || "";
  const invitation = Boolean(query.invitation || saved.invitation);
  if (invitation) sessionStorage.setItem("invitation", "1"); // land in the conversation later
  let token = null;
  let linkEmail = null;
  if (regulator) {
    token = location.hash.slice(1) || sessionStorage.getItem("regulator-link");
    if (token) sessionStorage.setItem("regulator-link", token);
    linkEmail = linkAddress(token);
  }
  if (app.session) {
    signedInPage(regulator);
    return;
  }
  const spec = await signUpForm().catch(() => null);
  const outcome = hash.verification;
  let card = null;
  const pscMessage = h("p", { class: "error", role: "alert", id: "psc-error" });
  if (outcome === "signup") {
    card = await rest.call("GET", "/v1/accounts/psc", undefined, { cookies: true }).catch(() => null);
    if (!card) pscMessage.textContent = REASONS.psc_ticket_missing;
  } else if (outcome === "error") {
    pscMessage.textContent = REASONS[hash.reason] || REASONS.psc_answer_refused;
  }
  if (outcome) clearHash();

  const error = errorLine("signup-error");
  const specialties = [...(spec?.specialties || [])];
  if (regulator) specialties.push(REGULATOR);
  const names = h("div", { class: "row" },
    field("Prénom", "first_name", "text", { autocomplete: "given-name", value: card?.first_name ?? null }),
    field("Nom", "last_name", "text", { autocomplete: "family-name", value: card?.last_name ?? null }));
  const body = h("form", { id: "signup-form", novalidate: false, onsubmit: (e) => submit(e) },
    names,
    field("Adresse e-mail", "email", "email", { autocomplete: "email", value: linkEmail || email || null, readonly: Boolean(linkEmail) }),
    field("Code postal", "postcode", "text", { pattern: "[0-9]{5}", inputmode: "numeric", maxlength: 5, autocomplete: "postal-code" }),
    field("Ville", "city", "text", { autocomplete: "address-level2" }),
    h("label", { class: "field" }, h("span", {}, "Spécialité"),
      h("select", { name: "specialty", required: true },
        h("option", { value: "" }, "Sélectionner une spécialité"),
        specialties.map((s) => h("option", { value: s }, s)))),
    regulator ? h("p", { class: "hint" }, "Sélectionnez la profession « Régulateur » (en bas de la liste), sinon vous n'aurez pas accès à toutes les fonctionnalités.") : null,
    h("fieldset", { class: "choice" }, h("legend", {}, "Quel est votre mode d'exercice dans ce lieu ?"),
      h("label", {}, h("input", { type: "radio", name: "practice_mode", value: "liberal", required: true }), "Libéral"),
      h("label", {}, h("input", { type: "radio", name: "practice_mode", value: "salarie" }), "Salarié")),
    field("Numéro RPPS ou ADELI (optionnel)", "rpps", "text", {
      inputmode: "numeric", pattern: "[0-9 ]{9,14}", required: false, value: card?.rpps ?? null, readonly: Boolean(card),
    }),
    field(`Mot de passe (${spec?.password_min_length || 10} caractères minimum)`, "password", "password", {
      minlength: spec?.password_min_length || 10, autocomplete: "new-password",
    }),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "terms", required: true }),
      h("span", {}, "J'accepte les ", link("/conditions", "conditions générales d'utilisation", { target: "_blank" }),
        spec ? ` (version ${spec.terms_version})` : "", ".")),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "privacy", required: true }),
      h("span", {}, "J'accepte la ", link("/confidentialite", "politique de protection des données", { target: "_blank" }),
        spec ? ` (version ${spec.privacy_version})` : "", ".")),
    h("button", { type: "submit", class: "primary" }, regulator ? "Créer mon compte régulateur" : "Créer mon compte"));

  async function submit(event) {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(body));
    const fields = { ...data };
    delete fields.terms;
    delete fields.privacy;
    if (!fields.rpps) delete fields.rpps;
    fields.email = (linkEmail || fields.email || "").trim();
    const current = await signUpForm().catch(() => ({}));
    // Ticking the boxes accepted the versions shown, which are the server's current ones.
    fields.terms_version = current.terms_version;
    fields.privacy_version = current.privacy_version;
    if (token) fields.regulator_link = token;
    if (card) fields.pro_sante_connect = true;
    const button = body.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await rest.signUp(fields);
      sessionStorage.removeItem("signup");
      sessionStorage.removeItem("regulator-link");
      await logIn(fields.email, fields.password);
      go("/verification", { replace: true });
    } catch (err) {
      fail(error, err);
    } finally {
      button.disabled = false;
    }
  }

  async function startPsc() {
    const typed = body.querySelector("input[name=email]").value.trim();
    sessionStorage.setItem("signup", JSON.stringify({ email: typed || email, invitation }));
    try {
      const { authorization_url: url } = await rest.call("POST", "/v1/accounts/psc/start", {}, { cookies: true });
      location.assign(url);
    } catch (err) {
      fail(pscMessage, err);
    }
  }

  const psc = !regulator && spec?.psc_available && !card
    ? [h("section", { class: "psc", id: "psc-signup-block" },
        h("p", { class: "psc-brand" }, h("strong", {}, "PRO SANTÉ CONNECT"), h("br"), "Un service numérique au cœur de la santé"),
        h("button", { type: "button", class: "psc-button", id: "psc-signup", onclick: startPsc },
          h("span", {}, "CONTINUER AVEC MA CARTE CPS OU E-CPS"), h("small", {}, "Inscription rapide (recommandée)")),
        pscMessage),
      h("p", { class: "or" }, h("span", {}, "OU"))]
    : [pscMessage];

  publicPage([
    steps(1),
    regulator
      ? [h("h1", {}, "Créez votre compte régulateur"),
        h("p", { class: "lead" }, "Ce lien sécurisé vous a été envoyé pour créer votre compte de régulateur ou d'OSNP du Service d'Accès aux Soins (SAS)."),
        h("p", { class: "hint" }, "Si vous utilisez déjà Confrère en tant que professionnel de santé, créez votre compte régulateur avec une autre adresse e-mail que celle de votre compte Pro."),
        token ? null : h("p", { class: "error shown", role: "alert", id: "link-missing" }, "Ce lien d'inscription est incomplet : ouvrez en entier le lien reçu par e-mail.")]
      : [h("h1", {}, "Créez gratuitement votre compte"),
        h("p", { class: "lead" }, "Créez votre compte avec votre carte CPS ou e-CPS (via le service Pro Santé Connect) ou votre adresse mail.")],
    invitation
      ? h("p", { class: "banner invitation", id: "invitation-banner" },
        "Un confrère vous a invité(e) à une conversation sécurisée : elle vous attend. Créez votre compte",
        email ? [" avec l'adresse ", h("strong", {}, email)] : "", " pour la rejoindre.")
      : null,
    card
      ? h("p", { class: "banner ok", id: "psc-card" }, "✔ Carte CPS / e-CPS reconnue par Pro Santé Connect : vos nom, prénom et numéro viennent de votre carte (vous pouvez rétablir les accents). Complétez les informations ci-dessous.")
      : null,
    psc,
    body,
    error,
    h("p", { class: "switch" }, "Déjà un compte ? ", link(email ? `/connexion?email=${encodeURIComponent(email)}` : "/connexion", "Se connecter", { id: "to-login" })),
  ], { withPitch: true });
}

/** The address a regulator link was sent to (its payload is readable; the server
 * checks the signature). */
function linkAddress(token) {
  try {
    const payload = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(payload + "=".repeat((4 - (payload.length % 4)) % 4)), (c) => c.charCodeAt(0)));
    return JSON.parse(json).e || null;
  } catch {
    return null;
  }
}

function signedInPage(regulator) {
  const line = errorLine("signed-in");
  publicPage([
    h("h1", {}, regulator ? "Créez votre compte régulateur" : "Créez gratuitement votre compte"),
    h("p", { class: "banner", id: "already-signed-in" },
      `Vous êtes connecté(e) avec le compte ${app.session.email}. `,
      regulator ? "Un compte régulateur a besoin de sa propre adresse e-mail : déconnectez-vous pour le créer." : "Déconnectez-vous pour créer un autre compte."),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: () => go("/") }, "Retour à la messagerie"),
      h("button", { type: "button", class: "primary", id: "logout-and-continue", onclick: async () => {
        try {
          await logOut();
          refresh();
        } catch (err) {
          fail(line, err);
        }
      } }, "Se déconnecter et continuer")),
    line,
  ]);
}
