// The WebSocket transport, as SPEC.md §10 and the protocol's ClientSession
// (protocol/client_session.py), whose state table it follows: requests with ids,
// replies by `re`, reconnection after the close policy with full-jitter backoff,
// per-room ordering by seq (hold, sync on gap, drop duplicates), idempotent retries
// (send keeps its cid), to-device deduplication and acknowledgement by explicit tid.
//
//   IDLE -dial-> CONNECTING -open-> AWAIT_WELCOME -welcome-> OPEN
//   CONNECTING | AWAIT_WELCOME | OPEN -close, policy: reconnect-> BACKOFF -dial-> CONNECTING
//   any -close() or policy: stop-> STOPPED (final)
//
// One difference, for the page: a request that is not idempotent, made while the
// connection is down (after the first welcome), fails at once instead of waiting.
import { decode, encode } from "./codec.js";
import { randomId } from "./crypto.js";

const IDEMPOTENT = new Set(["send", "sync", "read", "room.get", "to_device.ack", "keys.upload", "keys.sign", "keys.query", "keys.report"]);
// protocol/reconnect.py's CLOSE_POLICY: reconnect after this close code? (missing: yes)
const RECONNECT_ON_CLOSE = {
  1000: true, 1001: true, 1006: true, 1007: true, 1009: true, 1011: true, 1012: true,
  1013: true, 4008: true, 4400: true, 4401: false, 4403: true,
};
const FINAL_HELLO_ERRORS = new Set(["unauthenticated"]);
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 5000;
const TRANSITIONS = {
  idle: ["connecting", "stopped"],
  connecting: ["await_welcome", "backoff", "stopped"],
  await_welcome: ["open", "backoff", "stopped"],
  open: ["backoff", "stopped"],
  backoff: ["connecting", "stopped"],
  stopped: [],
};
const GAP_GRACE_MS = 200;
const REQUEST_TIMEOUT_MS = 30000;
const SYNC_LIMIT = 500;
const OPEN_TIMEOUT_MS = 10000;

export class ServerError extends Error {
  constructor(code, message, retryAfter) {
    super(`${code}: ${message}`);
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export class ConnectionLost extends Error {}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Callbacks (all optional): onStatus(status) with "connecting" (first connection) |
 * "online" | "offline" (lost, reconnecting by itself) | "closed"; onWelcome(welcome); onItem(msg or timeline event, in seq order per room);
 * onEphemeral(event with seq 0); onToDevice(frame) -> Promise (acknowledged once it
 * resolves); onFatal(error) when the server refuses the session for good.
 */
export class Client {
  constructor(wsUrl, account, handlers = {}) {
    this.wsUrl = wsUrl;
    this.account = account;
    this.h = handlers;
    this.nextId = 1;
    this.pending = new Map(); // id -> {frame, resolve, reject, timer}
    this.lastSeq = new Map(); // room -> highest seq delivered
    this.held = new Map(); // room -> Map(seq -> item)
    this.gapTimers = new Map();
    this.syncing = new Set();
    this.tdSeen = new Set(); // to-device tids taken or waiting
    this.tdUnacked = new Set();
    this.ws = null;
    this.open = false;
    this.state = "idle"; // the table's state
    this.attempt = 0; // dials since the last welcome
    this.status = "idle"; // for the page: connecting | online | offline | closed
    this.verified = false;
    this.rooms = [];
    this.waiters = []; // resolved on the next OPEN state
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.h.onStatus?.(status);
  }

  move(to) {
    if (!TRANSITIONS[this.state].includes(to)) throw new Error(`client session: ${this.state} -> ${to}`);
    this.state = to;
  }

  get wanted() {
    return this.state !== "stopped" && this.state !== "idle";
  }

  /** Connect; resolves with the first welcome (rejects if the hello is refused). */
  connect() {
    return new Promise((resolve, reject) => {
      this.firstWelcome = { resolve, reject };
      this.dial();
    });
  }

  close() {
    if (this.state !== "stopped") this.move("stopped");
    this.ws?.close(1000);
    this.setStatus("closed");
  }

  dial() {
    this.move("connecting");
    // After a drop the page says "offline, reconnecting" until the next welcome.
    if (this.status !== "offline") this.setStatus("connecting");
    const ws = new WebSocket(this.wsUrl, "confrere.v1");
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.dialing = true;
    let opened = false;
    // An attempt that neither opens nor fails (a dead network) is abandoned.
    const timer = setTimeout(() => opened || ws.close(), OPEN_TIMEOUT_MS);
    ws.onopen = () => {
      opened = true;
      clearTimeout(timer);
      this.move("await_welcome");
      const id = this.nextId++;
      this.helloId = id;
      ws.send(encode({ t: "hello", id, token: this.account.token, device: this.account.deviceId }));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") return;
      let frame;
      try {
        frame = decode(new Uint8Array(ev.data));
      } catch (err) {
        console.warn("undecodable frame", err);
        return;
      }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      if (this.ws !== ws) return;
      this.dialing = false;
      this.open = false;
      this.failPending();
      if (this.state === "stopped") return; // closed by the page
      if (RECONNECT_ON_CLOSE[ev.code] === false || this.refused) {
        this.move("stopped");
        this.setStatus("closed");
        this.h.onFatal?.(new ServerError("unauthenticated", "session refused"));
        this.firstWelcome?.reject(new ServerError("unauthenticated", "session refused"));
        return;
      }
      this.move("backoff");
      this.setStatus("offline");
      // Full jitter (SPEC §2.2): anywhere in [0, min(cap, base × 2^attempt)).
      const wait = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.attempt, 32));
      this.attempt += 1;
      this.redial = setTimeout(() => this.state === "backoff" && this.dial(), wait);
    };
  }

