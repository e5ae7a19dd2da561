// /verification: the gate before the messaging. Step 2 of the sign-up ("Vérifiez votre
// adresse mail" with the e-mailed code), then the identity, as the guide has it:
// Pro Santé Connect ("VÉRIFIER MON IDENTITÉ", with the e-CPS identifier and its prefix)
// or "VÉRIFICATION MANUELLE" (a passport or an identity card, and a selfie). The
// outcome of a Pro Santé Connect round trip arrives in the fragment
// (#verification=verified | mismatch&fields=… | error&reason=…, SPEC.md §9.2). The
// messaging opens by itself once the server says the identity is verified.
import { ServerError } from "../client.js";
import { h, replace } from "../dom.js";
import { CARD_FIELDS, REASONS } from "../i18n.js";
import { app, on, rest } from "../state.js";
import { logOut, ready } from "../session.js";
import { clearHash, go } from "../router.js";
import { errorLine, fail } from "../widgets.js";
import { publicPage, steps } from "./frame.js";

const COUNTRIES = ["FR", "DE", "AT", "BE", "BG", "CY", "HR", "DK", "ES", "EE", "FI", "GR", "HU", "IE", "IS", "IT", "LV", "LI", "LT",
  "LU", "MT", "MC", "NO", "NL", "PL", "PT", "CZ", "RO", "GB", "SK", "SI", "SE", "CH", "AD", "DZ", "MA", "TN", "SN", "CI", "CM", "LB", "CA"];
const REGION = new Intl.DisplayNames(["fr"], { type: "region" });
const TIPS = [
  "Prendre la photo du document de près",
  "Se placer juste au-dessus du document de façon parallèle",
  "Éviter tout reflet de lumière ou éviter de prendre la photo à « contre-jour »",
  "S'assurer qu'il n'y ait pas de zone d'ombre sur votre visage",
  "Prendre l'ensemble du document en photo en incluant les 4 coins",
];

let poll = null;
let unsubscribe = null;

export function verificationView({ hash }) {
  const outcome = hash.verification ? { ...hash } : null;
  if (outcome) clearHash();
  clearInterval(poll);
  unsubscribe?.();
  // The welcome (re 0) that follows a verification opens the messaging.
  unsubscribe = on("welcome", () => {
    if (location.pathname === "/verification" && ready() && app.profile.email_confirmed) enter();
  });
  draw(outcome);
}

function enter() {
  clearInterval(poll);
  unsubscribe?.();
  sessionStorage.setItem("welcome", "1"); // "Félicitations…" once, in the messaging
  go("/", { replace: true });
}

async function draw(outcome) {
  let state = { user: app.profile, psc_available: false, ecps_identifier: null, manual: null, staged_documents: [] };
  try {
    state = await rest.call("GET", "/v1/verification");
    app.profile = { ...app.profile, ...state.user };
  } catch (err) {
    console.info("verification status", err);
  }
  if (ready() && app.profile.email_confirmed) {
    enter();
    return;
  }
  if (!app.profile.email_confirmed) emailStep();
  else identityStep(state, outcome);
  clearInterval(poll);
  if (app.profile.email_confirmed) poll = setInterval(checkVerified, 3000);
}

function footer() {
  return h("div", { class: "actions spread" },
    h("button", { type: "button", onclick: () => draw(null) }, "Actualiser"),
    h("button", { type: "button", id: "logout", onclick: async () => {
      clearInterval(poll);
      await logOut();
      go("/connexion", { replace: true });
    } }, "Se déconnecter"));
}

// -- step 2 of the sign-up: the e-mail address

function emailStep() {
  const error = errorLine("code-error");
  const input = h("input", { name: "code", inputmode: "numeric", pattern: "[0-9]{6}", maxlength: 6, placeholder: "Code à 6 chiffres",
    required: true, autocomplete: "one-time-code", "aria-label": "Code à 6 chiffres" });
  const formEl = h("form", { id: "email-code-form", class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const { user } = await rest.call("POST", "/v1/accounts/email/confirm", { code: input.value.trim() });
      app.profile = { ...app.profile, ...user };
      draw(null);
    } catch (err) {
      fail(error, err);
    }
  } }, input, h("button", { type: "submit", class: "primary" }, "Vérifier mon adresse mail"));
  publicPage([
    steps(2, [1]),
    h("h1", {}, "Vérifiez votre adresse e-mail"),
    h("p", { id: "email-step" }, "Nous avons envoyé un code à 6 chiffres à ", h("strong", {}, app.profile.email),
      ". Saisissez-le ci-dessous puis cliquez sur « Vérifier mon adresse mail » (il est valable 15 minutes)."),
    formEl,
    h("p", {}, h("button", { type: "button", class: "link", id: "resend", onclick: async () => {
      try {
        await rest.call("POST", "/v1/accounts/email/resend", {});
        error.textContent = "Un nouveau code vous a été envoyé.";
      } catch (err) {
        fail(error, err);
      }
    } }, "Renvoyer un code")),
    error,
    ready()
      ? h("p", { class: "hint" }, "Votre identité est déjà vérifiée. ", h("button", { type: "button", class: "link", id: "later", onclick: () => go("/") }, "Confirmer plus tard et ouvrir la messagerie"),
        " (les conversations auxquelles on vous a invité(e) par e-mail vous attendront jusqu'à la confirmation).")
      : null,
    footer(),
  ]);
  input.focus();
}

