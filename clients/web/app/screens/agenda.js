// The agenda (receiving side): the week's places and slots, the referrals booked in
// them (arriving live: appointment.booked, SPEC.md §5.6), a referral's detail with the
// patient's fields, the message and the documents (each read is audited by the
// server), and the settings: places, motives ("Soins non programmés" opens a slot to
// the SAS), opening slots (open to new patients, bookable online), the patient fields
// required beyond the default, and whether the profile is visible in the directory.
import { h, replace, when } from "../dom.js";
import { describe } from "../i18n.js";
import { app, on, rest } from "../state.js";
import { nameTag, want } from "../profiles.js";
import { dialog, errorLine, fail } from "../widgets.js";
import { agendaSeen, page } from "./shell.js";
import { PATIENT_LABELS, patientName, patientValue } from "./patient-form.js";
import { byDay, fullDate, placeLine, timeLabel } from "./referral.js";

const DAY_MS = 86_400_000;
const SNP = "Soins non programmés";
const DEFAULT_REQUIRED = ["first_name", "last_name", "birth_name", "birth_date", "phone"];
let state = null; // {main, from, data, highlight}

function monday(ts) {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  return d.getTime();
}

export function agendaView() {
  const main = page("agenda", h("p", {}, "Chargement…"));
  state = { main, from: state?.from ?? monday(Date.now()), data: null, highlight: new Set(app.arrived) };
  agendaSeen();
  load();
}

async function load() {
  const s = state;
  try {
    s.data = await rest.call("GET", `/v1/agenda?from=${s.from}&to=${s.from + 7 * DAY_MS}`);
  } catch (err) {
    replace(s.main, h("p", { class: "error shown" }, describe(err)));
    return;
  }
  if (s === state && s.main.isConnected) render();
}

function render() {
  const { main, data, from } = state;
  const places = new Map(data.places.map((p) => [p.id, p]));
  const motives = new Map(data.motives.map((m) => [m.id, m]));
  const bySlot = new Map(data.appointments.map((a) => [a.slot, a]));
  want(data.appointments.map((a) => a.booked_by));
  const week = `Semaine du ${new Date(from).toLocaleDateString("fr-FR", { day: "numeric", month: "long", year: "numeric" })}`;
  const move = (days) => {
    state.from += days * DAY_MS;
    load();
  };
  replace(main,
    h("h1", {}, "Agenda"),
    h("div", { class: "week-nav" },
      h("button", { type: "button", id: "week-before", onclick: () => move(-7), "aria-label": "Semaine précédente" }, "←"),
      h("strong", { id: "week-title" }, week),
      h("button", { type: "button", id: "week-after", onclick: () => move(7), "aria-label": "Semaine suivante" }, "→"),
      h("button", { type: "button", id: "week-today", onclick: () => { state.from = monday(Date.now()); load(); } }, "Aujourd'hui")),
    h("div", { id: "agenda-days", class: "days" },
      data.slots.length
        ? byDay(data.slots).map(([day, list]) => h("div", { class: "day" }, h("h3", {}, day),
          h("ul", { class: "plain agenda-slots" }, list.map((slot) => slotRow(slot, bySlot.get(slot.id), places, motives)))))
        : h("p", { class: "empty" }, "Aucun créneau cette semaine : ouvrez-en dans les paramètres ci-dessous.")),
    settings(data, places, motives));
}

function slotRow(slot, appointment, places, motives) {
  const labels = slot.motives.map((id) => motives.get(id)?.label).filter(Boolean);
  const tags = [
    slot.unscheduled_care ? h("span", { class: "tag snp" }, SNP) : null,
    slot.open_to_new_patients ? h("span", { class: "tag" }, "Nouveaux patients") : null,
    slot.bookable_online ? h("span", { class: "tag" }, "Réservable en ligne") : h("span", { class: "tag" }, "Hors ligne"),
  ];
  const head = h("span", { class: "slot-time" }, `${timeLabel(slot.starts_at)} – ${timeLabel(slot.ends_at)}`);
  const where = h("small", {}, `${places.get(slot.place)?.name || ""} · ${labels.join(", ")}`);
  if (!appointment) {
    return h("li", { class: "agenda-slot free", dataset: { slot: slot.id } }, head, h("span", { class: "free-label" }, "Libre"), where, h("span", { class: "tags" }, tags));
  }
  const fresh = state.highlight.has(appointment.id);
  return h("li", { class: `agenda-slot booked ${fresh ? "fresh" : ""}`, dataset: { slot: slot.id, appointment: appointment.id } },
    head,
    h("button", { type: "button", class: "appointment-open", dataset: { testid: "appointment" }, onclick: () => showAppointment(appointment.id) },
      fresh ? h("span", { class: "tag new" }, "Nouveau") : null,
      appointment.via === "sas" ? h("span", { class: "tag sas" }, "SAS") : h("span", { class: "tag" }, "Adressé"),
      h("strong", {}, patientName(appointment.patient)), ` — ${appointment.motive_label}`,
      appointment.consultation_type === "video" ? " — en vidéo" : ""),
    where, h("span", { class: "tags" }, tags));
}

