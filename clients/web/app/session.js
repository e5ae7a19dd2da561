// A signed-in session: the account (GET /v1/me), this device's keys from IndexedDB,
// the transport and the end-to-end layer over it. The welcome says whether the
// identity is verified; the router's guard (main.js) sends an account that is not
// to /verification (as the server, which refuses messaging with identity_unverified).
import { Client } from "./client.js";
import { E2EE, loadIdentity, loadOrCreateKeys } from "./e2ee.js";
import { ApiError } from "./rest.js";
import * as store from "./store.js";
import { closeIndex, openIndex } from "./search.js";
import { forgetWelcomes, welcomed } from "./notify.js";
import { app, emit, rest, rooms } from "./state.js";
import { forgetProfiles, learn, loadProfiles } from "./profiles.js";
import { onDeleted, onEphemeral, onEvent, onKey, onKeysChanged, onMessage, onUndecryptable, updateTitle, upsertRoom } from "./rooms.js";
import { go } from "./router.js";
import { askApproval } from "./screens/link.js";

/** Whether the messaging may open: the identity is verified. (An account verified at
 * creation, by Pro Santé Connect or a regulator link, still confirms its address:
 * /verification asks for the code, the messaging reminds it.) */
export function ready() {
  return Boolean(app.profile?.verified);
}

/** At page load: the session kept in IndexedDB, if the server still knows it. */
export async function restore() {
  app.session = await store.get("session");
  if (!app.session) return false;
  try {
    await start();
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      await store.del("session");
      app.session = null;
      return false;
    }
    throw err;
  }
}

export async function start() {
  rest.token = app.session.token;
  try {
    const me = await rest.me();
    app.profile = me.user;
    app.roles = me.roles || [];
    await store.put("me", app.profile);
    await store.put("roles", app.roles);
  } catch (err) {
    // Offline (fetch's TypeError): start with the account as last seen; the transport
    // says "Hors ligne" and reconnects by itself.
    const last = await store.get("me");
    if (!(err instanceof TypeError) || last?.id !== app.session.userId) throw err;
    app.profile = last;
    app.roles = (await store.get("roles")) || [];
  }
  learn({ user: app.profile.id, title: "", ...app.profile });
  await loadProfiles();
  const keys = await loadOrCreateKeys(store, `keys:${app.session.deviceId}`);
  openIndex(app.session.deviceId);
  const saved = await store.get(`e2ee:${app.session.deviceId}`);
  const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
  app.client = new Client(wsUrl, { token: app.session.token, deviceId: app.session.deviceId, userId: app.session.userId }, {
    onStatus: (status) => emit("status", status),
    onWelcome: (w) => onWelcome(w),
    onItem: (item) => app.e2ee.onItem(item),
    // A booking in this practitioner's agenda is not a room's event (SPEC.md §5.6).
    onEphemeral: (ev) => (ev.kind === "appointment.booked" ? emit("appointment", ev) : onEphemeral(ev)),
    onToDevice: (f) => app.e2ee.onToDevice(f),
    onFatal: () => {
      store.del("session");
      app.session = null;
      go("/connexion?expiree=1", { replace: true });
    },
  });
  // Approving a new device signs it with the identity key, if this browser holds it.
  const onDeviceApproved = (bundle) => app.e2ee.signOwnDevice(bundle);
  // The identity secret is kept in IndexedDB (made here, or received with an approval
  // or from the key backup), forgotten when another device's won the race.
  const userId = app.session.userId;
  const keepIdentity = (identity) => (identity ? store.put(`identity:${userId}`, identity.toBytes()) : store.del(`identity:${userId}`));
  const handlers = { onMessage, onUndecryptable, onDeleted, onEvent, onKey, onKeysChanged, onLinkRequest: askApproval, onLinkAnswered, onDeviceApproved, keepIdentity };
  app.e2ee = new E2EE(app.client, rest, keys, handlers, saved, (snap) => store.put(`e2ee:${app.session.deviceId}`, snap));
  app.e2ee.identity = await loadIdentity(store, app.session.userId);
  // A browser that held keys before device approval existed is an approved device.
  app.link = (await store.get(`link:${app.session.deviceId}`)) || (saved?.inbound?.length ? "done" : null);
  app.client.connect().catch((err) => console.info("connect", err));
}

/** Adding a device (SPEC.md §11.7): a new browser of an account that has other devices
 * with keys, or a key backup, waits for its approval (/approbation) so that it reads
 * the history; the first device of an account has nothing to wait for. */
async function checkLink() {
  if (app.link) return;
  const others = await app.e2ee.ownDevices();
  const backup = others.length ? null : await app.e2ee.backupInfo();
  if (!others.length && !backup) {
    await setLink("done");
    return;
  }
  await setLink("pending");
  app.linkOthers = others.length;
  app.linkCode = others.length ? await app.e2ee.requestLink() : app.e2ee.linkCode();
  if (!others.length) app.e2ee.awaitingLink = true;
  emit("link");
  go("/approbation", { replace: true });
}

/** "pending" (waiting for an approval or the recovery phrase) or "done". */
export async function setLink(state) {
  app.link = state;
  await store.put(`link:${app.session.deviceId}`, state);
  if (state === "done" && app.e2ee.awaitingLink) await app.e2ee.stopWaiting();
  emit("link");
}

async function onLinkAnswered({ approved }) {
  if (approved) await setLink("done");
  emit("link-answered", { approved });
}

function onWelcome(welcome) {
  const was = ready();
  app.profile.verified = welcome.verified;
  if (welcome.verified) {
    // Published signed by the identity key if this browser holds it (cross-signing,
    // SPEC.md §11.1); the account's first device creates it.
    app.e2ee
      .publishKeys(app.e2ee.h.keepIdentity)
      .then(() => checkLink())
      .catch((err) => console.warn("keys.upload", err));
    // A verified practitioner has a directory profile (made on first use), so that
    // colleagues find them by name.
    rest.call("GET", "/v1/directory/me").catch((err) => console.info("directory profile", err));
  }
  for (const info of welcome.rooms) {
    welcomed(info);
    upsertRoom(info);
  }
  updateTitle();
  emit("welcome", { opened: !was && ready() });
  emit("rooms");
}

/** Log in with e-mail and password; the same browser keeps its device (and keys). */
export async function logIn(email, password) {
  email = email.trim().toLowerCase();
  const known = await store.get(`device:${email}`);
  let reply;
  try {
    reply = await rest.logIn(email, password, known && (await store.get(`keys:${known}`)) ? known : null);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === "not_found")) throw err;
    reply = await rest.logIn(email, password, null);
    // That device was revoked ("Mes appareils"): what it held goes, the identity secret
    // included, so this browser is a new device that must be approved again.
    for (const key of [`keys:${known}`, `e2ee:${known}`, `link:${known}`, `identity:${reply.user.id}`]) await store.del(key);
  }
  app.session = { token: reply.token, userId: reply.user.id, deviceId: reply.device_id, email };
  await store.put(`device:${email}`, reply.device_id);
  await store.put("session", app.session);
  await start();
}

export async function logOut() {
  try {
    await rest.logOut();
  } catch {
    // the session may be gone already
  }
  app.client?.close();
  Object.assign(app, { client: null, e2ee: null, session: null, profile: null, current: null, roles: [], arrived: [], link: null, linkCode: null });
  rest.token = null;
  rooms.clear();
  closeIndex();
  forgetWelcomes();
  updateTitle();
  // The device's keys stay (logging in again here reuses the device); names do not.
  await forgetProfiles();
  await store.del("me");
  await store.del("roles");
  await store.del("session");
}
