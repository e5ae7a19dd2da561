// A conversation's details: its name (renamed by its owner and admins), the case
// header, the members with presence and role (roles given and members removed by those
// allowed, SPEC.md §7), the pending e-mail invitations, inviting, leaving; this user's
// own preferences (notifications, pinned, archived, marked unread: synced to its other
// devices, SPEC.md §4.21); and the safety number of a direct conversation; a member's
// devices not signed by their identity key (cross-signing, SPEC.md §11.1) are marked
// "non vérifié".
import { formatSafetyNumber, utf8 } from "../crypto.js";
import { h, replace } from "../dom.js";
import { describe } from "../i18n.js";
import { app, KIND_LABELS, notice, on, ROLE_LABELS, rooms } from "../state.js";
import { cardOf, initials, nameOf } from "../profiles.js";
import { describeRoom, otherOf, setRoomSettings } from "../rooms.js";
import { go } from "../router.js";
import { avatar, confirmDialog, dialog, errorLine, fail, presenceDot, verifiedBadge } from "../widgets.js";
import { roomName, roomTitle } from "./messaging.js";
import { emailAdder, peoplePicker } from "./people-picker.js";
import { showProfile } from "./profile-card.js";
import { filesOf, filesSection } from "./files.js";

const ROLE_ORDER = { owner: 0, admin: 1, member: 2 };

export function roomDetails(id) {
  const body = h("div", { class: "details" });
  const error = errorLine("details-error");
  const d = dialog("Infos de la conversation", body, error);
  d.id = "room-details";
  let shown = null;
  const draw = (force = false) => {
    const room = rooms.get(id);
    if (!room) {
      d.close();
      return;
    }
    // Only what this dialog shows: a receipt or a message must not redraw it (and close
    // an open "Gérer" menu, or wipe a name being typed).
    const state = JSON.stringify([roomName(room), room.status, room.role, room.header ? room.header.slice(-16).join() : "",
      [...room.roles], [...room.online], room.invited, room.members, room.notify, room.pinned, room.archived,
      filesOf(room).map((f) => f.file.id), room.members.map((u) => app.e2ee.deviceCounts(u))]);
    if (!force && state === shown) return;
    shown = state;
    replace(body, detailsOf(room, error, d));
  };
  const stop = on("room", (changed) => changed === id && d.open && draw());
  const stopProfiles = on("profiles", () => d.open && draw(true));
  d.addEventListener("close", () => {
    stop();
    stopProfiles();
  });
  draw();
  describeRoom(id); // fresh roles, presence and invitations
  // The members' devices as the key directory gives them now: which are verified.
  const room = rooms.get(id);
  if (room) app.e2ee.devicesOf(room.members, true).then(() => d.open && draw()).catch((err) => console.info("devices", err));
}

function detailsOf(room, error, d) {
  const me = app.session.userId;
  const admin = room.role === "owner" || room.role === "admin";
  const direct = room.kind === "direct";
  const act = async (fn, done) => {
    error.textContent = "";
    try {
      await fn();
      if (done) notice(done);
      describeRoom(room.id);
    } catch (err) {
      fail(error, err);
    }
  };
  const members = [...room.members].sort((a, b) =>
    (ROLE_ORDER[room.roles.get(a)] ?? 3) - (ROLE_ORDER[room.roles.get(b)] ?? 3) || nameOf(a).localeCompare(nameOf(b), "fr"));
  return [
    h("p", { class: "details-kind" }, KIND_LABELS[room.kind], room.status === "closed" ? " — clos (lecture seule)" : ""),
    direct ? null : renameForm(room, admin, act),
    room.kind === "patient_case" ? caseHeaderForm(room, admin, act) : null,
    preferences(room, error, d),
    filesSection(room),
    h("h3", {}, `Membres (${room.members.length})`),
    h("ul", { class: "member-list", id: "member-list" }, members.map((user) => memberRow(room, user, act))),
    room.invited.length
      ? [h("h3", {}, "Invités par e-mail (en attente d'inscription)"),
        h("ul", { class: "member-list", id: "invited-list" }, room.invited.map((i) =>
          h("li", { class: "member", dataset: { email: i.email } },
            avatar("@"), h("span", { class: "member-name" }, i.email, h("small", {}, ` invité(e) par ${nameOf(i.by)}`)),
            admin ? h("button", { type: "button", class: "small", onclick: () => act(() => app.client.uninvite(room.id, i.email), "Invitation annulée.") }, "Annuler l'invitation") : null)))]
      : null,
    h("div", { class: "actions column" },
      !direct && admin && room.status !== "closed"
        ? h("button", { type: "button", id: "invite", class: "primary", onclick: () => inviteDialog(room) }, "Inviter un confrère")
        : null,
      direct ? h("button", { type: "button", onclick: () => safetyDialog(room) }, "Vérifier la sécurité") : null,
      direct ? null : h("button", { type: "button", class: "danger", id: "leave", onclick: async () => {
        const others = room.members.filter((u) => u !== me).length;
        if (room.role === "owner" && others) {
          error.textContent = "Vous êtes propriétaire de cette conversation : transférez d'abord la propriété à un autre membre (bouton « Gérer » à côté de son nom).";
          return;
        }
        if (await confirmDialog("Quitter la conversation", `Vous ne recevrez plus les messages de « ${roomTitle(room)} ».`, "Quitter")) {
          await act(() => app.client.leave(room.id));
          d.close();
        }
      } }, "Quitter la conversation")),
  ];
}

