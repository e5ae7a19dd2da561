// /mot-de-passe-oublie: a forgotten password, reset by a code sent by e-mail (SPEC.md
// §9.4). First the address ("Recevoir un code"), then the code and the new password;
// every session of the account is closed by the server, and this browser logs in with
// the new password.
import { h } from "../dom.js";
import { rest } from "../state.js";
import { logIn } from "../session.js";
import { go } from "../router.js";
import { errorLine, fail, field } from "../widgets.js";
import { link, publicPage } from "./frame.js";

export function passwordResetView({ query }) {
  askForCode(query.email || "");
}

function askForCode(email) {
  const error = errorLine("reset-error");
  const form = h("form", { id: "reset-request-form", onsubmit: async (e) => {
    e.preventDefault();
    const address = new FormData(form).get("email").trim().toLowerCase();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await rest.call("POST", "/v1/accounts/password/forgot", { email: address });
      enterCode(address);
    } catch (err) {
      fail(error, err);
      button.disabled = false;
    }
  } },
  field("Adresse e-mail", "email", "email", { autocomplete: "username", value: email || null }),
  h("button", { type: "submit", class: "primary" }, "Recevoir un code"));
  publicPage([
    h("h1", {}, "Mot de passe oublié"),
    h("p", { class: "lead" }, "Saisissez l'adresse e-mail de votre compte : nous vous envoyons un code pour choisir un nouveau mot de passe."),
    form,
    error,
    h("p", { class: "switch" }, link(`/connexion${email ? `?email=${encodeURIComponent(email)}` : ""}`, "Retour à la connexion", { id: "to-login" })),
  ]);
}

function enterCode(email) {
  const error = errorLine("reset-error");
  const form = h("form", { id: "reset-form", onsubmit: async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await rest.call("POST", "/v1/accounts/password/reset", { email, code: data.code.trim(), password: data.password });
      await logIn(email, data.password);
      sessionStorage.setItem("password-reset", "1");
      go("/", { replace: true });
    } catch (err) {
      fail(error, err);
      button.disabled = false;
    }
  } },
  field("Code reçu par e-mail", "code", "text", { inputmode: "numeric", pattern: "[0-9]{6}", maxlength: 6, autocomplete: "one-time-code" }),
  field("Nouveau mot de passe (10 caractères minimum)", "password", "password", { minlength: 10, autocomplete: "new-password" }),
  h("button", { type: "submit", class: "primary" }, "Changer mon mot de passe"));
  publicPage([
    h("h1", {}, "Mot de passe oublié"),
    h("p", { class: "banner", id: "reset-sent" }, `Si un compte existe avec l'adresse ${email}, un code de vérification vient de lui être envoyé (valable 15 minutes).`),
    h("p", { class: "lead" }, "Une fois le mot de passe changé, toutes les sessions ouvertes sur votre compte sont fermées."),
    form,
    error,
    h("p", { class: "switch" },
      h("button", { type: "button", class: "link", id: "reset-again", onclick: () => askForCode(email) }, "Recevoir un nouveau code")),
  ]);
}
