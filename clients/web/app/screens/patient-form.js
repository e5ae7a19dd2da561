// The guide's booking form, shared by the referral and the SAS console: "Les
// informations du patient" in the guide's order, the message under its notice, the
// documents (PDF, JPG, PNG under 50 Mo). Required fields (the default five plus the
// practitioner's own) are marked and checked before sending; a 400 from the server
// names the fields at fault (`patient.phone`…), which are marked too.
import { h, replace, size } from "../dom.js";

export const PATIENT_LABELS = {
  civility: "Civilité",
  first_name: "Prénom du patient",
  last_name: "Nom du patient",
  birth_name: "Nom de naissance du patient",
  birth_date: "Date de naissance du patient",
  birth_place: "Lieu de naissance du patient",
  address: "Adresse du patient",
  postcode: "Code postal du patient",
  city: "Ville du patient",
  phone: "Téléphone du patient",
  email: "Email du patient",
  consulted_before: "Le patient a-t-il déjà consulté ce praticien ?",
};
export const CIVILITY = { madame: "Madame", monsieur: "Monsieur" };
const TYPES = { "application/pdf": "PDF", "image/jpeg": "JPG", "image/png": "PNG" };
const MAX_FILE = 50 * 1024 * 1024;
const MAX_FILES = 10;

/** How a patient field's value reads (detail of an appointment). */
export function patientValue(name, value) {
  if (name === "civility") return CIVILITY[value] || value;
  if (name === "consulted_before") return value ? "Oui" : "Non";
  if (name === "birth_date" && /^\d{4}-\d{2}-\d{2}$/.test(value)) return value.split("-").reverse().join("/");
  return String(value);
}

export function patientName(patient) {
  const civ = patient.civility === "madame" ? "Mme " : patient.civility === "monsieur" ? "M. " : "";
  return `${civ}${patient.first_name || ""} ${(patient.last_name || "").toUpperCase()}`.trim();
}

/**
 * The form's fields. `required`: the patient fields the practitioner requires;
 * `notice`: the warning above the message; `consultedQuestion`: the question's wording.
 * Returns {element, values() -> {patient, message, files} | null (marks what is
 * missing), markInvalid(names), reset()}.
 */
