// The identity review queue (/verifications, users with the reviewer role, SPEC.md
// §9.2 "Review"): pending manual requests oldest first, those waiting over 24 hours
// flagged, the photos shown in the page, approve, or reject with a reason (the user is
// told by e-mail and sees it on their verification page).
import { h, replace, when } from "../dom.js";
import { describe } from "../i18n.js";
import { rest } from "../state.js";
import { errorLine, fail } from "../widgets.js";
import { page } from "./shell.js";

const DOCUMENTS = { passport: "Passeport", id_card: "Carte d'identité" };
const SIDES = { front: "Recto", back: "Verso", selfie: "Selfie" };
const urls = [];

export function reviewView() {
  const list = h("div", { id: "review-queue" }, h("p", {}, "Chargement…"));
  page("review",
    h("h1", {}, "Vérifications d'identité"),
    h("p", { class: "lead" }, "Demandes de vérification manuelle en attente, les plus anciennes d'abord. Comparez les photos de la pièce d'identité et le selfie avec le nom, le prénom et le numéro RPPS ou ADELI du compte."),
    list);
  load(list);
}

async function load(list) {
  for (const u of urls.splice(0)) URL.revokeObjectURL(u);
  let requests;
  try {
    requests = (await rest.call("GET", "/v1/review/requests")).requests;
  } catch (err) {
    replace(list, h("p", { class: "error shown" }, describe(err)));
    return;
  }
  replace(list, requests.length
    ? requests.map((r) => item(r, () => load(list)))
    : h("p", { class: "empty", id: "queue-empty" }, "Aucune demande en attente."));
}

function item(r, reload) {
  const error = errorLine(`review-error-${r.id}`);
  const photos = h("div", { class: "photos" });
  for (const d of r.documents) {
    const figure = h("figure", {}, h("figcaption", {}, SIDES[d.side] || d.side), h("p", { class: "hint" }, "Chargement…"));
    photos.append(figure);
    rest.document(`/v1/review/documents/${encodeURIComponent(d.id)}`).then(({ blob }) => {
      const url = URL.createObjectURL(blob);
      urls.push(url);
      figure.lastChild.replaceWith(h("img", { src: url, alt: `${SIDES[d.side] || d.side} de ${r.user.first_name} ${r.user.last_name}`, dataset: { side: d.side } }));
    }).catch((err) => figure.lastChild.replaceWith(h("p", { class: "error shown" }, describe(err))));
  }
  const reason = h("textarea", { name: "reason", rows: 2, maxlength: 500, placeholder: "Motif du refus (communiqué au praticien)", "aria-label": "Motif du refus" });
  const decide = async (decision) => {
    error.classList.remove("shown");
    if (decision === "reject" && !reason.value.trim()) {
      error.textContent = "Indiquez le motif du refus : il est communiqué au praticien.";
      error.classList.add("shown");
      reason.focus();
      return;
    }
    try {
      await rest.call("POST", `/v1/review/requests/${encodeURIComponent(r.id)}/decision`,
        decision === "approve" ? { decision } : { decision, reason: reason.value.trim() });
      reload();
    } catch (err) {
      fail(error, err);
    }
  };
  return h("article", { class: `queue-item ${r.overdue ? "overdue" : ""}`, dataset: { request: r.id, user: r.user.id, testid: "request" } },
    h("h2", {}, `${r.user.first_name} ${r.user.last_name}`,
      r.overdue ? h("span", { class: "tag new", dataset: { testid: "overdue" } }, "En attente depuis plus de 24 h") : null),
    h("dl", { class: "summary" },
      h("dt", {}, "Adresse e-mail"), h("dd", {}, r.user.email),
      h("dt", {}, "Spécialité"), h("dd", {}, r.user.specialty),
      h("dt", {}, "Numéro RPPS ou ADELI"), h("dd", {}, r.user.rpps || "non renseigné"),
      h("dt", {}, "Pièce d'identité"), h("dd", {}, DOCUMENTS[r.document] || r.document, r.issuing_country ? ` (${r.issuing_country})` : ""),
      h("dt", {}, "Reçue"), h("dd", {}, when(r.created_at))),
    photos,
    reason,
    error,
    h("div", { class: "actions" },
      h("button", { type: "button", class: "primary approve", onclick: () => decide("approve") }, "Approuver"),
      h("button", { type: "button", class: "danger reject", onclick: () => decide("reject") }, "Refuser")));
}