const NOTIFY_CHOICES = [["all", "Toutes"], ["mentions", "Mentions uniquement (sourdine)"], ["none", "Aucune"]];

/** This user's own settings of the conversation, on all of its devices. */
function preferences(room, error, d) {
  const set = async (fields, done) => {
    error.textContent = "";
    try {
      await setRoomSettings(room, fields);
      if (done) notice(done);
    } catch (err) {
      fail(error, err);
    }
  };
  const select = h("select", { id: "notify-setting", name: "notify", onchange: (e) => set({ notify: e.target.value }, "Notifications de la conversation modifiées.") },
    NOTIFY_CHOICES.map(([value, label]) => h("option", { value, selected: room.notify === value }, label)));
  return h("section", { class: "preferences", id: "room-preferences", "aria-label": "Mes préférences" },
    h("h3", {}, "Mes préférences"),
    h("label", { class: "field" }, h("span", {}, "Notifications"), select),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "pin-room", onclick: () => set({ pinned: !room.pinned }) },
        room.pinned ? "Désépingler" : "Épingler en haut de la liste"),
      h("button", { type: "button", id: "archive-room", onclick: () => set({ archived: !room.archived }, room.archived ? "Conversation désarchivée." : "Conversation archivée.") },
        room.archived ? "Désarchiver" : "Archiver"),
      h("button", { type: "button", id: "mark-unread", onclick: async () => {
        await set({ unread: true });
        d.close();
        go("/"); // back to the list, where it shows as unread
      } }, "Marquer comme non lu")));
}

function renameForm(room, admin, act) {
  if (!admin) return h("h3", { class: "details-name" }, roomTitle(room));
  const current = roomName(room) || "";
  const input = h("input", { name: "name", value: current, maxlength: 200, required: true, placeholder: "Nom de la conversation", "aria-label": "Nom de la conversation" });
  return h("form", { id: "rename-form", class: "inline", onsubmit: (e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (name && name !== current) act(() => app.e2ee.setName(room.id, name), "Conversation renommée.");
  } }, input, h("button", { type: "submit" }, "Renommer"));
}

function caseHeaderForm(room, admin, act) {
  const plain = room.header ? app.e2ee.decryptHeader(room.id, room.header) : "";
  if (!admin || room.status === "closed") return h("p", { class: "case-header" }, plain || "Pas d'en-tête");
  const text = h("textarea", { name: "header", rows: 3, "aria-label": "En-tête du cas patient (chiffré)" }, plain || "");
  return h("form", { id: "case-header-form", onsubmit: (e) => {
    e.preventDefault();
    const value = text.value.trim();
    if (value) act(() => app.e2ee.setHeader(room.id, utf8(value)), "En-tête mis à jour.");
  } }, h("label", { class: "field" }, h("span", {}, "Patient (chiffré de bout en bout)"), text), h("button", { type: "submit" }, "Mettre à jour l'en-tête"));
}

