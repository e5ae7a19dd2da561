// A conversation's files: each file of a message (type, name, size, "Télécharger"), an
// image shown as a thumbnail once downloaded and decrypted here, a PDF opened in the
// browser's own viewer ("Aperçu", a new tab on the decrypted bytes); the "Fichiers" list
// of a conversation's details; dropping files onto a conversation. Decrypted bytes live
// in this page only (blob: URLs), never in a cache, and no server route sees them.
import { h, size, when } from "../dom.js";
import { describe } from "../i18n.js";
import { app, emit, notice } from "../state.js";
import { whoIs } from "../profiles.js";
import { shownOf } from "../rooms.js";
import { dialog } from "../widgets.js";

const PREVIEW_MAX = 10 * 1024 * 1024; // images up to this size are shown without a click
const TYPE_LABELS = { "application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG" };

const previews = new Map(); // file id -> blob: URL of the decrypted image, or "failed"
const loading = new Set();

const isImage = (f) => f.type === "image/jpeg" || f.type === "image/png";

/** The decrypted file as a blob: URL (revoked after a minute unless kept). */
async function blobUrl(ref, onProgress) {
  const data = await app.e2ee.fetchFile(ref, onProgress);
  return URL.createObjectURL(new Blob([data], { type: ref.type }));
}

function loadPreview(ref, room) {
  if (loading.has(ref.id) || previews.has(ref.id)) return;
  loading.add(ref.id);
  blobUrl(ref)
    .then((url) => previews.set(ref.id, url))
    .catch((err) => {
      console.info("preview", err);
      previews.set(ref.id, "failed");
    })
    .finally(() => {
      loading.delete(ref.id);
      emit("room", room);
    });
}

/** One file of a message: its thumbnail (an image), its name and size, its actions. */
export function fileView(room, f) {
  const image = isImage(f);
  if (image && f.size <= PREVIEW_MAX) loadPreview(f, room);
  const url = previews.get(f.id);
  const thumb = image && url && url !== "failed"
    ? h("button", { type: "button", class: "thumb", title: "Agrandir", "aria-label": `Agrandir ${f.name || "l'image"}`, onclick: () => enlarge(f, url) },
      h("img", { src: url, alt: f.name || "image", dataset: { testid: "thumbnail" } }))
    : null;
  return h("div", { class: `file${thumb ? " with-thumb" : ""}`, dataset: { testid: "file", file: f.id } },
    thumb,
    h("span", { class: "file-type" }, TYPE_LABELS[f.type] || "?"),
    h("span", { class: "file-name" }, f.name || "fichier", h("small", {}, ` (${size(f.size)})`)),
    f.type === "application/pdf" ? h("button", { type: "button", class: "preview-pdf", onclick: (e) => openPdf(f, e.currentTarget) }, "Aperçu") : null,
    h("button", { type: "button", class: "download", onclick: (e) => download(f, e.currentTarget) }, "Télécharger"));
}

function enlarge(f, url) {
  const d = dialog(f.name || "Image", h("img", { class: "enlarged", src: url, alt: f.name || "image" }));
  d.id = "image-dialog";
}

/** While a file downloads, its button shows the progress; errors become a notice. */
async function withProgress(button, fn) {
  const label = button.textContent;
  button.disabled = true;
  try {
    await fn((f) => (button.textContent = `${Math.round(f * 100)} %`));
  } catch (err) {
    notice(describe(err), "error");
  } finally {
    button.textContent = label;
    button.disabled = false;
  }
}

/** "Aperçu": the decrypted PDF in a new tab, where the browser's viewer shows it. */
function openPdf(ref, button) {
  // The tab is opened now, within the click, so that no popup blocker stops it.
  const tab = window.open("", "_blank");
  return withProgress(button, async (onProgress) => {
    try {
      const url = await blobUrl(ref, onProgress);
      if (tab) tab.location.href = url;
      else window.open(url, "_blank");
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      tab?.close();
      throw err;
    }
  });
}

export function download(ref, button) {
  return withProgress(button, async (onProgress) => {
    const url = await blobUrl(ref, onProgress);
    const a = h("a", { href: url, download: ref.name || "fichier" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  });
}

/** Every file of a room's messages as this device has them, newest first. */
export function filesOf(room) {
  const out = [];
  const ordered = [...room.messages.values()].filter((m) => m.type === "msg").sort((a, b) => b.seq - a.seq);
  for (const m of ordered) for (const f of shownOf(room, m).files) out.push({ file: f, sender: m.sender, ts: m.ts, seq: m.seq });
  return out;
}

/** "Fichiers" in a conversation's details: name, size, sender, date, each downloadable. */
export function filesSection(room) {
  const files = filesOf(room);
  return [
    h("h3", {}, `Fichiers (${files.length})`),
    files.length
      ? h("ul", { class: "files-list", id: "files-list" }, files.map(({ file, sender, ts }) =>
        h("li", { class: "files-row", dataset: { testid: "files-row", file: file.id } },
          h("span", { class: "file-type" }, TYPE_LABELS[file.type] || "?"),
          h("span", { class: "file-name" }, file.name || "fichier",
            h("small", {}, ` · ${size(file.size)} · ${sender === app.session.userId ? "Vous" : whoIs(sender)} · ${when(ts)}`)),
          h("button", { type: "button", class: "download small", onclick: (e) => download(file, e.currentTarget) }, "Télécharger"))))
      : h("p", { class: "muted", id: "files-empty" }, "Aucun fichier dans cette conversation."),
  ];
}

/** Files dropped onto `target` go to `onFiles(File[])`; the target shows it welcomes them. */
export function acceptDrops(target, onFiles) {
  const carriesFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  let depth = 0;
  target.addEventListener("dragenter", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    depth++;
    target.classList.add("dropping");
  });
  target.addEventListener("dragover", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  target.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) target.classList.remove("dropping");
  });
  target.addEventListener("drop", (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    depth = 0;
    target.classList.remove("dropping");
    const files = [...e.dataTransfer.files];
    if (files.length) onFiles(files);
  });
}