  /** The network is back (the browser's "online" event): dial now, not after backoff. */
  retryNow() {
    if (!this.wanted || this.open) return;
    clearTimeout(this.redial);
    if (this.dialing) {
      // An attempt begun while the network was down may hang until its timeout.
      const stale = this.ws;
      this.ws = null;
      stale.close();
      this.move("backoff");
    }
    this.attempt = 0;
    this.dial();
  }

  failPending() {
    // Idempotent requests wait for the next connection; the others fail now (§10.4).
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      if (IDEMPOTENT.has(p.frame.t)) this.whenOpen().then(() => this.transmit(p));
      else p.reject(new ConnectionLost("connection lost"));
    }
  }

  whenOpen() {
    if (this.open) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  onFrame(f) {
    switch (f.t) {
      case "welcome":
        this.onWelcome(f);
        return;
      case "error":
        if (f.re === this.helloId && !this.open) {
          if (FINAL_HELLO_ERRORS.has(f.code)) this.refused = true;
          return; // the server closes; onclose decides
        }
        break;
      case "msg":
        this.onTimeline(f);
        return;
      case "event":
        if (f.seq === 0) this.h.onEphemeral?.(f);
        else this.onTimeline(f);
        return;
      case "to_device":
        this.onToDevice(f);
        return;
      default:
        break;
    }
    if (f.re != null && this.pending.has(f.re)) {
      const p = this.pending.get(f.re);
      this.pending.delete(f.re);
      clearTimeout(p.timer);
      if (f.t === "error") {
        const err = new ServerError(f.code, f.message, f.retry_after);
        if ((f.code === "unavailable" || f.code === "rate_limited") && IDEMPOTENT.has(p.frame.t)) {
          sleep(1000 * (f.retry_after ?? 0.5)).then(() => this.whenOpen()).then(() => this.transmit(p));
        } else p.reject(err);
      } else p.resolve(f);
    }
  }

  onWelcome(f) {
    const first = f.re === this.helloId;
    if (first || f.re === 0) {
      this.verified = f.verified;
      this.rooms = f.rooms;
      this.userId = f.user;
      if (first) {
        this.move("open");
        this.open = true;
        this.attempt = 0;
        this.setStatus("online");
      }
      this.h.onWelcome?.(f);
      for (const room of f.rooms) {
        if (!this.lastSeq.has(room.id)) this.lastSeq.set(room.id, 0);
        if (room.last_seq > this.lastSeq.get(room.id)) this.catchUp(room.id);
      }
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
      // acknowledgements lost with the previous connection
      if (this.tdUnacked.size) this.ackToDevice([...this.tdUnacked]);
      if (this.firstWelcome) {
        this.firstWelcome.resolve(f);
        this.firstWelcome = null;
      }
    }
  }

  transmit(p) {
    const id = this.nextId++;
    p.frame.id = id;
    this.pending.set(id, p);
    p.timer = setTimeout(() => {
      if (!this.pending.has(id)) return;
      this.pending.delete(id);
      if (IDEMPOTENT.has(p.frame.t)) this.transmit(p);
      else p.reject(new ConnectionLost("no reply within 30 s"));
    }, REQUEST_TIMEOUT_MS);
    this.ws.send(encode(p.frame));
  }

  /** Send one request frame (without id); resolves with its reply. */
  async request(frame) {
    if (!this.open) {
      if (!IDEMPOTENT.has(frame.t) && this.status !== "connecting") throw new ConnectionLost("not connected");
      await this.whenOpen();
    }
    return new Promise((resolve, reject) => this.transmit({ frame, resolve, reject }));
  }

  // -- ordering (§10.3)

  onTimeline(item) {
    const room = item.room;
    const last = this.lastSeq.get(room) ?? 0;
    if (!this.lastSeq.has(room)) this.lastSeq.set(room, 0);
    if (item.seq <= last) return;
    if (item.seq === last + 1) {
      this.deliver(item);
      this.drainHeld(room);
      return;
    }
    if (!this.held.has(room)) this.held.set(room, new Map());
    this.held.get(room).set(item.seq, item);
    if (!this.gapTimers.has(room)) {
      this.gapTimers.set(room, setTimeout(() => {
        this.gapTimers.delete(room);
        if (this.held.get(room)?.size) this.catchUp(room);
      }, GAP_GRACE_MS));
    }
  }

  deliver(item) {
    this.lastSeq.set(item.room, item.seq);
    try {
      this.h.onItem?.(item);
    } catch (err) {
      console.error("onItem failed", err);
    }
  }

  drainHeld(room) {
    const held = this.held.get(room);
    if (!held) return;
    for (;;) {
      const next = held.get((this.lastSeq.get(room) ?? 0) + 1);
      if (!next) break;
      held.delete(next.seq);
      this.deliver(next);
    }
    for (const seq of [...held.keys()]) if (seq <= this.lastSeq.get(room)) held.delete(seq);
  }

  /** sync the room from its last delivered seq while `more` (one at a time per room). */
  async catchUp(room) {
    if (this.syncing.has(room)) {
      this.resync = this.resync || new Set();
      this.resync.add(room);
      return;
    }
    this.syncing.add(room);
    try {
      for (;;) {
        const batch = await this.request({ t: "sync", room, after: this.lastSeq.get(room) ?? 0, limit: SYNC_LIMIT });
        for (const item of batch.items) this.onTimeline({ ...item, room });
        if (!batch.more) break;
      }
    } catch (err) {
      if (err instanceof ServerError) this.held.delete(room);
      else console.warn("sync failed", err);
    } finally {
      this.syncing.delete(room);
      if (this.resync?.delete(room)) this.catchUp(room);
    }
  }

  /** Start tracking a room joined after the welcome (full history from seq 1). */
  track(room) {
    if (!this.lastSeq.has(room)) {
      this.lastSeq.set(room, 0);
      this.catchUp(room);
    }
  }

  // -- to-device (§10.3)

  async onToDevice(f) {
    if (this.tdUnacked.has(f.tid)) {
      this.ackToDevice([f.tid]);
      return;
    }
    if (this.tdSeen.has(f.tid)) return;
    this.tdSeen.add(f.tid);
    try {
      await this.h.onToDevice?.(f);
    } catch (err) {
      console.warn("to-device payload dropped", err);
    }
    this.tdUnacked.add(f.tid);
    this.ackToDevice([f.tid]);
  }

  async ackToDevice(tids) {
    try {
      await this.request({ t: "to_device.ack", tids });
      for (const tid of tids) this.tdUnacked.delete(tid);
    } catch (err) {
      console.warn("to-device ack failed", err);
    }
  }

  // -- requests

  /** Send an opaque body with a fresh cid (kept across retries); returns {seq, ts}.
   * `edits`: the seq of our message this one edits (SPEC.md §4.2), or null;
   * `mentions`: the members it mentions (send.mentions). */
  async send(room, body, att, edits = null, mentions = []) {
    const cid = randomId();
    const frame = { t: "send", room, cid, body };
    if (att && att.length) frame.att = att;
    if (edits != null) frame.edits = edits;
    // In clear for one purpose: members who muted the room still hear of a mention.
    if (mentions.length) frame.mentions = mentions;
    const ack = await this.request(frame);
    // The server does not echo our own message: feed it through the ordering (§10.4).
    const own = { t: "msg", room, seq: ack.seq, sender: this.userId, device: this.account.deviceId, cid, ts: ack.ts, body };
    if (edits != null) own.edits = edits;
    this.onTimeline(own);
    return ack;
  }

  /** Delete a message for everyone (SPEC.md §4.20); returns the msg.deleted event's seq. */
  async deleteMessage(room, seq) {
    return (await this.request({ t: "msg.delete", room, seq })).seq;
  }

  async roomGet(room) {
    return (await this.request({ t: "room.get", room })).room;
  }

  /** A new room; its name and case header are set encrypted afterwards (e2ee.js), as
   * they need the room's id. */
  async createRoom(kind, members) {
    const frame = { t: "room.create", kind, members };
    const info = (await this.request(frame)).room;
    this.track(info.id);
    return info;
  }

  invite(room, users, emails) {
    const frame = { t: "room.invite", room, users };
    if (emails && emails.length) frame.emails = emails;
    if (!users.length) delete frame.users;
    return this.request(frame);
  }

  read(room, seq) {
    return this.request({ t: "read", room, seq });
  }

  typing(room, on) {
    return this.request({ t: "typing", room, on });
  }

  toDevice(user, device, body) {
    return this.request({ t: "to_device", user, device, body });
  }

  /** keys.upload; `identity` (record) and `signature` (cross-signing, SPEC.md §11.1). */
  uploadKeys(bundle, { identity, signature } = {}) {
    const frame = { t: "keys.upload", bundle };
    if (identity) frame.identity = identity;
    if (signature) frame.signature = signature;
    return this.request(frame);
  }

  /** keys.sign: the identity's signature of another device of this user. */
  signDevice(device, signature) {
    return this.request({ t: "keys.sign", device, signature });
  }

  /** keys.query: {keys, identities, signatures}, unverified. */
  async queryKeyDirectory(users) {
    const ack = await this.request({ t: "keys.query", users });
    return { keys: ack.keys || [], identities: ack.identities || [], signatures: ack.signatures || [] };
  }

  report(room, device, reason, session) {
    const frame = { t: "keys.report", room, device, reason };
    if (session) frame.session = session;
    return this.request(frame);
  }

  updateRoom(room, fields) {
    return this.request({ t: "room.update", room, ...fields });
  }

  /** This user's own settings of a room (SPEC.md §4.21): {notify?, archived?, pinned?,
   * unread?}; returns the RoomInfo after the change. */
  async roomSettings(room, fields) {
    return (await this.request({ t: "room.settings", room, ...fields })).room;
  }

  leave(room) {
    return this.request({ t: "room.leave", room });
  }

  remove(room, user) {
    return this.request({ t: "room.remove", room, user });
  }

  setRole(room, user, role) {
    return this.request({ t: "room.role", room, user, role });
  }

  uninvite(room, email) {
    return this.request({ t: "room.uninvite", room, email });
  }

  ping() {
    return this.request({ t: "ping" });
  }
}
