// The SAS regulator console (/sas, users with the regulator role), as the SAS guide
// describes it: the search of slots open to the SAS (open to new patients and bookable
// online, or carrying "Soins non programmés") by area, specialty and dates; then the
// booking: the consultation type (au cabinet / en vidéo), the motive ("Soins non
// programmés" first when offered), the practitioner's instructions to accept ("À lire
// avant de prendre un rendez-vous"), the patient's fields (the five by default plus
// those the practitioner requires), the message under the SAS notice, documents.
import { h, replace } from "../dom.js";
import { describe } from "../i18n.js";
import { rest } from "../state.js";
import { errorLine, fail, verifiedBadge } from "../widgets.js";
import { page } from "./shell.js";
import { instructionsGate, patientForm, patientName } from "./patient-form.js";
import { byDay, fullDate, fullTitle, placeLine, timeLabel } from "./referral.js";

const DAY_MS = 86_400_000;
export const CONSULTATION = { cabinet: "Au cabinet", video: "En vidéo" };
let specialties = null;

function isoDay(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export async function sasView() {
  if (!specialties) {
    try {
      specialties = (await rest.call("GET", "/v1/accounts/form")).specialties.filter((s) => s !== "Régulateur");
    } catch {
      specialties = [];
    }
  }
  const near = h("input", { name: "near", id: "sas-near", type: "search", placeholder: "Code postal ou ville", required: true, autocomplete: "off" });
  const specialty = h("select", { name: "specialty", id: "sas-specialty" }, h("option", { value: "" }, "Toutes les spécialités"), specialties.map((s) => h("option", { value: s }, s)));
  const radius = h("select", { name: "radius_km", id: "sas-radius" }, [5, 10, 20, 50].map((km) => h("option", { value: km, selected: km === 20 }, `${km} km`)));
  const from = h("input", { type: "date", name: "from", id: "sas-from", value: isoDay(Date.now()), required: true });
  const to = h("input", { type: "date", name: "to", id: "sas-to", value: isoDay(Date.now() + 2 * DAY_MS), required: true });
  const error = errorLine("sas-error");
  const results = h("div", { id: "sas-results", class: "days" });
  const step = h("section", { id: "sas-booking", hidden: true });
  let found = [];

  async function search() {
    error.classList.remove("shown");
    const start = Math.max(Date.now(), new Date(`${from.value}T00:00`).getTime());
    const end = new Date(`${to.value}T00:00`).getTime() + DAY_MS;
    const q = new URLSearchParams({ near: near.value.trim(), radius_km: radius.value, from: String(start), to: String(end), limit: "100" });
    if (specialty.value) q.set("specialty", specialty.value);
    try {
      found = (await rest.call("GET", `/v1/sas/slots?${q}`)).slots;
    } catch (err) {
      fail(error, err);
      return;
    }
    step.hidden = true;
    replace(results, found.length
      ? byDay(found.map((x) => ({ ...x.slot, _hit: x }))).map(([day, list]) => h("div", { class: "day" }, h("h3", {}, day),
        h("ul", { class: "plain agenda-slots" }, list.map((s) => {
          const x = s._hit;
          return h("li", { class: "agenda-slot sas-slot", dataset: { slot: s.id, testid: "sas-slot" } },
            h("span", { class: "slot-time" }, timeLabel(s.starts_at)),
            h("span", {}, h("strong", {}, fullTitle(x.practitioner)), verifiedBadge(x.practitioner.verified), ` — ${x.practitioner.specialty}`),
            h("small", {}, placeLine(x.place),
              x.practitioner.distance_km != null ? ` · ${x.practitioner.distance_km.toFixed(1).replace(".", ",")} km` : ""),
            h("span", { class: "tags" }, s.unscheduled_care ? h("span", { class: "tag snp" }, "Soins non programmés") : h("span", { class: "tag" }, "Nouveaux patients"),
              h("button", { type: "button", class: "primary small book-sas", onclick: () => book(x) }, "Réserver")));
        }))))
      : h("p", { class: "empty" }, "Aucun créneau disponible pour le SAS dans cette zone à ces dates."));
  }

  async function book(x) {
    step.hidden = false;
    replace(step, h("p", {}, "Chargement…"));
    let info;
    try {
      const window = `from=${x.slot.starts_at}&to=${x.slot.starts_at + DAY_MS}`;
      info = await rest.call("GET", `/v1/directory/profiles/${encodeURIComponent(x.practitioner.id)}/availability?${window}`);
    } catch (err) {
      replace(step, h("p", { class: "error shown" }, describe(err)));
      return;
    }
    const motives = info.motives.filter((m) => x.slot.motives.includes(m.id));
    const snp = motives.find((m) => m.unscheduled_care);
    const motive = h("select", { id: "sas-motive", name: "motive" }, h("option", { value: "" }, "Choisissez un motif"),
      motives.map((m) => h("option", { value: m.id, selected: m === snp }, m.label)));
    const form = patientForm({ required: info.required_fields, notice: info.sas_notice });
    const bookError = errorLine("sas-booking-error");
    const confirm = h("button", { type: "submit", class: "primary wide", id: "sas-confirm" }, "CONFIRMER LE RENDEZ-VOUS");
    const body = h("div", { id: "sas-form-body" }, form.element, bookError, confirm);
    const instructions = info.instructions ? instructionsGate(info.instructions, body) : null;
    replace(step,
      h("form", { id: "sas-booking-form", class: "booking", novalidate: true, onsubmit: async (e) => {
        e.preventDefault();
        if (!motive.value) {
          bookError.textContent = "Choisissez un motif de consultation.";
          bookError.classList.add("shown");
          motive.focus();
          return;
        }
        const values = form.values();
        if (!values) return;
        confirm.disabled = true;
        bookError.classList.remove("shown");
        try {
          const ids = [];
          for (const f of values.files) ids.push((await rest.uploadDocument(f)).id);
          const type = step.querySelector("input[name=consultation_type]:checked").value;
          const done = (await rest.call("POST", "/v1/sas/appointments", {
            slot: x.slot.id, motive: motive.value, patient: values.patient, message: values.message, attachments: ids, consultation_type: type,
          })).appointment;
          replace(step, h("div", { id: "sas-confirmed", class: "confirmed" },
            h("h2", {}, "Le rendez-vous est confirmé ", h("span", { class: "tag sas" }, "SAS")),
            h("p", {}, "Le patient sera prévenu par email et SMS. Le rendez-vous apparaît dans l'agenda du praticien, marqué SAS."),
            h("dl", { class: "summary" },
              h("dt", {}, "Patient"), h("dd", {}, patientName(done.patient)),
              h("dt", {}, "Praticien référent"), h("dd", {}, fullTitle(x.practitioner), ` — ${x.practitioner.specialty}`),
              h("dt", {}, "Date"), h("dd", {}, fullDate(done.starts_at)),
              h("dt", {}, "Type de consultation"), h("dd", {}, CONSULTATION[done.consultation_type]),
              h("dt", {}, "Lieu"), h("dd", {}, placeLine(x.place)),
              h("dt", {}, "Motif"), h("dd", {}, done.motive_label)),
            h("button", { type: "button", id: "sas-new-search", onclick: search }, "Nouvelle recherche")));
          found = found.filter((y) => y.slot.id !== x.slot.id);
        } catch (err) {
          fail(bookError, err);
          if (err.reason === "slot_taken") search();
          else if (err.field === "patient") form.markInvalid([...err.message.matchAll(/patient\.(\w+)/g)].map((m) => m[1]));
        } finally {
          confirm.disabled = false;
        }
      } },
      h("h2", {}, "Prise de rendez-vous pour le patient"),
      h("div", { class: "banner warn" }, "Votre rendez-vous n'est pas encore confirmé."),
      h("p", { id: "sas-practitioner" }, h("span", { class: "hint" }, "Praticien référent : "), h("strong", {}, fullTitle(x.practitioner)), ` — ${x.practitioner.specialty} `, h("span", { class: "tag sas" }, "SAS")),
      h("p", { class: "chosen" }, h("strong", {}, fullDate(x.slot.starts_at)), ` — ${x.place.name}, ${x.place.address}, ${x.place.postcode} ${x.place.city}`),
      h("fieldset", { class: "choice", id: "consultation-type" }, h("legend", {}, "Type de consultation"),
        Object.entries(CONSULTATION).map(([value, label]) => h("label", {}, h("input", { type: "radio", name: "consultation_type", value, checked: value === "cabinet" }), label))),
      h("label", { class: "field" }, h("span", {}, "Motif de consultation"), motive,
        h("small", { class: "hint" }, "Si le motif « Soins non programmés » est disponible, merci de le sélectionner. S'il n'est pas disponible, sélectionnez le motif le plus pertinent.")),
      instructions,
      h("p", { class: "hint" }, "Par défaut les informations obligatoires sont : nom, prénom, nom de naissance, date de naissance, téléphone. Certains médecins effecteurs demandent plus d'informations."),
      body));
    step.scrollIntoView({ block: "start" });
  }

  page("sas",
    h("h1", {}, "Service d'Accès aux Soins (SAS)"),
    h("p", { class: "lead" }, "Recherche de créneaux ouverts au SAS : ouverts aux nouveaux patients et réservables en ligne, ou portant le motif « Soins non programmés »."),
    h("form", { id: "sas-search", class: "search-bar sas-bar", onsubmit: (e) => { e.preventDefault(); search(); } },
      h("label", { class: "field" }, h("span", {}, "Où ?"), near),
      h("label", { class: "field" }, h("span", {}, "Rayon"), radius),
      h("label", { class: "field" }, h("span", {}, "Spécialité"), specialty),
      h("label", { class: "field" }, h("span", {}, "Du"), from),
      h("label", { class: "field" }, h("span", {}, "Au"), to),
      h("div", { class: "search-actions" }, h("button", { type: "submit", class: "primary", id: "sas-search-submit" }, "Rechercher"))),
    error,
    h("section", {}, h("h2", {}, "Créneaux disponibles"), results),
    step);
}
