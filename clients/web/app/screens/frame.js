// The frame of the pages seen before signing in (log-in, sign-up, verification, the
// legal texts): the brand, the page's card, the guide's pitch beside it on a wide
// screen (below on a phone), and the links to the terms and the data-protection policy.
import { h, replace } from "../dom.js";
import { root } from "../state.js";
import { go } from "../router.js";

export function link(path, text, attrs = {}) {
  return h("a", { href: path, onclick: (e) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || attrs.target) return; // a new tab: the browser's
    e.preventDefault();
    go(path);
  }, ...attrs }, text);
}

export function steps(active, done = []) {
  const names = ["Création de compte", "Vérification de l'adresse e-mail"];
  return h("ol", { class: "steps", "aria-label": "Étapes" }, names.map((name, i) =>
    h("li", { class: `${i + 1 === active ? "active" : ""} ${done.includes(i + 1) ? "done" : ""}`, "aria-current": i + 1 === active ? "step" : null },
      h("span", { class: "step-number" }, done.includes(i + 1) ? "✔" : String(i + 1)), name)));
}

const PITCH = [
  "Annuaire complet des praticiens",
  "Messagerie instantanée sécurisée sur ordinateur et mobile",
  "Partage sécurisé de documents",
  "Discussions collaboratives autour d'un cas patient",
  "Adressage en ligne de vos patients",
];

export function pitch() {
  return h("aside", { class: "pitch" },
    h("p", { class: "pitch-lead" }, "Échangez avec plus de 400 000 professionnels de la santé sur la messagerie instantanée Confrère"),
    h("p", { class: "pitch-tag" }, "GRATUIT & SÉCURISÉ"),
    h("ul", {}, PITCH.map((t) => h("li", {}, t))));
}

/** A public page: `content` in the card, the pitch when `withPitch`. */
export function publicPage(content, { withPitch = false, wide = false } = {}) {
  replace(root,
    h("div", { class: `public ${withPitch ? "with-pitch" : ""}` },
      h("header", { class: "public-top" }, link("/", h("span", { class: "brand" }, h("img", { src: "/app/icons/icon.svg", alt: "", width: 28, height: 28 }), "Confrère"))),
      h("main", { class: `card ${wide ? "wide" : ""}` }, content),
      withPitch ? pitch() : null,
      h("footer", { class: "public-foot" },
        h("p", {}, "Votre accès est nominatif et vos identifiants doivent rester confidentiels. Ne communiquez jamais votre mot de passe à personne."),
        h("nav", {}, link("/conditions", "Conditions générales d'utilisation"), " · ",
          link("/confidentialite", "Politique de protection des données")))));
  root.querySelector("main input, main button")?.focus?.({ preventScroll: true });
}