// -- the identity

function outcomeBanner(outcome, showManual) {
  if (!outcome) return null;
  if (outcome.verification === "verified") {
    return h("p", { class: "banner ok", id: "psc-outcome" }, "✔ Pro Santé Connect a vérifié votre identité.");
  }
  if (outcome.verification === "mismatch") {
    const fields = (outcome.fields || "").split(",").filter(Boolean).map((f) => CARD_FIELDS[f] || f);
    return h("div", { class: "banner warn", id: "psc-outcome", role: "alert" },
      h("p", {}, `Les informations de votre carte CPS ne correspondent pas à celles de votre compte (${fields.join(", ") || "identité"}).`),
      h("p", {}, "Vérifiez votre identité à l'aide d'une pièce d'identité : cliquez sur « Vérification manuelle »."),
      h("button", { type: "button", class: "primary", id: "mismatch-manual", onclick: showManual }, "VÉRIFICATION MANUELLE"));
  }
  return h("p", { class: "banner error", id: "psc-outcome", role: "alert" },
    REASONS[outcome.reason] || REASONS.psc_answer_refused);
}

function identityStep(state, outcome) {
  const error = errorLine("identity-error");
  const manualPart = h("div", { id: "manual-part" });
  const manual = state.manual;
  const pending = manual?.state === "pending";
  const showManual = () => {
    replace(manualPart, manualForm(state.staged_documents || [], error));
    manualPart.scrollIntoView({ block: "start", behavior: "smooth" });
  };
  const ecps = state.ecps_identifier;
  publicPage([
    h("h1", {}, "Vérification de votre identité"),
    h("p", { id: "verification-status", class: "status unverified" }, "Identité non vérifiée"),
    outcomeBanner(outcome, showManual),
    h("p", {}, `Bonjour ${app.profile.first_name} ${app.profile.last_name}. Cette vérification est obligatoire pour utiliser la messagerie sécurisée. Il y a deux façons de la faire :`),
    h("ul", { class: "ways" }, h("li", {}, "avec votre CPS (prévoir un lecteur de carte) ou l'application e-CPS ;"),
      h("li", {}, "avec une pièce d'identité et un smartphone (ou un ordinateur avec une caméra).")),
    pending
      ? h("p", { class: "banner", id: "manual-pending" }, "Votre demande de vérification manuelle est en cours d'examen. La vérification de votre identité peut prendre jusqu'à 24 heures. Lorsque votre profil sera validé, une pastille verte apparaîtra à côté de votre nom.")
      : null,
    manual?.state === "rejected"
      ? h("p", { class: "banner error", id: "manual-rejected" }, `Votre demande de vérification manuelle a été refusée : ${manual.reason || "sans motif"}. Vous pouvez en soumettre une nouvelle.`)
      : null,
    h("section", { class: "step", id: "identity-step" },
      h("h2", {}, "Vérification d'identité"),
      state.psc_available
        ? [h("p", {}, "Utilisez votre carte de professionnel de santé (CPS) pour vérifier votre identité."),
          h("button", { type: "button", class: "primary", id: "psc", onclick: () => startPsc(error) }, "VÉRIFIER MON IDENTITÉ"),
          h("p", { class: "hint", id: "ecps-hint" }, "Avec l'application e-CPS, indiquez votre identifiant de connexion : ",
            ecps ? h("strong", {}, ecps) : "votre numéro RPPS ou ADELI",
            " (il est composé d'un préfixe : 8 pour un numéro RPPS, 0 pour un numéro ADELI), puis validez la connexion sur votre smartphone. Avec une carte CPS, insérez-la dans le lecteur branché à votre ordinateur.")]
        : h("p", {}, "La vérification par carte CPS ou e-CPS n'est pas proposée sur ce service : utilisez la vérification manuelle."),
      pending ? null : [
        h("p", {}, "Vous pouvez également lancer la vérification manuellement. Celle-ci sera examinée par notre équipe. Vous aurez besoin d'une pièce d'identité et d'un téléphone portable ou d'un ordinateur avec une caméra."),
        h("button", { type: "button", id: "manual-start", onclick: showManual }, "VÉRIFICATION MANUELLE"),
      ],
      manualPart),
    error,
    h("p", { class: "hint" }, "Dès que votre identité est vérifiée, la messagerie s'ouvre ici, sans vous reconnecter."),
    footer(),
  ], { wide: true });
  if (outcome?.verification === "mismatch" && !pending) showManual();
}

