// Confrère web, the entry point: libsodium first, then the saved session or log-in.
import { ready } from "./crypto.js";
import * as store from "./store.js";
import { app } from "./state.js";
import { authScreen } from "./auth.js";
import { start } from "./session.js";

async function boot() {
  await ready();
  app.session = await store.get("session");
  if (app.session) {
    try {
      await start();
      return;
    } catch (err) {
      console.error(err);
    }
  }
  authScreen("login");
}

boot();
