// A signed-in session: the profile, this device's keys from IndexedDB, the transport
// and the E2EE layer over it; the welcome decides between verification and messaging.
import { Client } from "./client.js";
import { E2EE, loadOrCreateKeys } from "./e2ee.js";
import { ApiError } from "./rest.js";
import * as store from "./store.js";
import { app, names, rest } from "./state.js";
import { authScreen } from "./auth.js";
import { mainScreen, showStatus } from "./chat.js";
import { onEphemeral, onEvent, onKeysChanged, onMessage, onUndecryptable, renderRooms, upsertRoom } from "./rooms.js";
import { verificationScreen } from "./verify.js";

export async function start() {
  rest.token = app.session.token;
  try {
    app.profile = (await rest.me()).user;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      await store.del("session");
      authScreen("login", "Votre session a expiré : reconnectez-vous.");
      return;
    }
    throw err;
  }
  const keys = await loadOrCreateKeys(store, `keys:${app.session.deviceId}`);
  const saved = await store.get(`e2ee:${app.session.deviceId}`);
  Object.entries((await store.get("names")) || {}).forEach(([k, v]) => names.set(k, v));
  const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
  app.client = new Client(wsUrl, { token: app.session.token, deviceId: app.session.deviceId, userId: app.session.userId }, {
    onStatus: showStatus,
    onWelcome: (w) => onWelcome(w, keys),
    onItem: (item) => app.e2ee.onItem(item),
    onEphemeral,
    onToDevice: (f) => app.e2ee.onToDevice(f),
    onFatal: () => {
      store.del("session");
      authScreen("login", "Session refusée : reconnectez-vous.");
    },
  });
  app.e2ee = new E2EE(app.client, rest, keys, { onMessage, onUndecryptable, onEvent, onKeysChanged }, saved, (snap) =>
    store.put(`e2ee:${app.session.deviceId}`, snap),
  );
  mainScreen();
  await app.client.connect();
}

function onWelcome(welcome, keys) {
  app.profile.verified = welcome.verified;
  if (!welcome.verified) {
    verificationScreen();
    return;
  }
  app.client.uploadKeys(keys.bundle(app.session.userId, app.session.deviceId)).catch((err) => console.warn("keys.upload", err));
  // A verified practitioner has a directory profile (made on first use), so that
  // colleagues find them by name; it also tells our own title for the header.
  rest.call("GET", "/v1/directory/me").catch((err) => console.info("directory profile", err));
  if (!app.ui || app.ui.unverified) mainScreen();
  for (const info of welcome.rooms) upsertRoom(info);
  renderRooms();
}
