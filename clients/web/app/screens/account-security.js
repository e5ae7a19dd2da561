// /compte/securite: the account's security (SPEC.md §9.4). The password (changed
// knowing the current one: the other sessions are closed) and the log-in sessions,
// each with its device and date, "Cette session" for this browser, and a button that
// closes one, or all the others; a closed session's browser is signed out at once.
// "Mes données": download one's data, delete the account (the password again).
// Notifications: this browser subscribes to Web Push (SPEC.md §9.5) when the server
// offers it. "Sauvegarde des clés": the key backup (SPEC.md §11.7), set up under a
// recovery phrase shown once. "Mes appareils" (SPEC.md §9): each device with its
// dates and whether the account's identity key signed it ("Vérifié" / "Non vérifié"),
// renamed in place, or revoked after a confirmation (disconnected at once; it reads
// nothing sent afterwards).
import { h, replace } from "../dom.js";
import { ApiError } from "../rest.js";
import { app, notice, rest } from "../state.js";
import { go } from "../router.js";
import { logOut } from "../session.js";
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
    notificationsSection(),
    backupSection(),
    devicesSection(),
    h("section", { class: "security-section", "aria-labelledby": "sessions-title" },
      h("h2", { id: "sessions-title" }, "Sessions ouvertes"),
      h("p", { class: "lead" }, "Les appareils et navigateurs connectés à votre compte. Fermez une session que vous ne reconnaissez pas : elle est déconnectée immédiatement."),
      list,
      listError,
      h("div", { class: "actions" }, others)),
    dataSection(),
  ], { wide: true });
  drawSessions(list, listError, others);
}

/** "Mes appareils": the account's devices, renamed or revoked here. */
function devicesSection() {
  const list = h("ul", { class: "sessions devices", id: "devices", "aria-label": "Mes appareils" });
  const error = errorLine("devices-error");
  drawDevices(list, error);
  return h("section", { class: "security-section", "aria-labelledby": "devices-title" },
    h("h2", { id: "devices-title" }, "Mes appareils"),
    h("p", { class: "lead" }, "Les appareils qui détiennent vos clés de chiffrement. Un appareil « Non vérifié » n'a pas été approuvé depuis un autre de vos appareils : vos confrères le voient ainsi. Révoquez un appareil perdu ou que vous n'utilisez plus : il est déconnecté immédiatement et ne pourra plus lire les nouveaux messages."),
    list, error);
}

async function drawDevices(list, error) {
  let devices = [];
  try {
    ({ devices } = await rest.call("GET", "/v1/devices"));
  } catch (err) {
    fail(error, err);
    return;
  }
  const redraw = () => drawDevices(list, error);
  replace(list, devices.map((d) => deviceRow(d, error, redraw)));
}

function deviceRow(d, error, redraw) {
  const row = h("li", { class: "session device", dataset: { testid: "device", id: d.id, verified: d.verified ? "1" : "" } });
  const what = h("div", { class: "session-what" },
    h("strong", { class: "device-name" }, d.name),
    d.current ? h("span", { class: "tag" }, "Cet appareil") : null,
    d.verified
      ? h("span", { class: "tag device-verified" }, "Vérifié")
      : h("span", { class: "tag device-unverified" }, "Non vérifié"),
    h("span", { class: "session-when" }, `Ajouté le ${DATE.format(new Date(d.created_at))} · `,
      d.last_seen_at ? `dernière activité le ${DATE.format(new Date(d.last_seen_at))}` : "jamais connecté"));
  const rename = h("button", { type: "button", class: "rename", onclick: () => replace(row, renameForm(d, error, redraw)) }, "Renommer");
  const revoke = d.current ? null : h("button", { type: "button", class: "revoke danger", onclick: async () => {
    const text = `« ${d.name} » sera déconnecté immédiatement, ses clés retirées, et il ne pourra plus lire les nouveaux messages. Pour l'utiliser à nouveau, il faudra vous y reconnecter et l'approuver.`;
    if (!(await confirmDialog("Révoquer cet appareil", text, "Révoquer"))) return;
    try {
      await rest.call("DELETE", `/v1/devices/${encodeURIComponent(d.id)}`);
      notice(`Appareil « ${d.name} » révoqué.`);
    } catch (err) {
      fail(error, err);
    }
    await redraw();
  } }, "Révoquer");
  replace(row, [what, h("div", { class: "actions" }, rename, revoke)]);
  return row;
}

