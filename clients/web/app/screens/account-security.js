// /compte/securite: the account's security (SPEC.md §9.4). The password (changed
// knowing the current one: the other sessions are closed) and the log-in sessions,
// each with its device and date, "Cette session" for this browser, and a button that
// closes one, or all the others; a closed session's browser is signed out at once.
// Key-holding devices (their approval, names) are another page's.
import { h, replace } from "../dom.js";
import { notice, rest } from "../state.js";
import { go } from "../router.js";
import { confirmDialog, errorLine, fail, field } from "../widgets.js";
import { link, publicPage } from "./frame.js";

const DATE = new Intl.DateTimeFormat("fr-FR", { dateStyle: "long", timeStyle: "short" });

export function accountSecurityView() {
  const list = h("ul", { class: "sessions", id: "sessions", "aria-label": "Sessions ouvertes" });
  const listError = errorLine("sessions-error");
  const others = h("button", { type: "button", id: "revoke-others", class: "danger", onclick: async () => {
    if (!(await confirmDialog("Fermer les autres sessions", "Tous vos autres appareils et navigateurs seront déconnectés.", "Fermer les autres sessions"))) return;
    try {
      const { revoked } = await rest.call("DELETE", "/v1/sessions/others");
      notice(revoked > 1 ? `${revoked} sessions fermées.` : revoked === 1 ? "1 session fermée." : "Aucune autre session ouverte.");
      await drawSessions(list, listError, others);
    } catch (err) {
      fail(listError, err);
    }
  } }, "Fermer toutes les autres sessions");
  publicPage([
    h("p", {}, link("/", "← Retour aux conversations", { id: "back-to-messaging" })),
    h("h1", {}, "Sécurité du compte"),
    passwordSection(),
    h("section", { class: "security-section", "aria-labelledby": "sessions-title" },
      h("h2", { id: "sessions-title" }, "Sessions ouvertes"),
      h("p", { class: "lead" }, "Les appareils et navigateurs connectés à votre compte. Fermez une session que vous ne reconnaissez pas : elle est déconnectée immédiatement."),
      list,
      listError,
      h("div", { class: "actions" }, others)),
  ], { wide: true });
  drawSessions(list, listError, others);
}

async function drawSessions(list, error, others) {
  let sessions = [];
  try {
    ({ sessions } = await rest.call("GET", "/v1/sessions"));
  } catch (err) {
    fail(error, err);
    return;
  }
  others.disabled = !sessions.some((s) => !s.current);
  replace(list, sessions.map((s) => h("li", { class: "session", dataset: { testid: "session", current: s.current ? "1" : "" } },
    h("div", { class: "session-what" },
      h("strong", {}, s.device_name), s.current ? h("span", { class: "tag" }, "Cette session") : null,
      h("span", { class: "session-when" }, `Connexion le ${DATE.format(new Date(s.created_at))}`)),
    s.current ? null : h("button", { type: "button", class: "revoke", onclick: async (e) => {
      e.currentTarget.disabled = true;
      try {
        await rest.call("DELETE", `/v1/sessions/${s.id}`);
        notice(`Session « ${s.device_name} » fermée.`);
      } catch (err) {
        fail(error, err);
      }
      await drawSessions(list, error, others);
    } }, "Fermer cette session"))));
}

function passwordSection() {
  const error = errorLine("password-error");
  const form = h("form", { id: "password-form", onsubmit: async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await rest.call("POST", "/v1/accounts/password", { password: data.password, new_password: data.new_password });
      form.reset();
      error.classList.remove("shown");
      notice("Mot de passe changé. Vos autres sessions ont été fermées.");
      go("/compte/securite", { replace: true });
    } catch (err) {
      fail(error, err);
    } finally {
      button.disabled = false;
    }
  } },
  field("Mot de passe actuel", "password", "password", { autocomplete: "current-password" }),
  field("Nouveau mot de passe (10 caractères minimum)", "new_password", "password", { minlength: 10, autocomplete: "new-password" }),
  h("button", { type: "submit", class: "primary" }, "Changer mon mot de passe"));
  return h("section", { class: "security-section", "aria-labelledby": "password-title" },
    h("h2", { id: "password-title" }, "Mot de passe"),
    h("p", { class: "lead" }, "Changer votre mot de passe ferme vos autres sessions."),
    form,
    error);
}