/** A referral's detail: who booked it, the patient, the message, the documents. */
export async function showAppointment(id) {
  const body = h("div", {}, h("p", {}, "Chargement…"));
  const d = dialog("Rendez-vous adressé", body);
  d.id = "appointment-detail";
  let a;
  try {
    a = (await rest.call("GET", `/v1/referrals/${encodeURIComponent(id)}`)).appointment;
  } catch (err) {
    replace(body, h("p", { class: "error shown" }, describe(err)));
    return;
  }
  const error = errorLine("document-error");
  const reads = h("ul", { class: "plain hint", id: "referral-reads" });
  replace(body,
    h("p", { class: "lead" }, fullDate(a.starts_at), ` — ${a.motive_label} — `,
      h("span", { id: "consultation-type" }, a.consultation_type === "video" ? "En vidéo" : "Au cabinet")),
    h("p", {}, a.via === "sas" ? [h("span", { class: "tag sas" }, "SAS"), " Pris par la régulation : "] : "Adressé par ", h("strong", {}, nameTag(a.booked_by, { id: "booked-by" }))),
    h("h3", {}, "Les informations du patient"),
    h("dl", { class: "summary", id: "patient-fields" }, Object.keys(PATIENT_LABELS).filter((k) => a.patient[k] !== undefined && a.patient[k] !== null)
      .map((k) => [h("dt", {}, PATIENT_LABELS[k]), h("dd", { dataset: { field: k } }, patientValue(k, a.patient[k]))])),
    h("h3", {}, "Message à destination du praticien"),
    h("p", { class: "message", id: "referral-message-text" }, a.message || "Aucun message."),
    h("h3", {}, "Documents"),
    a.attachments.length
      ? h("ul", { class: "plain", id: "referral-documents" }, a.attachments.map((att, i) => h("li", { class: "file" },
        h("span", { class: "file-name" }, `Document ${i + 1}`),
        h("button", { type: "button", class: "download", dataset: { attachment: att }, onclick: (e) => openDocument(a.id, att, e.currentTarget, error) }, "Ouvrir"))))
      : h("p", { class: "hint" }, "Aucun document."),
    error,
    h("h3", {}, "Consultations du dossier"),
    reads);
  try {
    const list = (await rest.call("GET", `/v1/referrals/${encodeURIComponent(id)}/accesses`)).accesses;
    replace(reads, [...list].sort((a, b) => b.at - a.at).slice(0, 20).map((r) => h("li", {}, nameTag(r.user), ` — ${when(r.at)}`)));
  } catch (err) {
    replace(reads, h("li", { class: "error" }, describe(err)));
  }
}

async function openDocument(appointment, attachment, button, error) {
  button.disabled = true;
  try {
    const { blob, name } = await rest.document(`/v1/referrals/${encodeURIComponent(appointment)}/documents/${encodeURIComponent(attachment)}`);
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: name || "document", class: "document-link" }, name || "document");
    button.replaceWith(link);
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    fail(error, err);
    button.disabled = false;
  }
}

// -- settings

const opened = new Map(); // a settings section's id -> open, kept across redraws
const drafts = new Map(); // a text field's id -> what is typed and not saved yet
const savedNotes = new Set(); // fields whose last save is acknowledged on screen

/** The attributes of a settings section that stays open (or closed) when redrawn. */
function kept(id, openByDefault = false) {
  return { class: "manage", id, open: opened.get(id) ?? openByDefault, ontoggle: (e) => opened.set(id, e.currentTarget.open) };
}