export function patientForm({ required, notice, consultedQuestion = PATIENT_LABELS.consulted_before }) {
  const need = new Set(required);
  const inputs = {};
  const problems = {};
  const label = (name, text = PATIENT_LABELS[name]) => h("span", {}, text, need.has(name) ? h("abbr", { title: "obligatoire", class: "required" }, " *") : null);
  const problem = (name) => (problems[name] = h("small", { class: "field-error", id: `patient-${name}-error` }));
  const text = (name, placeholder, extra = {}) => {
    inputs[name] = h("input", { name, id: `patient-${name}`, placeholder: placeholder ?? PATIENT_LABELS[name], autocomplete: "off", ...extra });
    return h("label", { class: "field" }, label(name), inputs[name], problem(name));
  };
  const radios = (name, options, legend) => h("fieldset", { class: "choice inline", id: `patient-${name}` },
    h("legend", {}, label(name, legend)),
    options.map(([value, text]) => h("label", {}, h("input", { type: "radio", name: `patient-${name}`, value }), text)), problem(name));
  const bornInFrance = h("input", { type: "checkbox", name: "born_in_france", checked: true, onchange: () => {
    inputs.birth_place.placeholder = bornInFrance.checked ? "Ville de naissance" : "Pays et ville de naissance";
  } });
  inputs.birth_place = h("input", { name: "birth_place", id: "patient-birth_place", placeholder: "Ville de naissance", autocomplete: "off" });
  const message = h("textarea", { name: "message", id: "referral-message", rows: 4, maxlength: 2000, placeholder: "Votre message..." });
  const files = [];
  const fileList = h("ul", { class: "plain file-list", id: "referral-files" });
  const fileError = h("p", { class: "error", role: "alert", id: "referral-files-error" });
  const picker = h("input", { type: "file", id: "referral-file-input", multiple: true, accept: ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png", class: "visually-hidden",
    onchange: () => { add(picker.files); picker.value = ""; } });
  function add(list) {
    fileError.textContent = "";
    for (const f of list) {
      if (!TYPES[f.type]) fileError.textContent = `« ${f.name} » : seuls les fichiers .pdf, .jpg, .jpeg et .png sont acceptés.`;
      else if (f.size > MAX_FILE || f.size === 0) fileError.textContent = `« ${f.name} » : les fichiers doivent être de moins de 50 Mo.`;
      else if (files.length >= MAX_FILES) fileError.textContent = `${MAX_FILES} fichiers au plus.`;
      else files.push(f);
    }
    renderFiles();
  }
  function renderFiles() {
    replace(fileList, files.map((f, i) => h("li", { class: "file" }, h("span", { class: "file-type" }, TYPES[f.type]), h("span", { class: "file-name" }, f.name), h("small", {}, size(f.size)),
      h("button", { type: "button", class: "chip-x", "aria-label": `Retirer ${f.name}`, onclick: () => { files.splice(i, 1); renderFiles(); } }, "×"))));
  }
  const drop = h("div", { class: "drop", id: "referral-drop",
    ondragover: (e) => { e.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (e) => { e.preventDefault(); drop.classList.remove("over"); add(e.dataTransfer.files); } },
  h("p", { class: "hint" }, "Les fichiers doivent être de moins de 50 Mo, au format .pdf, .jpg, .jpeg, .png"),
  h("p", {}, "Glisser-déposer un ou plusieurs fichiers ou ", h("button", { type: "button", class: "link", id: "browse-files", onclick: () => picker.click() }, "Parcourir les fichiers")),
  picker);

  const element = h("div", { class: "patient-form", oninput: (e) => {
    const name = e.target.id?.replace(/^patient-/, "") || e.target.name?.replace(/^patient-/, "");
    if (problems[name]) problems[name].textContent = "";
  } },
    h("h3", {}, "Les informations du patient"),
    radios("civility", Object.entries(CIVILITY), PATIENT_LABELS.civility),
    h("div", { class: "row2" }, text("first_name"), text("last_name")),
    text("birth_name"),
    h("div", { class: "row2" }, text("birth_date", "jj/mm/aaaa", { inputmode: "numeric", maxlength: 10 }),
      h("div", { class: "field" }, label("birth_place"),
        h("label", { class: "check inline" }, bornInFrance, "Né(e) en France"), inputs.birth_place, problem("birth_place"))),
    text("address"),
    h("div", { class: "row2" }, text("postcode", null, { inputmode: "numeric", maxlength: 5 }), text("city")),
    h("label", { class: "field" }, label("phone"), h("small", { class: "hint" }, "Téléphone portable (si non fixe)"),
      (inputs.phone = h("input", { name: "phone", id: "patient-phone", type: "tel", placeholder: PATIENT_LABELS.phone, autocomplete: "off" })),
      h("small", { class: "hint" }, "Un numéro de téléphone valide est nécessaire afin que l'établissement puisse contacter le patient en cas de changement lié au rendez-vous."),
      problem("phone")),
    text("email", null, { type: "email" }),
    radios("consulted_before", [["true", "Oui"], ["false", "Non"]], consultedQuestion),
    h("h3", {}, "Message à destination du praticien"),
    h("p", { class: "banner warn notice-text", id: "message-notice" }, "▲ ", notice),
    message,
    drop, fileList, fileError);

  function radio(name) {
    return element.querySelector(`input[name=patient-${name}]:checked`)?.value ?? null;
  }
  function mark(name, text) {
    if (!problems[name]) return;
    problems[name].textContent = text;
    (inputs[name] || element.querySelector(`#patient-${name}`))?.setAttribute("aria-invalid", "true");
  }
  function clear() {
    for (const [name, el] of Object.entries(problems)) {
      el.textContent = "";
      (inputs[name] || element.querySelector(`#patient-${name}`))?.removeAttribute("aria-invalid");
    }
  }
  return {
    element,
    values() {
      clear();
      const patient = {};
      for (const [name, input] of Object.entries(inputs)) if (input.value.trim()) patient[name] = input.value.trim();
      const civility = radio("civility");
      if (civility) patient.civility = civility;
      const consulted = radio("consulted_before");
      if (consulted) patient.consulted_before = consulted === "true";
      const missing = [...need].filter((name) => patient[name] === undefined);
      for (const name of missing) mark(name, "Ce champ est obligatoire.");
      if (missing.length) {
        (inputs[missing[0]] || element.querySelector(`#patient-${missing[0]}`))?.focus?.();
        return null;
      }
      return { patient, message: message.value.trim(), files: [...files] };
    },
    /** The server named these fields (`patient.phone`…): mark them. */
    markInvalid(names) {
      for (const name of names) mark(name, "Information manquante ou invalide : vérifiez-la.");
    },
  };
}

/** The practitioner's instructions ("À lire avant de prendre un rendez-vous"): `body`
 * (the form, hidden meanwhile) shows once they are accepted. */
export function instructionsGate(text, body) {
  body.hidden = true;
  return h("div", { class: "banner warn", id: "booking-instructions" },
    h("h3", {}, "À lire avant de prendre un rendez-vous"),
    h("p", { class: "message" }, text),
    h("button", { type: "button", class: "primary", id: "accept-instructions", onclick: (e) => {
      body.hidden = false;
      e.currentTarget.replaceWith(h("p", { class: "hint" }, "✔ Consigne lue et acceptée."));
    } }, "J'AI LU ET J'ACCEPTE LA CONSIGNE"));
}
