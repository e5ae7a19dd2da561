// Confrère web, the entry point: libsodium, the saved session, then the router.
// Each page (SPEC.md §9.3) has its view in screens/; the guard sends a visitor to
// /connexion, and an account not verified yet (or whose e-mail is not confirmed) to
// /verification, before the messaging.
import { ready as sodiumReady } from "./crypto.js";
import { app } from "./state.js";
import { ready, restore } from "./session.js";
import { guard, route, start } from "./router.js";
import { registerServiceWorker } from "./pwa.js";
import { loginView } from "./screens/login.js";
import { signUpView } from "./screens/signup.js";
import { verificationView } from "./screens/verification.js";
import { messagingView } from "./screens/messaging.js";
import { privacyView, termsView } from "./screens/legal.js";
import { referralView } from "./screens/referral.js";
import { agendaView } from "./screens/agenda.js";
import { reviewView } from "./screens/review.js";
import { sasView } from "./screens/sas.js";
import { adminView } from "./screens/admin.js";
import { passwordResetView } from "./screens/password-reset.js";
import { accountSecurityView } from "./screens/account-security.js";
import { linkView } from "./screens/link.js";

const PUBLIC = ["/connexion", "/inscription", "/signup", "/inscription-regulateur", "/conditions", "/confidentialite", "/mot-de-passe-oublie"];

route("/connexion", loginView);
route("/inscription", signUpView);
route("/signup", signUpView);
route("/inscription-regulateur", signUpView);
route("/verification", verificationView);
route("/conditions", termsView);
route("/confidentialite", privacyView);
route("/mot-de-passe-oublie", passwordResetView);
route("/compte/securite", accountSecurityView);
route("/approbation", linkView);
route("/", messagingView);
route("/conversations", messagingView);
route("/conversations/:room", messagingView);
route("/adressage", referralView);
route("/adressage/:profile", referralView);
route("/agenda", agendaView);
route("/sas", sasView);
route("/verifications", reviewView);
route("/administration", adminView);

guard(({ path }) => {
  if (PUBLIC.includes(path)) return path === "/connexion" && app.session ? "/" : null;
  if (!app.session) {
    if (path !== "/") sessionStorage.setItem("next", path + location.search); // back there once in
    return "/connexion";
  }
  if (path === "/compte/securite") return null; // the password and sessions, verified or not
  // A new device waits for its approval (or the recovery phrase) before the messaging.
  if (path === "/approbation") return app.link === "pending" ? null : "/";
  if (app.link === "pending") return "/approbation";
  if (path === "/verification") return ready() && app.profile.email_confirmed ? "/" : null;
  if (!ready()) return "/verification";
  // Arrived by an invitation link: once in, straight into the conversation that waited.
  if (sessionStorage.getItem("invitation") && app.client?.rooms?.length) {
    sessionStorage.removeItem("invitation");
    if (app.client.rooms.length === 1) return `/conversations/${app.client.rooms[0].id}`;
  }
  return null;
});

async function boot() {
  await sodiumReady();
  registerServiceWorker();
  try {
    await restore();
  } catch (err) {
    console.error(err); // the server is unreachable: the log-in page says so when used
  }
  start();
}

boot();
