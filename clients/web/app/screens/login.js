// /connexion: log in with e-mail and password (the guide's "Connexion").
import { h } from "../dom.js";
import { logIn } from "../session.js";
import { go } from "../router.js";
import { errorLine, fail, field } from "../widgets.js";
import { link, publicPage } from "./frame.js";

export function loginView({ query }) {
  const error = errorLine("auth-error");
  if (query.expiree) error.textContent = "Votre session a expiré : reconnectez-vous.";
  const deleted = query.supprime ? h("p", { class: "banner ok", id: "account-deleted" }, "Votre compte a été supprimé.") : null;
  const form = h("form", { id: "login-form", onsubmit: async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await logIn(data.email, data.password);
      const next = sessionStorage.getItem("next");
      sessionStorage.removeItem("next");
      go(next || "/", { replace: true });
    } catch (err) {
      fail(error, err, { action: "login" });
    } finally {
      button.disabled = false;
    }
  } },
  field("Adresse e-mail", "email", "email", { autocomplete: "username", value: query.email || null }),
  field("Mot de passe", "password", "password", { autocomplete: "current-password" }),
  h("button", { type: "submit", class: "primary" }, "Se connecter"));
  const forgot = link("/mot-de-passe-oublie", "Mot de passe oublié ?", { id: "to-reset", onclick: (e) => {
    e.preventDefault();
    const address = form.querySelector("input[name=email]").value.trim();
    go(`/mot-de-passe-oublie${address ? `?email=${encodeURIComponent(address)}` : ""}`);
  } });
  publicPage([
    h("h1", {}, "Connexion"),
    h("p", { class: "lead" }, "La messagerie sécurisée des professionnels de santé, chiffrée de bout en bout."),
    deleted,
    form,
    error,
    h("p", { class: "forgot" }, forgot),
    h("p", { class: "switch" }, "Pas encore de compte ? ", link("/inscription", "Créez gratuitement votre compte", { id: "to-signup" })),
  ]);
}
