// Administration (/administration, users with the admin role): issue a regulator (SAS)
// sign-up link (e-mailed to that address only, SPEC.md §9.2), and read the audit log
// with its filters (actor, action or action prefix "admin.", target, since), newest
// first, page by page.
import { h, replace, when } from "../dom.js";
import { rest } from "../state.js";
import { errorLine, fail, field } from "../widgets.js";
import { page } from "./shell.js";

const ACTIONS = {
  "admin.verified": "Identité vérifiée par un administrateur",
  "admin.unverified": "Vérification retirée par un administrateur",
  "admin.regulator_link": "Lien d'inscription régulateur émis",
  "admin.role_granted": "Rôle attribué",
  "admin.role_revoked": "Rôle retiré",
  "identity.reviewed": "Vérification manuelle examinée",
  "identity.document_viewed": "Photo d'identité consultée",
  "patient.appointment_read": "Dossier patient consulté",
  "patient.referral_viewed": "Dossier patient consulté",
  "audit.read": "Journal d'audit consulté",
};

export function adminView() {
  const linkError = errorLine("link-error");
  const linkDone = h("p", { class: "banner ok", id: "link-issued", hidden: true });
  const linkForm = h("form", { id: "regulator-link-form", onsubmit: async (e) => {
    e.preventDefault();
    linkDone.hidden = true;
    linkError.classList.remove("shown");
    const email = linkForm.elements.email.value.trim();
    try {
      const issued = await rest.call("POST", "/v1/regulator-links", { email });
      linkDone.textContent = `Lien envoyé à ${email} : valable jusqu'au ${new Date(issued.expires_at).toLocaleString("fr-FR", { dateStyle: "long", timeStyle: "short" })}. Il permet de créer un seul compte régulateur, avec cette adresse.`;
      linkDone.hidden = false;
      linkForm.reset();
    } catch (err) {
      fail(linkError, err);
    }
  } },
  field("Adresse e-mail du régulateur", "email", "email", { placeholder: "regulateur@sas.example.fr" }),
  h("button", { type: "submit", class: "primary", id: "issue-link" }, "Envoyer le lien d'inscription"));

  const entries = h("tbody", { id: "audit-entries" });
  const auditError = errorLine("audit-error");
  const more = h("button", { type: "button", id: "audit-more", hidden: true }, "Entrées plus anciennes");
  let last = null;
  const filters = h("form", { id: "audit-filters", class: "row3", onsubmit: (e) => { e.preventDefault(); search(); } },
    field("Auteur (identifiant)", "actor", "text", { required: false }),
    field("Action (ou préfixe « admin. »)", "action", "text", { required: false }),
    field("Cible (identifiant)", "target", "text", { required: false }),
    field("Depuis le", "since", "date", { required: false }),
    h("div", { class: "search-actions" }, h("button", { type: "submit", class: "primary", id: "audit-search" }, "Filtrer")));
  async function search(older = false) {
    auditError.classList.remove("shown");
    const q = new URLSearchParams({ limit: "50" });
    for (const name of ["actor", "action", "target"]) {
      const v = filters.elements[name].value.trim();
      if (v) q.set(name, v);
    }
    if (filters.elements.since.value) q.set("since", String(new Date(filters.elements.since.value).getTime()));
    if (older && last) q.set("before", String(last));
    try {
      const list = (await rest.call("GET", `/v1/admin/audit?${q}`)).entries;
      const rows = list.map((e) => h("tr", { dataset: { action: e.action } },
        h("td", {}, when(e.ts)), h("td", {}, ACTIONS[e.action] || e.action, h("br"), h("small", { class: "hint" }, e.action)),
        h("td", {}, e.actor || "—"), h("td", {}, e.target || "—"),
        h("td", {}, h("small", {}, Object.keys(e.detail || {}).length ? JSON.stringify(e.detail) : ""))));
      if (older) entries.append(...rows);
      else replace(entries, rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "Aucune entrée.")));
      last = list.length ? list[list.length - 1].id : last;
      more.hidden = list.length < 50;
    } catch (err) {
      fail(auditError, err);
    }
  }
  more.onclick = () => search(true);

  page("admin",
    h("h1", {}, "Administration"),
    h("section", {}, h("h2", {}, "Comptes régulateurs (SAS)"),
      h("p", { class: "hint" }, "Le régulateur reçoit par e-mail un lien sécurisé de création de compte, valable 7 jours. Il y sélectionne la profession « Régulateur » ; s'il a déjà un compte professionnel, il utilise une autre adresse e-mail."),
      linkForm, linkDone, linkError),
    h("section", {}, h("h2", {}, "Journal d'audit"), filters, auditError,
      h("div", { class: "table-wrap" }, h("table", { class: "audit" },
        h("thead", {}, h("tr", {}, ["Date", "Action", "Auteur", "Cible", "Détail"].map((t) => h("th", {}, t)))), entries)),
      more));
  search();
}
