// The main screen: header with the connection state, room list, chat view, sending
// text and encrypted files, downloads.
import { h, replace } from "./dom.js";
import { app, describe, notice, root } from "./state.js";
import { logOut } from "./auth.js";
import { newConversationDialog } from "./dialogs.js";
import { renderRooms } from "./rooms.js";
import { verificationPoll } from "./verify.js";

const TYPING_IDLE_MS = 3000; // after this long without a keystroke, "stopped typing"

// -- main screen

export function mainScreen() {
  clearInterval(verificationPoll);
  const status = h("span", { id: "connection", class: "connection", dataset: { state: app.client?.status || "connecting" } });
  const list = h("ul", { id: "room-list", class: "rooms" });
  const chat = h("section", { id: "chat", class: "chat" }, h("p", { class: "empty" }, "Choisissez une conversation ou créez-en une."));
  app.ui = { status, list, chat };
  replace(
    root,
    h(
      "div",
      { class: "layout" },
      h(
        "header",
        { class: "top" },
        h("strong", { class: "brand" }, "Confrère"),
        status,
        h("span", { class: "me" }, `${app.profile.first_name} ${app.profile.last_name}`,
          h("span", { class: "badge-verified", title: "Identité vérifiée" }, "✔ vérifié")),
        h("button", { onclick: logOut, id: "logout" }, "Se déconnecter"),
      ),
      h("nav", { class: "side" }, h("button", { id: "new-conversation", class: "primary", onclick: newConversationDialog }, "+ Nouvelle conversation"), list),
      chat,
    ),
  );
  showStatus(app.client?.status || "connecting");
  renderRooms();
}

export function showStatus(state) {
  if (!app.ui?.status) return;
  const text = { online: "Connecté", connecting: "Connexion…", offline: "Hors ligne — reconnexion automatique…", closed: "Déconnecté" };
  app.ui.status.dataset.state = state;
  app.ui.status.textContent = text[state] || state;
}

// -- sending

export let typingOn = false;
export let typingTimer = null;

export function onTyping() {
  if (!app.current) return;
  const room = app.current;
  if (!typingOn) {
    typingOn = true;
    app.client.typing(room, true).catch(() => {});
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => stopTyping(room), TYPING_IDLE_MS);
}

export function stopTyping(room) {
  clearTimeout(typingTimer);
  if (typingOn) {
    typingOn = false;
    app.client.typing(room, false).catch(() => {});
  }
}

export function onComposerKey(e) {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    e.target.form.requestSubmit();
  }
}

export async function onSend(event) {
  event.preventDefault();
  const text = app.ui.room.text.value.trim();
  if (!text || !app.current) return;
  const room = app.current;
  app.ui.room.text.value = "";
  stopTyping(room);
  try {
    await app.e2ee.sendText(room, text);
  } catch (err) {
    app.ui.room.text.value = text;
    notice(describe(err), "error");
  }
}

export async function onFile(event, progress) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file || !app.current) return;
  const room = app.current;
  progress.hidden = false;
  progress.value = 0;
  try {
    const data = new Uint8Array(await file.arrayBuffer());
    await app.e2ee.sendFile(room, data, file.name, app.ui.room.text.value.trim(), (f) => (progress.value = f));
    app.ui.room.text.value = "";
  } catch (err) {
    notice(describe(err), "error");
  } finally {
    progress.hidden = true;
  }
}

export async function download(ref, button) {
  const label = button.textContent;
  button.disabled = true;
  try {
    const data = await app.e2ee.fetchFile(ref, (f) => (button.textContent = `${Math.round(f * 100)} %`));
    const url = URL.createObjectURL(new Blob([data], { type: ref.type }));
    const a = h("a", { href: url, download: ref.name || "fichier" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    notice(describe(err), "error");
  } finally {
    button.textContent = label;
    button.disabled = false;
  }
}
