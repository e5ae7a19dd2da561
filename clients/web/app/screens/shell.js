// The frame of every signed-in page: the top bar (brand, connection, who is signed in,
// log-out) and the menu of the product's areas, as the guide's side menu: Messagerie,
// Adressage, Agenda (with the count of referrals arrived since it was last seen), and
// by platform role the SAS console, the identity review and the administration.
// A referral booked in the agenda (appointment.booked, SPEC.md §5.6) shows here, on
// every page: a visible alert and the badge.
import { h, icon, replace, when } from "../dom.js";
import { app, emit, notice, on, root } from "../state.js";
import { initials } from "../profiles.js";
import { logOut } from "../session.js";
import { go } from "../router.js";
import { avatar, verifiedBadge } from "../widgets.js";
import { showProfile } from "./profile-card.js";

const STATUS = { online: "Connecté", connecting: "Connexion…", offline: "Hors ligne — reconnexion automatique…", closed: "Déconnecté" };

/** The menu's entries this account may use: [path, label, id]. */
function entries() {
  const roles = new Set(app.roles || []);
  const regulator = app.profile?.profession === "regulator";
  return [
    ["/conversations", "Messagerie", "nav-messages"],
    regulator ? null : ["/adressage", "Adressage", "nav-referral"],
    regulator ? null : ["/agenda", "Agenda", "nav-agenda"],
    roles.has("regulator") ? ["/sas", "Régulation SAS", "nav-sas"] : null,
    roles.has("reviewer") ? ["/verifications", "Vérifications", "nav-review"] : null,
    roles.has("admin") ? ["/administration", "Administration", "nav-admin"] : null,
  ].filter(Boolean);
}

function isActive(path) {
  const here = location.pathname;
  if (path === "/conversations") return here === "/" || here.startsWith("/conversations");
  return here === path || here.startsWith(`${path}/`);
}

let bar = null; // {header, nav, status, me}

function renderNav() {
  if (!bar) return;
  replace(bar.nav, entries().map(([path, label, id]) => h("a", {
    href: path, id, class: isActive(path) ? "active" : "", "aria-current": isActive(path) ? "page" : null,
    onclick: (e) => {
      if (e.metaKey || e.ctrlKey || e.shiftKey) return;
      e.preventDefault();
      go(path);
    },
  }, label, id === "nav-agenda" && app.arrived.length
    ? h("span", { class: "unread", id: "agenda-badge", "aria-label": `${app.arrived.length} nouveau(x) rendez-vous` }, String(app.arrived.length))
    : null)));
}

function renderStatus(state) {
  if (!bar) return;
  bar.status.dataset.state = state;
  bar.status.textContent = STATUS[state] || state;
}

function renderMe() {
  if (!bar || !app.profile || !app.session) return;
  replace(bar.me, avatar(initials(app.session.userId), "me"),
    h("span", { class: "me-name" }, `${app.profile.first_name} ${app.profile.last_name}`), verifiedBadge(app.profile.verified));
}

/** The top bar and the menu, made once per page load and moved into each layout. */
export function chrome() {
  if (!bar) {
    const status = h("span", { id: "connection", class: "connection" });
    const me = h("button", { type: "button", class: "me", id: "me", title: "Mon profil", onclick: () => showProfile(app.session.userId) });
    const header = h("header", { class: "top" },
      h("a", { class: "brand", href: "/", onclick: (e) => { e.preventDefault(); go("/"); } },
        h("img", { src: "/app/icons/icon.svg", alt: "", width: 26, height: 26 }), h("span", {}, "Confrère")),
      status,
      me,
      h("button", { type: "button", id: "account-security", class: "ghost", title: "Mot de passe, sessions ouvertes, mes données",
        "aria-label": "Sécurité du compte", onclick: () => go("/compte/securite") }, icon("lock"), h("span", { class: "label" }, "Sécurité")),
      h("button", { type: "button", id: "logout", class: "ghost", onclick: async () => {
        await logOut();
        bar = null;
        go("/connexion", { replace: true });
      } }, "Se déconnecter"));
    const nav = h("nav", { class: "main-nav", id: "main-nav", "aria-label": "Menu" });
    bar = { header, nav, status, me };
  }
  renderStatus(app.client?.status || "connecting");
  renderMe();
  renderNav();
  return [bar.header, bar.nav];
}

/** A page of one area: the frame, then `content` in a scrolling main. */
export function page(id, ...content) {
  const main = h("main", { class: "page-main", id });
  replace(main, ...content);
  replace(root, h("div", { class: "layout page" }, chrome(), main));
  return main;
}

on("status", renderStatus);
on("profiles", renderMe);
on("nav", renderNav);
on("appointment", (ev) => {
  if (!app.arrived.includes(ev.room)) app.arrived.push(ev.room);
  renderNav();
  const how = ev.reason === "sas" ? "par le SAS" : "par un confrère";
  notice(`Nouveau rendez-vous adressé ${how} : ${when(ev.ts)}. Consultez votre agenda.`);
});

/** The agenda was seen: its badge goes. */
export function agendaSeen() {
  app.arrived = [];
  emit("nav");
}