function memberRow(room, user, act) {
  const me = app.session.userId;
  const role = room.roles.get(user) || "member";
  const card = cardOf(user);
  const owner = room.role === "owner";
  const manage = [];
  if (user !== me && room.kind !== "direct") {
    if (owner && role === "member") manage.push(["Nommer administrateur", () => app.client.setRole(room.id, user, "admin")]);
    if (owner && role === "admin") manage.push(["Retirer le rôle d'administrateur", () => app.client.setRole(room.id, user, "member")]);
    if (owner && role !== "owner") manage.push(["Transférer la propriété", () => app.client.setRole(room.id, user, "owner"), "Vous deviendrez administrateur."]);
    if (role !== "owner" && (owner || (room.role === "admin" && role === "member"))) {
      manage.push(["Retirer de la conversation", () => app.client.remove(room.id, user), "Ce confrère ne recevra plus les messages de la conversation."]);
    }
  }
  return h("li", { class: "member", dataset: { user, role } },
    h("span", { class: "avatar-wrap" }, avatar(initials(user)), presenceDot(room.online.has(user))),
    h("button", { type: "button", class: "member-name", onclick: () => showProfile(user) },
      user === me ? `${nameOf(user)} (vous)` : nameOf(user), verifiedBadge(card?.verified),
      h("small", {}, card?.specialty ? ` ${card.specialty}` : "")),
    unverifiedDevices(user),
    room.kind === "direct" ? null : h("span", { class: `role role-${role}` }, ROLE_LABELS[role]),
    manage.length
      ? h("details", { class: "manage" }, h("summary", {}, "Gérer"),
        h("div", { class: "manage-actions" }, manage.map(([label, fn, warning]) =>
          h("button", { type: "button", class: label.startsWith("Retirer de") ? "danger small" : "small", onclick: async () => {
            if (warning && !(await confirmDialog(label, `${nameOf(user)} — ${warning}`, label))) return;
            act(fn);
          } }, label))))
      : null);
}

/** "non vérifié": devices of `user` that their identity key has not signed (a device
 * not approved from another of theirs, or keys replaced by someone else). */
function unverifiedDevices(user) {
  const { unverified } = app.e2ee.deviceCounts(user);
  if (!unverified) return null;
  return h("span", {
    class: "device-unverified",
    title: "Cet appareil n'a pas été approuvé depuis un autre appareil de ce confrère : vérifiez avec lui avant d'échanger des données de patients.",
  }, unverified === 1 ? "1 appareil non vérifié" : `${unverified} appareils non vérifiés`);
}

export async function setCaseStatus(room, status) {
  try {
    await app.client.updateRoom(room.id, { status });
  } catch (err) {
    notice(describe(err), "error");
  }
}

export function inviteDialog(room) {
  const error = errorLine("invite-error");
  const picker = peoplePicker(async (id, label) => {
    try {
      const ack = await app.client.invite(room.id, [id]);
      await app.e2ee.afterInvite(room, ack.seq);
      error.textContent = `${label} a rejoint la conversation.`;
      describeRoom(room.id);
    } catch (err) {
      fail(error, err);
    }
  });
  const adder = emailAdder(async (email) => {
    try {
      const ack = await app.client.invite(room.id, [], [email]);
      await app.e2ee.afterInvite(room, ack.seq);
      error.textContent = `Invitation envoyée à ${email}.`;
      describeRoom(room.id);
    } catch (err) {
      fail(error, err);
    }
  });
  const d = dialog("Inviter dans la conversation",
    h("h3", {}, "Un confrère inscrit"), picker,
    h("h3", {}, "Un confrère pas encore inscrit"),
    h("p", { class: "hint" }, "Il recevra un e-mail lui indiquant qu'un message l'attend, et passera automatiquement d'invité à membre dès son compte créé."),
    adder, error);
  d.id = "invite-dialog";
}

export async function safetyDialog(room) {
  const other = otherOf(room);
  const number = h("p", { class: "safety", id: "safety-number" }, "Calcul…");
  dialog("Numéro de sécurité",
    h("p", {}, `Comparez ce numéro avec ${nameOf(other)} (de vive voix ou en personne). S'il est identique des deux côtés, personne ne s'interpose dans vos échanges.`),
    number);
  const n = await app.e2ee.safetyNumberWith(other);
  number.textContent = n ? formatSafetyNumber(n) : "Aucune clé connue pour ce confrère.";
}