async function startPsc(error) {
  try {
    // The answer sets the cookie that ties the flow to this browser: keep it.
    const { authorization_url: url } = await rest.call("POST", "/v1/verification/psc/start", {}, { cookies: true });
    location.assign(url);
  } catch (err) {
    fail(error, err);
  }
}

function manualForm(staged, error) {
  const sent = new Set(staged);
  const country = h("select", { name: "issuing_country", "aria-label": "Pays émetteur" },
    COUNTRIES.map((c) => h("option", { value: c }, REGION.of(c))));
  const countryRow = h("label", { class: "field" }, h("span", {}, "Pays émetteur de la carte d'identité"), country);
  const photo = (side, label, hint) => {
    const status = h("span", { class: "photo-status", dataset: { side } }, sent.has(side) ? "✔ Photo envoyée" : "");
    return h("div", { class: `photo photo-${side}` },
      h("label", { class: "field" }, h("span", {}, label),
        h("input", { type: "file", accept: "image/jpeg,image/png", dataset: { side }, onchange: async (e) => {
          const file = e.target.files[0];
          if (!file) return;
          status.textContent = "Envoi…";
          try {
            await rest.putDocument(side, file);
            sent.add(side);
            status.textContent = "✔ Photo envoyée";
          } catch (err) {
            status.textContent = "";
            fail(error, err);
          }
        } })),
      h("small", {}, hint), status);
  };
  const back = photo("back", "Verso de la carte d'identité", "Télécharger une photo du document au format JPEG ou PNG.");
  const kind = (value) => h("label", {}, h("input", { type: "radio", name: "document", value, checked: value === "id_card",
    onchange: () => {
      countryRow.hidden = value !== "id_card";
      back.hidden = value !== "id_card";
    } }), value === "id_card" ? "Carte d'identité" : "Passeport");
  return h("form", { id: "manual-form", onsubmit: async (e) => {
    e.preventDefault();
    const document = new FormData(e.target).get("document");
    const body = { document };
    if (document === "id_card") body.issuing_country = country.value;
    try {
      await rest.call("POST", "/v1/verification/manual", body);
      draw(null);
    } catch (err) {
      fail(error, err);
    }
  } },
  h("h3", {}, "Vérification manuelle"),
  h("fieldset", { class: "choice" }, h("legend", {}, "Choisissez votre pièce d'identité"), kind("id_card"), kind("passport")),
  countryRow,
  photo("front", "Recto de la carte d'identité (ou page photo du passeport)", "Télécharger une photo du document au format JPEG ou PNG."),
  back,
  photo("selfie", "Prenez une photo de vous", "Un selfie, visage dégagé, au format JPEG ou PNG."),
  h("details", { class: "tips" }, h("summary", {}, "Quelques conseils pour une vérification d'identité réussie"),
    h("ul", {}, TIPS.map((t) => h("li", {}, t))),
    h("p", {}, "Si l'envoi prend beaucoup de temps, essayez une autre connexion (Wi-Fi ou 4G) et fermez les autres applications.")),
  h("button", { type: "submit", class: "primary" }, "Soumettre la vérification"));
}

async function checkVerified() {
  if (location.pathname !== "/verification" || !app.client) {
    clearInterval(poll);
    return;
  }
  try {
    // Any request but ping re-reads the identity; once verified the server sends a
    // welcome with re 0 (SPEC.md §2 item 4), which opens the messaging.
    await app.client.uploadKeys(app.e2ee.keys.bundle(app.session.userId, app.session.deviceId));
  } catch (err) {
    if (!(err instanceof ServerError && err.code === "identity_unverified")) console.info(err);
  }
}