function renameForm(d, error, redraw) {
  const input = h("input", { name: "name", value: d.name, maxlength: 100, required: true, "aria-label": "Nom de l'appareil" });
  const form = h("form", { class: "inline device-rename", onsubmit: async (e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (!name) return;
    try {
      await rest.call("PATCH", `/v1/devices/${encodeURIComponent(d.id)}`, { name });
      notice("Appareil renommé.");
    } catch (err) {
      fail(error, err);
    }
    await redraw();
  } }, input,
  h("button", { type: "submit", class: "primary" }, "Enregistrer"),
  h("button", { type: "button", onclick: () => redraw() }, "Annuler"));
  queueMicrotask(() => input.focus());
  return form;
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

function b64urlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function bytesToB64url(buffer) {
  return btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** "Notifications": subscribe this browser to Web Push, or stop. */
function notificationsSection() {
  const state = h("p", { id: "push-state", class: "lead" }, "…");
  const error = errorLine("push-error");
  const button = h("button", { type: "button", id: "push-toggle", hidden: true });
  const section = h("section", { class: "security-section", "aria-labelledby": "push-title" },
    h("h2", { id: "push-title" }, "Notifications"),
    state, h("div", { class: "actions" }, button), error);
  drawNotifications(state, button, error);
  return section;
}

async function drawNotifications(state, button, error) {
  const supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  let key = null;
  try {
    key = (await rest.call("GET", "/v1/push/config")).vapid_public_key;
  } catch (err) {
    fail(error, err);
    return;
  }
  if (!key || !supported) {
    state.textContent = key ? "Ce navigateur ne sait pas recevoir de notifications." : "Ce service n'envoie pas de notifications aux navigateurs.";
    button.hidden = true;
    return;
  }
  const registration = await navigator.serviceWorker.getRegistration("/");
  const current = await registration?.pushManager.getSubscription();
  button.hidden = false;
  if (current) {
    state.textContent = "Ce navigateur vous prévient des nouveaux messages quand Confrère est fermé (sans jamais en montrer le contenu).";
    button.textContent = "Désactiver les notifications";
    button.onclick = async () => {
      try {
        await rest.call("DELETE", "/v1/push/subscription");
        await current.unsubscribe();
      } catch (err) {
        fail(error, err);
      }
      drawNotifications(state, button, error);
    };
    return;
  }
  state.textContent = Notification.permission === "denied"
    ? "Les notifications sont bloquées pour Confrère dans les réglages de ce navigateur."
    : "Recevez une notification des nouveaux messages quand Confrère est fermé (sans jamais en montrer le contenu).";
  button.textContent = "Activer les notifications sur ce navigateur";
  button.disabled = Notification.permission === "denied";
  button.onclick = async () => {
    try {
      if ((await Notification.requestPermission()) !== "granted") {
        drawNotifications(state, button, error);
        return;
      }
      const ready = await navigator.serviceWorker.ready;
      const subscription = await ready.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64urlToBytes(key) });
      await rest.call("PUT", "/v1/push/subscription", {
        kind: "webpush",
        endpoint: subscription.endpoint,
        p256dh: bytesToB64url(subscription.getKey("p256dh")),
        auth: bytesToB64url(subscription.getKey("auth")),
      });
    } catch (err) {
      if (err instanceof ApiError) fail(error, err);
      else {
        // The browser's push service refused or is unreachable (a DOMException).
        error.textContent = "Ce navigateur n'a pas pu s'abonner aux notifications : réessayez plus tard.";
        error.classList.add("shown");
        console.info("push subscribe", err);
      }
    }
    drawNotifications(state, button, error);
  };
}

/** "Sauvegarde des clés": the state of the key backup, and setting one up (a new
 * recovery phrase, shown once). */