function settings(data, places, motives) {
  const out = h("section", { class: "agenda-settings", id: "agenda-settings" }, h("h2", {}, "Paramètres de l'agenda"));
  const error = errorLine("settings-error");
  const act = async (fn) => {
    error.classList.remove("shown");
    try {
      await fn();
      await load();
    } catch (err) {
      fail(error, err);
    }
  };
  // Visibility
  const visible = h("input", { type: "checkbox", id: "profile-visible", checked: data.visible,
    onchange: () => act(() => rest.call("PATCH", "/v1/directory/me", { visible: visible.checked })) });
  out.append(h("label", { class: "check" }, visible,
    h("span", {}, h("strong", {}, "Profil visible"), h("br"), h("small", { class: "hint" }, "Votre profil apparaît dans l'annuaire : vos confrères peuvent vous adresser des patients."))));
  // Required patient fields
  const extra = Object.keys(PATIENT_LABELS).filter((k) => !DEFAULT_REQUIRED.includes(k));
  const required = new Set(data.required_fields);
  out.append(h("details", kept("required-fields"), h("summary", {}, "Informations patient demandées"),
    h("p", { class: "hint" }, "Par défaut les informations obligatoires sont : nom, prénom, nom de naissance, date de naissance, téléphone. Vous pouvez en demander d'autres :"),
    extra.map((k) => h("label", { class: "check" }, h("input", { type: "checkbox", name: k, checked: required.has(k), onchange: (e) => {
      if (e.target.checked) required.add(k);
      else required.delete(k);
      act(() => rest.call("PATCH", "/v1/directory/me", { required_fields: [...required] }));
    } }), PATIENT_LABELS[k]))));
  // Instructions read by bookers before booking
  // What is typed survives a redraw (another setting saved meanwhile redraws the section)
  // until it is saved; then "Consigne enregistrée." says the server has it.
  const instructions = h("textarea", { id: "instructions", name: "instructions", rows: 3, maxlength: 1000,
    placeholder: "Par exemple : pour un rendez-vous URGENT, merci de passer par le secrétariat.",
    oninput: () => { drafts.set("instructions", instructions.value); savedNotes.delete("instructions"); } },
  drafts.get("instructions") ?? data.instructions ?? "");
  const saveInstructions = async () => {
    await rest.call("PATCH", "/v1/directory/me", { instructions: instructions.value });
    drafts.delete("instructions");
    savedNotes.add("instructions");
  };
  out.append(h("details", kept("instructions-settings", Boolean(data.instructions)),
    h("summary", {}, "À lire avant de prendre un rendez-vous"),
    h("p", { class: "hint" }, "Consigne affichée aux confrères et aux régulateurs du SAS avant qu'ils réservent ; ils doivent l'accepter."),
    instructions,
    h("button", { type: "button", id: "save-instructions", onclick: () => act(saveInstructions) }, "Enregistrer la consigne"),
    h("span", { id: "instructions-saved", class: "hint", role: "status" }, savedNotes.has("instructions") ? "Consigne enregistrée." : "")));
  // Places
  const placeForm = h("form", { id: "place-form", class: "inline-form", onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(placeForm);
    act(() => rest.call("POST", "/v1/agenda/places", Object.fromEntries([...f].map(([k, v]) => [k, String(v).trim()]))));
  } },
  h("input", { name: "name", placeholder: "Nom du lieu (Cabinet…)", required: true, "aria-label": "Nom du lieu" }),
  h("input", { name: "address", placeholder: "Adresse", required: true, "aria-label": "Adresse" }),
  h("input", { name: "postcode", placeholder: "Code postal", required: true, maxlength: 5, inputmode: "numeric", "aria-label": "Code postal" }),
  h("input", { name: "city", placeholder: "Ville", required: true, "aria-label": "Ville" }),
  h("button", { type: "submit" }, "Ajouter le lieu"));
  out.append(h("h3", {}, "Lieux de consultation"),
    h("ul", { class: "plain", id: "my-places" }, data.places.map((p) => h("li", {}, placeLine(p)))),
    placeForm);
  // Motives
  const motiveForm = h("form", { id: "motive-form", class: "inline-form", onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(motiveForm);
    act(() => rest.call("POST", "/v1/agenda/motives", { label: String(f.get("label")).trim(), duration_min: Number(f.get("duration_min")) }));
  } },
  h("input", { name: "label", placeholder: "Motif de consultation", required: true, "aria-label": "Motif de consultation" }),
  h("input", { name: "duration_min", type: "number", min: 5, max: 480, value: 20, "aria-label": "Durée (minutes)" }),
  h("button", { type: "submit" }, "Ajouter le motif"));
  const hasSnp = data.motives.some((m) => m.unscheduled_care);
  out.append(h("h3", {}, "Motifs de consultation"),
    h("ul", { class: "plain", id: "my-motives" }, data.motives.map((m) => h("li", {}, m.label, ` (${m.duration_min} min)`, m.unscheduled_care ? h("span", { class: "tag snp" }, "SAS") : null))),
    motiveForm,
    hasSnp ? "" : h("p", {}, h("button", { type: "button", id: "add-snp", onclick: () => act(() => rest.call("POST", "/v1/agenda/motives", { label: SNP, duration_min: 15 })) }, `Ajouter le motif « ${SNP} »`),
      h("small", { class: "hint" }, " : les créneaux qui le portent remontent sur la plateforme SAS, même fermés aux nouveaux patients.")));
  // Opening slots
  if (data.places.length && data.motives.length) out.append(...openSlotsForm(data, act));
  else out.append(h("p", { class: "hint" }, "Ajoutez un lieu et un motif pour ouvrir des créneaux."));
  out.append(error);
  return out;
}

