// Small pieces every screen uses: dialogs (full screen on a phone), form fields, the
// verified badge, presence dots, avatars with initials, the error line of a form.
import { h, icon } from "./dom.js";
import { describe } from "./i18n.js";

/** A modal dialog; closes with its button, Escape, or when the view changes. */
export function dialog(title, ...body) {
  const d = h("dialog", { class: "dialog", "aria-label": title },
    h("header", { class: "dialog-head" },
      h("h2", {}, title),
      h("button", { type: "button", class: "icon close", "aria-label": "Fermer", title: "Fermer", onclick: () => d.close() }, icon("close"))),
    h("div", { class: "dialog-body" }, ...body));
  d.addEventListener("close", () => d.remove());
  document.body.append(d);
  d.showModal();
  return d;
}

/** Ask before doing something that cannot be undone; resolves true or false. */
export function confirmDialog(title, text, action) {
  return new Promise((resolve) => {
    let answer = false;
    const d = dialog(title, h("p", {}, text),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => d.close() }, "Annuler"),
        h("button", { type: "button", class: "danger", id: "confirm", onclick: () => { answer = true; d.close(); } }, action)));
    d.addEventListener("close", () => resolve(answer));
  });
}

export function field(label, name, type = "text", extra = {}) {
  return h("label", { class: "field" }, h("span", {}, label),
    h("input", { name, type, autocomplete: "off", ...extra, required: extra.required ?? true }));
}

export function errorLine(id) {
  return h("p", { class: "error", role: "alert", id });
}

/** Show what went wrong, in French, in a form's error line. */
export function fail(line, err, options) {
  line.textContent = describe(err, options);
  line.classList.add("shown");
}

export function verifiedBadge(verified) {
  return verified
    ? h("span", { class: "badge verified", title: "Identité vérifiée", "aria-label": "identité vérifiée" }, "✔")
    : null;
}

export function presenceDot(online) {
  return h("span", { class: `presence ${online ? "online" : "offline"}`, title: online ? "En ligne" : "Hors ligne",
    "aria-label": online ? "en ligne" : "hors ligne", dataset: { testid: "presence" } });
}

export function avatar(text, kind = "") {
  return h("span", { class: `avatar ${kind}`, "aria-hidden": "true" }, text);
}