function backupSection() {
  const state = h("p", { id: "backup-state", class: "lead" }, "…");
  const shown = h("div", { id: "backup-phrase-box" });
  const error = errorLine("backup-error");
  const button = h("button", { type: "button", id: "backup-set-up", class: "primary", hidden: true });
  button.onclick = async () => {
    if (button.dataset.replace && !(await confirmDialog("Nouvelle phrase de récupération", "L'ancienne phrase de récupération ne servira plus à rien : seule la nouvelle restaurera vos clés.", "Créer une nouvelle phrase"))) return;
    button.disabled = true;
    try {
      const phrase = await app.e2ee.setUpBackup();
      replace(shown,
        h("p", { class: "banner warn" }, "Notez cette phrase de récupération et gardez-la en lieu sûr, hors de cet appareil. Elle ne sera plus jamais affichée. Si vous perdez cette phrase et tous vos appareils, l'historique de vos conversations sera perdu : personne, pas même Confrère, ne pourra le récupérer."),
        h("p", { class: "recovery-phrase", id: "recovery-phrase" }, phrase));
      await drawBackup(state, button, error);
    } catch (err) {
      fail(error, err);
    } finally {
      button.disabled = false;
    }
  };
  const section = h("section", { class: "security-section", "aria-labelledby": "backup-title" },
    h("h2", { id: "backup-title" }, "Sauvegarde des clés"),
    h("p", { class: "lead" }, "Vos messages sont chiffrés de bout en bout : seuls vos appareils en détiennent les clés. Une sauvegarde chiffrée de ces clés, protégée par une phrase de récupération que vous seul connaissez, vous permet de relire l'historique sur un nouvel appareil si vous n'en avez plus aucun autre."),
    state, h("div", { class: "actions" }, button), shown, error);
  drawBackup(state, button, error);
  return section;
}

async function drawBackup(state, button, error) {
  if (!app.e2ee) {
    state.textContent = "Connectez-vous à la messagerie pour gérer la sauvegarde de vos clés.";
    return;
  }
  let info;
  try {
    info = await app.e2ee.backupInfo();
  } catch (err) {
    fail(error, err);
    return;
  }
  button.hidden = false;
  if (!info) {
    state.textContent = "Aucune sauvegarde : si vous perdez tous vos appareils, l'historique de vos conversations sera perdu.";
    button.textContent = "Créer ma phrase de récupération";
    delete button.dataset.replace;
    return;
  }
  const kept = app.e2ee.backup?.version === info.version;
  state.textContent = `Sauvegarde active depuis le ${DATE.format(new Date(info.created_at))} : ${info.entries} clé${info.entries > 1 ? "s" : ""} sauvegardée${info.entries > 1 ? "s" : ""}${kept ? ", tenue à jour par cet appareil" : ""}.`;
  state.dataset.entries = String(info.entries);
  button.textContent = "Créer une nouvelle phrase de récupération";
  button.dataset.replace = "1";
}

/** "Mes données": the export (a JSON file) and the account's deletion. */
function dataSection() {
  const error = errorLine("data-error");
  const download = h("button", { type: "button", id: "export", onclick: async () => {
    try {
      const data = await rest.call("GET", "/v1/accounts/me/export");
      const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
      const a = h("a", { href: url, download: "confrere-mes-donnees.json", hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      fail(error, err);
    }
  } }, "Télécharger mes données");
  const form = h("form", { id: "delete-form", onsubmit: async (e) => {
    e.preventDefault();
    const password = new FormData(form).get("password");
    if (!(await confirmDialog("Supprimer mon compte", "Votre compte sera supprimé définitivement et toutes vos sessions fermées. Vos messages resteront dans les conversations de vos confrères, sous le nom « Compte supprimé ».", "Supprimer définitivement"))) return;
    try {
      await rest.call("POST", "/v1/accounts/me/delete", { password });
    } catch (err) {
      fail(error, err);
      return;
    }
    await logOut();
    go("/connexion?supprime=1", { replace: true });
  } },
  field("Mot de passe", "password", "password", { autocomplete: "current-password" }),
  h("button", { type: "submit", class: "danger" }, "Supprimer mon compte"));
  return h("section", { class: "security-section", "aria-labelledby": "data-title" },
    h("h2", { id: "data-title" }, "Mes données"),
    h("p", { class: "lead" }, "Téléchargez les informations de votre compte (profil, consentements, appareils, sessions, conversations). Vos messages, chiffrés de bout en bout, restent sur vos appareils."),
    h("div", { class: "actions" }, download),
    h("p", { class: "lead" }, "Supprimer votre compte efface vos informations personnelles. Sont conservés, pour vos confrères et les obligations légales : vos messages dans leurs conversations, les rendez-vous pris, vos consentements et le journal d'audit."),
    form,
    error);
}