function openSlotsForm(data, act) {
  const today = new Date();
  const iso = `${today.getFullYear()}-${String(today.getMonth() + 1).padStart(2, "0")}-${String(today.getDate()).padStart(2, "0")}`;
  const form = h("form", { id: "slots-form", class: "slots-form", onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const [y, m, d] = String(f.get("day")).split("-").map(Number);
    const [h1, m1] = String(f.get("start")).split(":").map(Number);
    const [h2, m2] = String(f.get("end")).split(":").map(Number);
    const step = Number(f.get("length")) * 60_000;
    const start = new Date(y, m - 1, d, h1, m1).getTime();
    const end = new Date(y, m - 1, d, h2, m2).getTime();
    const chosen = f.getAll("motives").map(String);
    const slots = [];
    for (let t = start; t + step <= end && slots.length < 500; t += step) {
      slots.push({ place: String(f.get("place")), starts_at: t, ends_at: t + step, motives: chosen,
        open_to_new_patients: f.get("open_to_new_patients") === "on", bookable_online: f.get("bookable_online") === "on" });
    }
    if (!slots.length || !chosen.length) return;
    act(() => rest.call("POST", "/v1/agenda/slots", { slots }));
  } },
  h("div", { class: "row3" },
    h("label", { class: "field" }, h("span", {}, "Jour"), h("input", { type: "date", name: "day", value: iso, required: true })),
    h("label", { class: "field" }, h("span", {}, "De"), h("input", { type: "time", name: "start", value: "09:00", required: true })),
    h("label", { class: "field" }, h("span", {}, "À"), h("input", { type: "time", name: "end", value: "12:00", required: true }))),
  h("div", { class: "row3" },
    h("label", { class: "field" }, h("span", {}, "Durée d'un créneau (min)"), h("input", { type: "number", name: "length", min: 5, max: 480, value: 30 })),
    h("label", { class: "field" }, h("span", {}, "Lieu"), h("select", { name: "place" }, data.places.map((p) => h("option", { value: p.id }, p.name))))),
  h("fieldset", { class: "choice" }, h("legend", {}, "Motifs proposés"),
    data.motives.map((m, i) => h("label", {}, h("input", { type: "checkbox", name: "motives", value: m.id, checked: i === 0 }), m.label))),
  h("label", { class: "check" }, h("input", { type: "checkbox", name: "open_to_new_patients", checked: true }), "Ouvert aux nouveaux patients"),
  h("label", { class: "check" }, h("input", { type: "checkbox", name: "bookable_online", checked: true }), "Réservable en ligne"),
  h("button", { type: "submit", class: "primary", id: "open-slots" }, "Ouvrir les créneaux"));
  return [h("h3", {}, "Ouvrir des créneaux"), form];
}

// A referral arrives while the agenda is open: shown at once, marked new.
on("appointment", (ev) => {
  if (!state?.main.isConnected) return;
  state.highlight.add(ev.room);
  agendaSeen();
  load();
});
