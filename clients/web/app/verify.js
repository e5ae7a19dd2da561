// The verification gate: e-mail code, then Pro Santé Connect or manual review; the
// messaging opens by itself once the server says the identity is verified.
import { ServerError } from "./client.js";
import { h, replace } from "./dom.js";
import { ApiError } from "./rest.js";
import { app, describe, rest, root } from "./state.js";
import { logOut } from "./auth.js";

// -- verification (the gate: only verified practitioners use the messaging)

export let verificationPoll = null;

export function verificationScreen() {
  app.ui = { unverified: true };
  const status = h("p", { id: "verification-status", class: "badge-unverified" }, "Identité non vérifiée");
  const emailPart = h("section", { id: "email-step" });
  const identityPart = h("section", { id: "identity-step" });
  replace(
    root,
    h(
      "main",
      { class: "verify" },
      h("h1", {}, "Vérification de votre identité"),
      status,
      h("p", {}, `Bonjour ${app.profile.first_name} ${app.profile.last_name}. La messagerie sécurisée est réservée aux professionnels de santé dont l'identité est vérifiée.`),
      emailPart,
      identityPart,
      h("p", {}, "Dès que votre identité est vérifiée, la messagerie s'ouvre ici, sans vous reconnecter."),
      h("div", { class: "actions" },
        h("button", { onclick: () => refreshVerification(emailPart, identityPart) }, "Actualiser"),
        h("button", { onclick: logOut }, "Se déconnecter")),
    ),
  );
  refreshVerification(emailPart, identityPart);
  clearInterval(verificationPoll);
  verificationPoll = setInterval(checkVerified, 3000);
}

export async function refreshVerification(emailPart, identityPart) {
  let state = { user: app.profile, psc_available: false, manual: null, staged_documents: [] };
  try {
    state = await rest.call("GET", "/v1/verification");
    app.profile = { ...app.profile, ...state.user };
  } catch (err) {
    console.info("verification status", err);
  }
  checkVerified();
  const codeError = h("p", { class: "error", role: "alert" });
  if (app.profile.email_confirmed === false) {
    replace(emailPart, h("h2", {}, "1. Confirmez votre adresse e-mail"),
      h("p", {}, `Saisissez le code à 6 chiffres envoyé à ${app.profile.email}.`),
      h("form", { id: "email-code-form", onsubmit: (e) => confirmEmail(e, codeError, emailPart, identityPart) },
        h("input", { name: "code", inputmode: "numeric", pattern: "[0-9]{6}", placeholder: "Code à 6 chiffres", required: true }),
        h("button", { type: "submit", class: "primary" }, "Valider"),
        h("button", { type: "button", onclick: () => resendCode(codeError) }, "Renvoyer le code")),
      codeError);
    replace(identityPart, h("h2", {}, "2. Vérifiez votre identité"), h("p", {}, "Après la confirmation de votre e-mail."));
    return;
  }
  replace(emailPart, h("p", { class: "done" }, `✔ Adresse e-mail ${app.profile.email} confirmée.`));
  const manual = state.manual;
  const pending = manual && manual.state === "pending";
  const error = h("p", { class: "error", role: "alert" });
  replace(
    identityPart,
    h("h2", {}, "2. Vérifiez votre identité"),
    pending ? h("p", { id: "manual-pending" }, "Votre demande de vérification manuelle est en cours d'examen (sous 24 heures).") : null,
    manual && manual.state === "rejected" ? h("p", { class: "error" }, `Demande refusée : ${manual.reason || "sans motif"}. Vous pouvez en soumettre une nouvelle.`) : null,
    state.psc_available
      ? h("p", {}, h("button", { class: "primary", id: "psc", onclick: () => startPsc(error) }, "Avec ma carte CPS / e-CPS (Pro Santé Connect)"))
      : null,
    pending ? null : manualForm(state.staged_documents || [], error, () => refreshVerification(emailPart, identityPart)),
    error,
  );
}

export function manualForm(staged, error, done) {
  const kind = h("select", { name: "document" }, h("option", { value: "id_card" }, "Carte nationale d'identité"), h("option", { value: "passport" }, "Passeport"));
  const country = h("input", { name: "issuing_country", value: "FR", maxlength: 2, pattern: "[A-Za-z]{2}" });
  const photo = (side, label) =>
    h("label", {}, `${label}${staged.includes(side) ? " ✔" : ""}`,
      h("input", { type: "file", accept: "image/jpeg,image/png", dataset: { side }, onchange: (e) => uploadDocument(side, e.target, error) }));
  return h("form", { id: "manual-form", onsubmit: async (e) => {
    e.preventDefault();
    const body = { document: kind.value };
    if (kind.value === "id_card") body.issuing_country = country.value.trim().toUpperCase();
    try {
      await rest.call("POST", "/v1/verification/manual", body);
      done();
    } catch (err) {
      error.textContent = describe(err);
    }
  } },
  h("p", {}, "Ou manuellement : une pièce d'identité et un selfie (JPEG ou PNG), examinés sous 24 heures."),
  h("label", {}, "Document", kind), h("label", {}, "Pays de délivrance (carte)", country),
  photo("front", "Recto (ou page photo du passeport)"), photo("back", "Verso (carte)"), photo("selfie", "Selfie"),
  h("button", { type: "submit" }, "Envoyer pour vérification"));
}

export async function uploadDocument(side, input, error) {
  const file = input.files[0];
  if (!file) return;
  try {
    const response = await fetch(`/v1/verification/documents/${side}`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${rest.token}`, "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    if (!response.ok) throw new ApiError(response.status, (await response.json().catch(() => ({}))).code || "internal", `HTTP ${response.status}`);
    error.textContent = "Photo envoyée.";
  } catch (err) {
    error.textContent = describe(err);
  }
}

export async function startPsc(error) {
  try {
    const { authorization_url: url } = await rest.call("POST", "/v1/verification/psc/start", {});
    location.assign(url);
  } catch (err) {
    error.textContent = describe(err);
  }
}

export async function checkVerified() {
  if (!app.client || !app.ui?.unverified) {
    clearInterval(verificationPoll);
    return;
  }
  try {
    // Any request but ping re-reads the identity; once verified the server sends a
    // welcome with re 0 (SPEC.md §2 item 4), which opens the messaging.
    await app.client.uploadKeys(app.e2ee.keys.bundle(app.session.userId, app.session.deviceId));
  } catch (err) {
    if (!(err instanceof ServerError && err.code === "identity_unverified")) console.warn(err);
  }
}

export async function confirmEmail(event, error, emailPart, identityPart) {
  event.preventDefault();
  const code = new FormData(event.target).get("code").trim();
  try {
    await rest.call("POST", "/v1/accounts/email/confirm", { code });
    await refreshVerification(emailPart, identityPart);
  } catch (err) {
    error.textContent = describe(err);
  }
}

export async function resendCode(error) {
  try {
    await rest.call("POST", "/v1/accounts/email/resend", {});
    error.textContent = "Un nouveau code vous a été envoyé.";
  } catch (err) {
    error.textContent = describe(err);
  }
}
