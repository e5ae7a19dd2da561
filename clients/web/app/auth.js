// Sign-up and log-in screens; the browser keeps its device (and keys) per e-mail.
import { h, replace } from "./dom.js";
import { ApiError } from "./rest.js";
import * as store from "./store.js";
import { app, describe, rest, rooms, root } from "./state.js";
import { start } from "./session.js";

// -- sign-up and log-in

export function authScreen(mode = "login", message = null) {
  const error = h("p", { class: "error", role: "alert", id: "auth-error" }, message || "");
  const field = (label, name, type = "text", extra = {}) =>
    h("label", {}, label, h("input", { name, type, required: true, autocomplete: "off", ...extra }));
  let form;
  if (mode === "login") {
    form = h(
      "form",
      { id: "login-form", onsubmit: (e) => onLogin(e, error) },
      field("Adresse e-mail", "email", "email", { autocomplete: "username" }),
      field("Mot de passe", "password", "password", { autocomplete: "current-password" }),
      h("button", { type: "submit", class: "primary" }, "Se connecter"),
    );
  } else {
    form = h(
      "form",
      { id: "signup-form", onsubmit: (e) => onSignUp(e, error) },
      h("div", { class: "row" }, field("Prénom", "first_name"), field("Nom", "last_name")),
      field("Adresse e-mail professionnelle", "email", "email"),
      field("Mot de passe (10 caractères minimum)", "password", "password", { minlength: 10, autocomplete: "new-password" }),
      h("div", { class: "row" }, field("Code postal", "postcode", "text", { pattern: "[0-9]{5}", inputmode: "numeric" }), field("Ville", "city")),
      h("label", {}, "Spécialité", specialtyInput()),
      h(
        "label",
        {},
        "Mode d'exercice",
        h("select", { name: "practice_mode" }, h("option", { value: "liberal" }, "Libéral"), h("option", { value: "salarie" }, "Salarié")),
      ),
      h("label", {}, "N° RPPS ou ADELI (facultatif)", h("input", { name: "rpps", inputmode: "numeric", pattern: "[0-9]{9}|[0-9]{11}" })),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "consent", required: true }),
        "J'accepte les conditions d'utilisation et la politique de protection des données de santé."),
      h("button", { type: "submit", class: "primary" }, "Créer mon compte"),
    );
  }
  replace(
    root,
    h(
      "main",
      { class: "auth" },
      h("h1", {}, "Confrère"),
      h("p", { class: "tagline" }, "La messagerie sécurisée des professionnels de santé, chiffrée de bout en bout."),
      h(
        "nav",
        { class: "tabs" },
        h("button", { class: mode === "login" ? "active" : "", onclick: () => authScreen("login") }, "Connexion"),
        h("button", { class: mode === "signup" ? "active" : "", onclick: () => authScreen("signup") }, "Créer un compte"),
      ),
      form,
      error,
    ),
  );
}

export let signUpForm = null; // GET /v1/accounts/form: specialties and consent versions

export function specialtyInput() {
  const list = h("datalist", { id: "specialties" });
  const input = h("input", { name: "specialty", required: true, list: "specialties", placeholder: "ex. Médecine générale" });
  const fill = () => replace(list, (signUpForm?.specialties || []).map((s) => h("option", { value: s })));
  if (signUpForm) fill();
  else {
    rest.call("GET", "/v1/accounts/form").then((form) => {
      signUpForm = form;
      fill();
    }).catch(() => {});
  }
  return h("span", {}, input, list);
}

export async function onSignUp(event, error) {
  event.preventDefault();
  const data = Object.fromEntries(new FormData(event.target));
  const fields = { ...data };
  delete fields.consent;
  if (!fields.rpps) delete fields.rpps;
  // The box ticked means the versions shown (from the server's form) were accepted.
  if (!signUpForm) signUpForm = await rest.call("GET", "/v1/accounts/form").catch(() => ({}));
  if (signUpForm.terms_version) fields.terms_version = signUpForm.terms_version;
  if (signUpForm.privacy_version) fields.privacy_version = signUpForm.privacy_version;
  try {
    await rest.signUp(fields);
    await logIn(fields.email, fields.password);
  } catch (err) {
    error.textContent = describe(err);
  }
}

export async function onLogin(event, error) {
  event.preventDefault();
  const data = Object.fromEntries(new FormData(event.target));
  try {
    await logIn(data.email.trim().toLowerCase(), data.password);
  } catch (err) {
    error.textContent = describe(err);
  }
}

export async function logIn(email, password) {
  email = email.trim().toLowerCase();
  // The same browser keeps its device (and its keys) across log-ins.
  const known = await store.get(`device:${email}`);
  let reply;
  try {
    reply = await rest.logIn(email, password, known && (await store.get(`keys:${known}`)) ? known : null);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === "not_found")) throw err;
    reply = await rest.logIn(email, password, null);
  }
  app.session = { token: reply.token, userId: reply.user.id, deviceId: reply.device_id, email };
  await store.put(`device:${email}`, reply.device_id);
  await store.put("session", app.session);
  await start();
}

export async function logOut() {
  try {
    await rest.logOut();
  } catch {
    // the session may be gone already
  }
  app.client?.close();
  app.client = null;
  app.e2ee = null;
  app.session = null;
  rooms.clear();
  app.current = null;
  await store.del("session");
  authScreen("login");
}
