// Adressage (the guide's "Prendre rendez-vous en ligne chez un confrère"):
// /adressage searches the directory with "Qui ?" (name, specialty, organisation, CPTS)
// and "Où ?" (postcode, city, around me), pages of results, the favourite
// correspondents first (added and removed in one click), and the referrals sent with
// their status; /adressage/:profile is the colleague's card (places, motives, next
// slots by day), the slot picker, the patient form, and the confirmation.
import { h, replace } from "../dom.js";
import { describe } from "../i18n.js";
import { rest } from "../state.js";
import { nameTag } from "../profiles.js";
import { go } from "../router.js";
import { errorLine, fail, verifiedBadge } from "../widgets.js";
import { page } from "./shell.js";
import { instructionsGate, patientForm, patientName } from "./patient-form.js";

const DAY_MS = 86_400_000;
const DAY = new Intl.DateTimeFormat("fr-FR", { weekday: "long", day: "numeric", month: "long" });
const TIME = new Intl.DateTimeFormat("fr-FR", { hour: "2-digit", minute: "2-digit" });
const FULL = new Intl.DateTimeFormat("fr-FR", { weekday: "long", day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit" });

export function fullTitle(p) {
  return [p.title || "Dr", p.first_name, p.last_name].filter(Boolean).join(" ");
}

/** "Cabinet, 4c Rue d'Auby, 59128 Flers-en-Escrebieux" (without the parts missing). */
export function placeLine(p) {
  return p ? [p.name, p.address, `${p.postcode} ${p.city}`].filter((x) => x && x.trim()).join(", ") : "";
}

export function dayLabel(ts) {
  const s = DAY.format(new Date(ts));
  return s[0].toUpperCase() + s.slice(1);
}

export function timeLabel(ts) {
  return TIME.format(new Date(ts));
}

export function fullDate(ts) {
  return FULL.format(new Date(ts));
}

/** Slots by day: [[day label, [slot…]]…], in time order. */
export function byDay(slots) {
  const days = new Map();
  for (const s of [...slots].sort((a, b) => a.starts_at - b.starts_at)) {
    const key = dayLabel(s.starts_at);
    if (!days.has(key)) days.set(key, []);
    days.get(key).push(s);
  }
  return [...days];
}

export function referralView({ params, query }) {
  if (params.profile) bookingPage(params.profile);
  else searchPage(query);
}

// -- search

let favourites = new Set(); // profile ids

function hitRow(hit, { onChange } = {}) {
  const fav = favourites.has(hit.id);
  const orgs = (hit.organisations || []).map((o) => o.name).join(", ");
  const star = h("button", {
    type: "button", class: `star ${fav ? "on" : ""}`, dataset: { testid: "favourite" },
    "aria-pressed": String(fav), title: fav ? "Retirer des favoris" : "Ajouter aux favoris",
    "aria-label": fav ? `Retirer ${fullTitle(hit)} des favoris` : `Ajouter ${fullTitle(hit)} aux favoris`,
    onclick: async () => {
      star.disabled = true;
      try {
        if (favourites.has(hit.id)) {
          await rest.call("DELETE", `/v1/directory/favourites/${encodeURIComponent(hit.id)}`);
          favourites.delete(hit.id);
        } else {
          await rest.call("PUT", `/v1/directory/favourites/${encodeURIComponent(hit.id)}`);
          favourites.add(hit.id);
        }
        onChange?.();
      } catch (err) {
        star.title = describe(err);
      } finally {
        star.disabled = false;
      }
    },
  }, fav ? "★" : "☆");
  return h("li", { class: "hit", dataset: { profile: hit.id, testid: "hit" } },
    h("a", { class: "hit-main", href: `/adressage/${hit.id}`, onclick: (e) => { e.preventDefault(); go(`/adressage/${hit.id}`); } },
      h("strong", { class: "hit-name" }, fullTitle(hit), verifiedBadge(hit.verified)),
      h("span", { class: "hit-specialty" }, hit.specialty),
      h("small", {}, [`${hit.postcode} ${hit.city}`, orgs, hit.distance_km != null ? `${hit.distance_km.toFixed(1).replace(".", ",")} km` : null].filter(Boolean).join(" · "))),
    star,
    h("button", { type: "button", class: "primary book", onclick: () => go(`/adressage/${hit.id}`) }, "Prendre rendez-vous"));
}

function searchPage(query) {
  const q = h("input", { name: "q", id: "who", type: "search", value: query.q || "", placeholder: "Nom, spécialité, établissement, CPTS…", autocomplete: "off" });
  const near = h("input", { name: "near", id: "where", type: "search", value: query.near || "", placeholder: query.lat ? "Autour de moi" : "Code postal ou ville", autocomplete: "off" });
  let point = query.lat && query.lon ? { lat: query.lat, lon: query.lon } : null;
  const error = errorLine("search-error");
  const favList = h("ul", { class: "hits", id: "favourites" });
  const results = h("ul", { class: "hits", id: "results" });
  const more = h("button", { type: "button", id: "more-results", hidden: true }, "Afficher plus de résultats");
  const sent = h("ul", { class: "plain sent", id: "sent-referrals" });
  const noPosition = () => {
    error.textContent = "Position indisponible : autorisez la localisation dans votre navigateur, ou saisissez un code postal ou une ville.";
    error.classList.add("shown");
  };
  const aroundMe = h("button", { type: "button", id: "around-me", class: "ghost", onclick: () => {
    if (!navigator.geolocation) return noPosition();
    navigator.geolocation.getCurrentPosition((pos) => {
      point = { lat: pos.coords.latitude.toFixed(5), lon: pos.coords.longitude.toFixed(5) };
      near.value = "";
      near.placeholder = "Autour de moi";
      search();
    }, noPosition, { timeout: 10000 });
  } }, "Autour de moi");
  let cursor = null;
  let shown = [];

  async function loadFavourites() {
    try {
      const list = (await rest.call("GET", "/v1/directory/favourites")).favourites;
      favourites = new Set(list.map((f) => f.id));
      replace(favList, list.length ? list.map((f) => hitRow(f, { onChange: refresh })) : h("li", { class: "empty" }, "Ajoutez un confrère à vos favoris avec l'étoile ☆ pour le retrouver ici."));
    } catch (err) {
      replace(favList, h("li", { class: "error" }, describe(err)));
    }
  }
  function refresh() {
    loadFavourites();
    renderResults();
  }
  function renderResults() {
    // The favourites first, as the guide shows them.
    const sorted = [...shown.filter((x) => favourites.has(x.id)), ...shown.filter((x) => !favourites.has(x.id))];
    replace(results, sorted.map((x) => hitRow(x, { onChange: refresh })));
  }
  async function search(next = false) {
    error.classList.remove("shown");
    error.textContent = "";
    const params = new URLSearchParams({ limit: "20" });
    if (q.value.trim()) params.set("q", q.value.trim());
    if (near.value.trim()) params.set("near", near.value.trim());
    else if (point) {
      params.set("lat", point.lat);
      params.set("lon", point.lon);
    }
    if (next && cursor) params.set("cursor", cursor);
    if (!params.has("q") && !params.has("near") && !params.has("lat")) {
      replace(results, h("li", { class: "empty" }, "Saisissez un nom, une spécialité, un établissement ou un lieu."));
      return;
    }
    if (!next) {
      const keep = new URLSearchParams();
      for (const k of ["q", "near", "lat", "lon"]) if (params.has(k)) keep.set(k, params.get(k));
      history.replaceState(history.state, "", `/adressage?${keep}`);
    }
    try {
      const page = await rest.call("GET", `/v1/directory/search?${params}`);
      shown = next ? [...shown, ...page.results] : page.results;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      renderResults();
      if (!shown.length) replace(results, h("li", { class: "empty" }, "Aucun praticien ne correspond à votre recherche."));
      if (page.corrected) results.prepend(h("li", { class: "hint", id: "corrected" }, `Résultats pour « ${page.corrected} »`));
    } catch (err) {
      fail(error, err);
    }
  }
  more.onclick = () => search(true);
  async function loadSent() {
    try {
      const list = (await rest.call("GET", "/v1/referrals")).referrals;
      const now = Date.now();
      replace(sent, list.length ? list.map((r) => h("li", { class: "sent-row", dataset: { appointment: r.id } },
        h("span", { class: `tag ${r.starts_at > now ? "ok" : ""}` }, r.starts_at > now ? "Confirmé, à venir" : "Passé"),
        h("strong", {}, patientName(r.patient)), " — ", fullDate(r.starts_at), " — ",
        r.practitioner_user ? nameTag(r.practitioner_user) : "", ` (${r.motive_label})`,
        r.attachments.length ? h("small", {}, ` · ${r.attachments.length} document(s)`) : null))
        : h("li", { class: "empty" }, "Vous n'avez encore adressé aucun patient."));
    } catch (err) {
      replace(sent, h("li", { class: "error" }, describe(err)));
    }
  }

  page("referral",
    h("h1", {}, "Prendre rendez-vous en ligne chez un confrère"),
    h("form", { class: "search-bar", id: "referral-search", onsubmit: (e) => { e.preventDefault(); cursor = null; search(); } },
      h("label", { class: "field" }, h("span", {}, "Qui ?"), q),
      h("label", { class: "field" }, h("span", {}, "Où ?"), near),
      h("div", { class: "search-actions" }, aroundMe, h("button", { type: "submit", class: "primary", id: "search-submit" }, "Rechercher"))),
    error,
    h("ol", { class: "how" },
      h("li", {}, "Trouvez un confrère avec notre moteur de recherche."),
      h("li", {}, "Prenez rendez-vous pour votre patient."),
      h("li", {}, "Le rendez-vous est confirmé. Votre patient sera prévenu par email et SMS.")),
    h("section", { "aria-labelledby": "results-title" }, h("h2", { id: "results-title", class: "visually-hidden" }, "Résultats"), results, more),
    h("section", {}, h("h2", {}, "Vos correspondants favoris"), favList),
    h("section", {}, h("h2", {}, "Mes adressages envoyés"), sent));
  loadFavourites().then(() => (query.q || query.near || query.lat ? search() : null));
  loadSent();
}

// -- a colleague's card, the slots, the form

async function bookingPage(profileId) {
  const main = page("booking", h("p", {}, "Chargement…"));
  let from = Date.now();
  let data;
  try {
    data = await availability(profileId, from);
  } catch (err) {
    replace(main, h("p", { class: "error shown" }, describe(err)), backLink());
    return;
  }
  const p = data.profile;
  const placeOf = (id) => data.places.find((x) => x.id === id);
  const motiveOf = (id) => data.motives.find((x) => x.id === id);
  const motive = h("select", { id: "motive", name: "motive" },
    h("option", { value: "" }, "Choisissez un motif"),
    data.motives.map((m) => h("option", { value: m.id }, m.label)));
  const place = h("select", { id: "place", name: "place" },
    h("option", { value: "" }, "Tous les lieux"),
    data.places.map((x) => h("option", { value: x.id }, x.name)));
  const slotsBox = h("div", { id: "slots", class: "days" });
  const step = h("section", { id: "booking-step" });
  const later = h("button", { type: "button", id: "later-slots" }, "Semaine suivante");
  const earlier = h("button", { type: "button", id: "earlier-slots" }, "Semaine précédente");

  function renderSlots() {
    const chosen = motive.value;
    const where = place.value;
    const free = data.slots.filter((s) => !s.booked && (!chosen || s.motives.includes(chosen)) && (!where || s.place === where));
    earlier.disabled = from <= Date.now();
    replace(slotsBox, free.length
      ? byDay(free).map(([day, list]) => h("div", { class: "day" }, h("h4", {}, day),
        h("div", { class: "slot-buttons" }, list.map((s) => h("button", {
          type: "button", class: "slot", dataset: { slot: s.id, testid: "slot" },
          title: placeOf(s.place)?.name || "", onclick: () => pick(s),
        }, timeLabel(s.starts_at))))))
      : h("p", { class: "empty" }, "Aucun créneau disponible cette semaine."));
  }
  async function moveTo(start) {
    from = Math.max(Date.now(), start);
    try {
      data = { ...data, ...(await availability(profileId, from)) };
    } catch (err) {
      replace(slotsBox, h("p", { class: "error shown" }, describe(err)));
      return;
    }
    renderSlots();
  }
  later.onclick = () => moveTo(from + 7 * DAY_MS);
  earlier.onclick = () => moveTo(from - 7 * DAY_MS);
  motive.onchange = renderSlots;
  place.onchange = renderSlots;

  function pick(slot) {
    const motiveId = motive.value && slot.motives.includes(motive.value) ? motive.value : slot.motives[0];
    const form = patientForm({ required: data.required_fields, notice: data.message_notice });
    const error = errorLine("booking-error");
    const confirm = h("button", { type: "submit", class: "primary wide", id: "confirm-booking" }, "CONFIRMER LE RENDEZ-VOUS");
    const where = placeOf(slot.place);
    const body = h("div", {}, form.element, error, confirm);
    const gate = data.instructions ? instructionsGate(data.instructions, body) : null;
    const motiveChoice = h("select", { id: "booking-motive" }, slot.motives.map((id) => h("option", { value: id, selected: id === motiveId }, motiveOf(id)?.label || id)));
    replace(step,
      h("form", { id: "booking-form", class: "booking", novalidate: true, onsubmit: async (e) => {
        e.preventDefault();
        const values = form.values();
        if (!values) return;
        confirm.disabled = true;
        error.classList.remove("shown");
        try {
          const ids = [];
          for (const f of values.files) ids.push((await rest.uploadDocument(f)).id);
          const done = (await rest.call("POST", "/v1/referrals", {
            slot: slot.id, motive: motiveChoice.value, patient: values.patient, message: values.message, attachments: ids,
          })).appointment;
          confirmation(done, where, values.files.length);
        } catch (err) {
          if (err.reason === "slot_taken") {
            fail(error, err); // "Ce créneau vient d'être réservé par quelqu'un d'autre…"
            data.slots = data.slots.filter((s) => s.id !== slot.id);
            renderSlots();
          } else {
            fail(error, err);
            if (err.field === "patient") form.markInvalid([...err.message.matchAll(/patient\.(\w+)/g)].map((m) => m[1]));
          }
        } finally {
          confirm.disabled = false;
        }
      } },
      h("div", { class: "banner warn" }, "Votre rendez-vous n'est pas encore confirmé."),
      h("p", { class: "chosen", id: "chosen-slot" }, h("strong", {}, fullDate(slot.starts_at)),
        where ? ` — ${placeLine(where)}` : ""),
      h("label", { class: "field" }, h("span", {}, "Motif de consultation"), motiveChoice),
      gate, body));
    step.scrollIntoView({ block: "start" });
    step.querySelector("input")?.focus({ preventScroll: true });
  }

  function confirmation(appointment, where, documents) {
    replace(main,
      h("section", { id: "booking-confirmed", class: "confirmed" },
        h("h1", {}, "Le rendez-vous est confirmé"),
        h("p", {}, "Votre patient sera prévenu par email et SMS. Le rendez-vous apparaît dans l'agenda du praticien."),
        h("dl", { class: "summary" },
          h("dt", {}, "Patient"), h("dd", {}, patientName(appointment.patient)),
          h("dt", {}, "Praticien"), h("dd", {}, fullTitle(p), ` — ${p.specialty}`),
          h("dt", {}, "Date"), h("dd", {}, fullDate(appointment.starts_at)),
          h("dt", {}, "Lieu"), h("dd", {}, placeLine(where)),
          h("dt", {}, "Motif"), h("dd", {}, appointment.motive_label),
          h("dt", {}, "Documents"), h("dd", {}, documents ? `${documents} document(s) joint(s)` : "Aucun")),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "primary", id: "new-referral", onclick: () => go("/adressage") }, "Adresser un autre patient"))));
  }

  replace(main,
    backLink(),
    h("section", { class: "practitioner", id: "practitioner-card" },
      h("h1", { id: "practitioner-name" }, fullTitle(p), verifiedBadge(p.verified)),
      h("p", { class: "profile-specialty" }, p.specialty),
      p.organisations.length ? h("p", { class: "hint" }, p.organisations.map((o) => o.name).join(", ")) : null,
      h("h2", {}, "Lieux de consultation"),
      h("ul", { class: "plain places", id: "places" }, data.places.map((x) =>
        h("li", {}, h("strong", {}, x.name), h("br"), [x.address, `${x.postcode} ${x.city}`].filter((t) => t.trim()).join(", "))))),
    h("section", { class: "slot-picker" },
      h("h2", {}, "Prendre rendez-vous en ligne"),
      h("div", { class: "row2" },
        h("label", { class: "field" }, h("span", {}, "Motif de consultation"), motive),
        data.places.length > 1 ? h("label", { class: "field" }, h("span", {}, "Lieu de consultation"), place) : h("span")),
      h("h3", {}, "Prochains créneaux disponibles"),
      slotsBox,
      h("div", { class: "actions" }, earlier, later)),
    step);
  renderSlots();
}

function backLink() {
  return h("p", {}, h("a", { href: "/adressage", id: "back-to-search", onclick: (e) => {
    e.preventDefault();
    history.length > 1 && history.state?.prev?.startsWith("/adressage") ? history.back() : go("/adressage");
  } }, "← Retour à la recherche"));
}

function availability(profileId, from) {
  return rest.call("GET", `/v1/directory/profiles/${encodeURIComponent(profileId)}/availability?from=${Math.floor(from)}&to=${Math.floor(from + 7 * DAY_MS)}`);
}
