// End-to-end encryption over the transport, as clients/python/e2ee.py: sender keys per
// room shared by to-device boxes with every member device, key requests through
// keys.report, held messages until their key arrives, encrypted chat files; adding a
// device (the approval and the history's keys, SPEC.md §11.7) and the key backup.
import {
  CryptoError,
  DeviceKeys,
  IdentityKeys,
  InboundSession,
  OutboundSession,
  decodeContent,
  decryptFile,
  encodeContent,
  encryptFile,
  equal,
  hex,
  newFileKey,
  openSealed,
  openSenderKey,
  deviceVerified,
  parseBundle,
  parseDeviceSignature,
  parseIdentity,
  parseKeyRequest,
  parseMessage,
  safetyNumber,
  sha256,
  shareSenderKey,
  signDevice,
  sniff,
  unwrapHeader,
  wrapHeader,
  MAX_ATTACHMENT,
  backupCheck,
  deriveBackupKey,
  fromUtf8,
  linkCode,
  newPhrase,
  openEntry,
  randomBytes,
  roomKeysFromPayload,
  roomKeysPayloads,
  seal,
  sealEntry,
  identityEntryId,
  openIdentityEntry,
  sealIdentityEntry,
  utf8,
  BACKUP_MEMLIMIT,
  BACKUP_OPSLIMIT,
} from "./crypto.js";

const KEYS_TTL_MS = 30000;
const KEY_WAIT_MS = 10000;
const REPORT_CODES = {
  UnknownSession: "unknown_session",
  BadSignature: "bad_signature",
  Tampered: "tampered",
  Truncated: "tampered",
  Replayed: "replayed",
  TooFarAhead: "too_far_ahead",
  BadVersion: "bad_version",
};
const TYPE_NAMES = { "application/pdf": "un PDF", "image/jpeg": "une image JPEG", "image/png": "une image PNG" };

const sessionRef = (room, device, sid) => `${room}|${device}|${hex(sid)}`;

function keyToJson(k) {
  return { roomId: k.roomId, deviceId: k.deviceId, sessionId: k.sessionId, chainKey: k.chainKey, index: k.index, signPublic: k.signPublic };
}

export class AttachmentError extends Error {}

export const MAX_FILES = 10; // per message (SPEC.md §11.2)

/** A file that may be attached: 1 byte to 50 MiB, a PDF, JPEG or PNG by its first
 * bytes, a name of 255 characters at most; its type, or AttachmentError. */
function checkFile(data, name) {
  if (data.length < 1 || data.length > MAX_ATTACHMENT) throw new AttachmentError(`${name ? `« ${name} » : ` : ""}un fichier fait de 1 octet à 50 Mo`);
  const type = sniff(data.subarray(0, 8));
  if (!type) throw new AttachmentError(`${name ? `« ${name} » : ` : ""}seuls les PDF, JPEG et PNG peuvent être joints`);
  if (name && name.length > 255) throw new AttachmentError("nom de fichier trop long");
  return type;
}

const toB64 = (bytes) => btoa(String.fromCharCode(...bytes));
const fromB64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/**
 * Handlers: onMessage(decrypted), onUndecryptable(item), onDeleted(tombstone),
 * onEvent(event).
 * `saved` is the snapshot `snapshot()` returned last time (IndexedDB), or null.
 */
export class E2EE {
  constructor(client, rest, keys, handlers, saved, persist) {
    this.client = client;
    this.rest = rest;
    this.keys = keys;
    this.h = handlers;
    this.persist = persist || (() => {});
    this.devices = new Map(); // user -> Map(device -> bundle)
    this.devicesAt = new Map();
    // room -> {session, initial, afterSeq, recipients: Set("user|device")}; afterSeq: the
    // room's last seq seen when the key was made (guests invited up to it may get it).
    this.outbound = new Map();
    this.initialKeys = new Map(); // ref -> sender key as first received (rebuilt each load)
    this.inbound = new Map(); // ref -> InboundSession
    this.held = new Map(); // ref -> [{deadline, msg}]
    this.requested = new Set();
    this.promoted = new Map(); // room -> Map(user -> seq of its invitation) (key forwarding)
    this.invitations = new Map(); // room -> Set(seq of guest.invited events seen)
    this.seenSeq = new Map(); // room -> last timeline seq seen
    this.locks = new Map();
    this.headers = new Map();
    this.identity = null; // this user's identity secret (IdentityKeys), if this device holds it
    this.identities = new Map(); // user -> identity record (verified)
    this.verified = new Set(); // "user|device" signed by their user's identity
    // Adding a device (SPEC.md §11.7): own devices this one approved or was approved by
    // (they exchange every key), requests waiting for an answer here, and whether this
    // device waits for its own approval (its held messages then wait, unreported).
    this.linked = new Set();
    this.linkRequests = new Map(); // device -> bundle
    this.awaitingLink = false;
    this.backup = null; // {version, key}: the key backup kept up to date from here
    if (saved) this.restore(saved);
    this.expiry = setInterval(() => this.expireHeld(), 1000);
  }

  get deviceId() {
    return this.client.account.deviceId;
  }

  get userId() {
    return this.client.account.userId;
  }

  // -- persistence: the sender keys as first received (history is re-read from seq 1
  // at each start, so inbound sessions restart from there) and our outbound state.

  snapshot() {
    const outbound = [];
    for (const [room, out] of this.outbound) {
      outbound.push({
        room,
        sessionId: out.session.sessionId,
        chainKey: out.session.chainKey,
        index: out.session.index,
        initial: keyToJson(out.initial),
        afterSeq: out.afterSeq,
        recipients: [...out.recipients],
      });
    }
    return {
      inbound: [...this.initialKeys.values()].map(keyToJson),
      outbound,
      linked: [...this.linked],
      backup: this.backup,
      awaitingLink: this.awaitingLink,
    };
  }

  restore(saved) {
    this.linked = new Set(saved.linked || []);
    this.backup = saved.backup || null;
    this.awaitingLink = Boolean(saved.awaitingLink);
    for (const k of saved.inbound || []) this.addInbound(k);
    for (const o of saved.outbound || []) {
      const session = new OutboundSession(o.room, this.deviceId, this.keys, { sessionId: o.sessionId, chainKey: o.chainKey, index: o.index });
      this.outbound.set(o.room, { session, initial: o.initial, afterSeq: o.afterSeq || 0, recipients: new Set(o.recipients) });
    }
  }

  /** Write the snapshot (IndexedDB); resolves once stored. */
  save() {
    return Promise.resolve(this.persist(this.snapshot())).catch((err) => console.warn("could not save keys", err));
  }

  addInbound(key) {
    const ref = sessionRef(key.roomId, key.deviceId, key.sessionId);
    if (this.inbound.has(ref)) return false;
    this.initialKeys.set(ref, key);
    this.inbound.set(ref, new InboundSession(key));
    return true;
  }

  // -- key directory

  async devicesOf(users, refresh = false) {
    const now = Date.now();
    const stale = users.filter((u) => refresh || now - (this.devicesAt.get(u) ?? -KEYS_TTL_MS) >= KEYS_TTL_MS);
    if (stale.length) {
      const directory = await this.client.queryKeyDirectory(stale);
      const found = new Map(stale.map((u) => [u, new Map()]));
      for (const data of directory.keys) {
        let bundle;
        try {
          bundle = parseBundle(data);
        } catch (err) {
          console.warn("server returned an invalid key bundle", err);
          continue;
        }
        found.get(bundle.userId)?.set(bundle.deviceId, bundle);
      }
      const identities = new Map();
      for (const data of directory.identities) {
        try {
          const record = parseIdentity(data);
          if (found.has(record.userId)) identities.set(record.userId, record);
        } catch (err) {
          console.warn("server returned an invalid identity record", err);
        }
      }
      const signatures = new Map();
      for (const data of directory.signatures) {
        try {
          const sig = parseDeviceSignature(data);
          signatures.set(`${sig.userId}|${sig.deviceId}`, data);
        } catch (err) {
          console.warn("server returned an invalid device signature", err);
        }
      }
      for (const [u, devs] of found) {
        this.checkKeyChange(u, identities.get(u) || null, devs);
        this.devices.set(u, devs);
        this.devicesAt.set(u, now);
        if (identities.has(u)) this.identities.set(u, identities.get(u));
        else this.identities.delete(u);
        for (const [d, bundle] of devs) {
          const ref = `${u}|${d}`;
          if (deviceVerified(identities.get(u), bundle, signatures.get(ref))) this.verified.add(ref);
          else this.verified.delete(ref);
        }
      }
    }
    const out = [];
    for (const u of users) for (const b of this.devices.get(u)?.values() ?? []) out.push(b);
    return out;
  }

  /** Whether a device carries its user's identity signature (cross-signing, SPEC.md
   * §11.1), as last read from the directory; unverified devices are shown so. */
  deviceVerified(user, device) {
    return this.verified.has(`${user}|${device}`);
  }

  /** {verified, unverified}: counts of a user's devices as last read (devicesOf). */
  deviceCounts(user) {
    let verified = 0;
    let unverified = 0;
    for (const d of this.devices.get(user)?.keys() ?? []) {
      if (this.deviceVerified(user, d)) verified++;
      else unverified++;
    }
    return { verified, unverified };
  }

  /** What a user counts with in safety numbers: their identity key, or (without one)
   * their devices' signing keys. */
  safetyKeys(user, identity, devices) {
    if (identity) return [identity.public];
    const keys = new Map([...devices.values()].map((b) => [hex(b.signPublic), b.signPublic]));
    if (user === this.userId) keys.set(hex(this.keys.signPublic), this.keys.signPublic);
    return [...keys.values()];
  }

  /** Tell the page when a user's identity key changes (as the SDK's KeysChanged); for
   * a user without one, when their device keys change. A device added and signed by
   * the same identity changes nothing. */
  checkKeyChange(user, identity, now) {
    const old = this.devices.get(user);
    if (user === this.userId || !old || !old.size || !now.size) return;
    const before = this.safetyKeys(user, this.identities.get(user), old).map(hex).sort().join();
    const after = this.safetyKeys(user, identity, now).map(hex).sort().join();
    if (before === after) return;
    const replaced = [...old.keys()].filter((d) => now.has(d) && hex(now.get(d).signPublic) !== hex(old.get(d).signPublic));
    this.h.onKeysChanged?.({ user, replaced, identity: Boolean(identity || this.identities.get(user)) });
  }

  async bundleOf(user, device) {
    let bundle = this.devices.get(user)?.get(device);
    if (!bundle) bundle = (await this.devicesOf([user], true)).find((b) => b.deviceId === device);
    return bundle && bundle.userId === user ? bundle : null;
  }

  /** The 60-digit safety number with `user`, over the two identity keys the directory
   * gives now (adding a device does not change it). */
  async safetyNumberWith(user) {
    await this.devicesOf([this.userId, user], true);
    const theirs = this.devices.get(user) || new Map();
    if (!theirs.size && !this.identities.has(user)) return null;
    const own = this.identities.get(this.userId) || (this.identity ? { public: this.identity.public } : null);
    const mine = this.safetyKeys(this.userId, own, this.devices.get(this.userId) || new Map());
    return safetyNumber(this.userId, mine, user, this.safetyKeys(user, this.identities.get(user), theirs));
  }

  // -- cross-signing (SPEC.md §11.1)

  /** Upload this device's bundle. The user's first device creates the identity key
   * (kept in IndexedDB by `keepIdentity(identity)`, forgotten by `keepIdentity(null)`
   * if another device made one first); a device holding it signs its own bundle. */
  async publishKeys(keepIdentity) {
    const bundle = this.keys.bundle(this.userId, this.deviceId);
    const directory = await this.client.queryKeyDirectory([this.userId]);
    let stored = null;
    for (const data of directory.identities) {
      try {
        const record = parseIdentity(data);
        if (record.userId === this.userId) stored = record;
      } catch (err) {
        console.warn("server returned an invalid identity record", err);
      }
    }
    if (!stored && !this.identity) {
      this.identity = IdentityKeys.generate();
      await keepIdentity(this.identity);
    }
    if (!this.identity || (stored && !equal(stored.public, this.identity.public))) {
      await this.client.uploadKeys(bundle);
      return;
    }
    const signature = signDevice(this.identity, parseBundle(bundle));
    try {
      await this.client.uploadKeys(bundle, { identity: stored ? undefined : this.identity.record(this.userId), signature });
    } catch (err) {
      if (err?.code !== "conflict") throw err;
      // Another device of the user published its identity key between our query and
      // our upload: that one is the user's; this device waits to be approved.
      this.identity = null;
      await keepIdentity(null);
      await this.client.uploadKeys(bundle);
    }
  }

  /** Sign another device of this user with the identity (the approval of a new device,
   * SPEC.md §11.7, calls it); nothing if this device does not hold the identity. */
  async signOwnDevice(bundle) {
    if (!this.identity || bundle.userId !== this.userId) return false;
    await this.client.signDevice(bundle.deviceId, signDevice(this.identity, bundle));
    this.verified.add(`${this.userId}|${bundle.deviceId}`);
    return true;
  }

  // -- sending

  withLock(room, fn) {
    const previous = this.locks.get(room) || Promise.resolve();
    const next = previous.then(fn, fn);
    this.locks.set(room, next.catch(() => {}));
    return next;
  }

  rotate(room) {
    this.outbound.delete(room);
  }

  async encryptFor(room, plaintext) {
    const info = await this.client.roomGet(room);
    const members = (info.members || []).map((m) => m.user);
    const memberSet = new Set(members);
    let out = this.outbound.get(room);
    const refresh = !out || ![...out.recipients].every((r) => memberSet.has(r.split("|")[0]));
    const bundles = await this.devicesOf(members, refresh);
    const targets = new Map();
    for (const b of bundles) {
      if (memberSet.has(b.userId) && b.deviceId !== this.deviceId) targets.set(`${b.userId}|${b.deviceId}`, b);
    }
    if (!out || ![...out.recipients].every((r) => targets.has(r))) {
      const session = new OutboundSession(room, this.deviceId, this.keys);
      out = { session, initial: session.senderKey(), afterSeq: this.seenSeq.get(room) || 0, recipients: new Set() };
      this.outbound.set(room, out);
      this.addInbound(out.initial);
      this.backUp([out.initial]);
    }
    const fresh = [...targets.keys()].filter((t) => !out.recipients.has(t));
    if (fresh.length) {
      const key = out.session.senderKey();
      await Promise.all(
        fresh.map(async (t) => {
          const b = targets.get(t);
          try {
            await this.client.toDevice(b.userId, b.deviceId, shareSenderKey(this.keys, key, b.deviceId, b.boxPublic));
          } catch (err) {
            console.warn("could not share a key", err);
          }
        }),
      );
      for (const t of fresh) out.recipients.add(t);
    }
    const body = out.session.encrypt(plaintext);
    // The chain has moved on: store it before the message leaves, so that a reload
    // right after sending never encrypts twice with the same index.
    await this.save();
    return body;
  }

  /** `reply`: {seq, sender, text excerpt} of the message answered, or null;
   * `mentions`: user ids of the members named in the text (SPEC.md §11.2). */
  async sendText(room, text, reply = null, mentions = []) {
    const body = await this.withLock(room, () => this.encryptFor(room, encodeContent(text, [], null, reply, mentions)));
    return this.client.send(room, body, null, null, mentions);
  }

  /** Replace the text of our message `seq` (SPEC.md §4.2): a new encrypted message
   * naming it, in its plaintext and in send.edits. */
  async editText(room, seq, text) {
    const body = await this.withLock(room, () => this.encryptFor(room, encodeContent(text, [], seq)));
    return this.client.send(room, body, null, seq);
  }

  deleteMessage(room, seq) {
    return this.client.deleteMessage(room, seq);
  }

  /** Up to 10 files ([{data, name}]) in one message: each checked, encrypted and
   * uploaded in turn, then one message carries their references; onProgress(0..1). */
  async sendFiles(room, files, caption, onProgress) {
    if (!files.length || files.length > MAX_FILES) throw new AttachmentError(`de 1 à ${MAX_FILES} fichiers par message`);
    for (const f of files) checkFile(f.data, f.name); // all refused before any upload
    const refs = [];
    for (const [i, f] of files.entries()) {
      refs.push(await this.upload(room, f.data, f.name, (p) => onProgress?.((i + p) / files.length)));
    }
    const body = await this.withLock(room, () => this.encryptFor(room, encodeContent(caption || "", refs)));
    return this.client.send(room, body, refs.map((r) => r.id));
  }

  /** Send a message on into another room (SPEC.md §11.2 `forwarded`): its text
   * encrypted anew for that room, each file decrypted, checked, encrypted under a new
   * key and uploaded to it. `msg`: {text, files} as shown. */
  async forward(msg, room) {
    const refs = [];
    for (const f of msg.files || []) refs.push(await this.upload(room, await this.fetchFile(f), f.name));
    const body = await this.withLock(room, () => this.encryptFor(room, encodeContent(msg.text || "", refs, null, null, [], true)));
    return this.client.send(room, body, refs.map((r) => r.id));
  }

  /** Check, encrypt and upload one file to a room; its reference (SPEC.md §11.6). */
  async upload(room, data, name, onProgress) {
    const type = checkFile(data, name);
    const key = newFileKey();
    const digest = sha256(data);
    const stream = encryptFile(key, data, (done, total) => onProgress?.(0.2 * (done / total)));
    const uploaded = await this.rest.uploadChat(room, type, stream, (f) => onProgress?.(0.2 + 0.8 * f));
    return { id: uploaded.id, key, sha256: digest, size: data.length, type, name: name || null };
  }

  /** Download, decrypt and check a file; returns its bytes. */
  async fetchFile(ref, onProgress) {
    const stream = await this.rest.download(ref.id, onProgress);
    let plain;
    try {
      plain = decryptFile(ref.key, stream);
    } catch (err) {
      throw new AttachmentError("le fichier ne se déchiffre pas");
    }
    const found = sniff(plain.subarray(0, 8));
    if (found !== ref.type) throw new AttachmentError(`le fichier n'est pas ${TYPE_NAMES[ref.type] || ref.type}`);
    if (plain.length !== ref.size) throw new AttachmentError("la taille du fichier n'est pas celle annoncée");
    if (!equal(sha256(plain), ref.sha256)) throw new AttachmentError("l'empreinte SHA-256 du fichier ne correspond pas");
    return plain;
  }

  async setHeader(room, header) {
    const sealed = await this.withLock(room, () => this.encryptFor(room, header));
    return this.client.updateRoom(room, { header: wrapHeader(this.deviceId, sealed) });
  }

  /** Rename a group or patient case: the name travels and is stored encrypted for the
   * members like a case header (SPEC.md §11.4); the server never sees it. */
  async setName(room, name) {
    const sealed = await this.withLock(room, () => this.encryptFor(room, utf8(name)));
    return this.client.updateRoom(room, { name: wrapHeader(this.deviceId, sealed) });
  }

  /** After members were added or a guest invited (the ack's `seq`): a new sender key,
   * with which the room's name and case header are encrypted again, so that the new
   * members (a guest once promoted) can read them (SPEC.md §11.4); nothing sent before
   * reaches them. `state`: the room as rooms.js holds it. */
  async afterInvite(state, seq) {
    this.saw(state.id, seq || 0);
    this.rotate(state.id);
    const name = state.name ? this.decryptHeader(state.id, state.name) : null;
    const header = state.header ? this.decryptHeader(state.id, state.header) : null;
    if (name) await this.setName(state.id, name);
    if (header) await this.setHeader(state.id, utf8(header));
  }

  /** The plaintext of a case header or room name (string), or null while its key is
   * missing. */
  decryptHeader(room, blob) {
    const cached = this.headers.get(hex(blob));
    if (cached !== undefined) return cached;
    try {
      const { deviceId, sealed } = unwrapHeader(blob);
      const session = this.inbound.get(sessionRef(room, deviceId, parseMessage(sealed).sessionId));
      if (!session) return null;
      // A header is decrypted with a fresh copy: the same index may also be re-read.
      const [, plain] = new InboundSession(session.key).decrypt(room, deviceId, sealed);
      const text = fromUtf8(plain);
      this.headers.set(hex(blob), text);
      return text;
    } catch (err) {
      console.warn("case header refused", err);
      return null;
    }
  }

  // -- receiving

  saw(room, seq) {
    if (seq > (this.seenSeq.get(room) || 0)) this.seenSeq.set(room, seq);
  }

  onItem(item) {
    if (item.t === "msg") {
      this.saw(item.room, item.seq);
      this.onMsg(item);
      return;
    }
    if (item.kind === "device.revoked" && item.user) {
      // Nothing sent from now on may reach that device: a new key, and that user's
      // devices read again (the revoked one has left the directory).
      this.rotate(item.room);
      this.devicesAt.delete(item.user);
    } else if (item.kind === "member.left" && item.user) {
      this.rotate(item.room);
      this.promoted.get(item.room)?.delete(item.user);
    } else if (item.kind === "guest.invited" && item.seq > 0) {
      // Nothing sent before an invitation may reach that guest: a new sender key.
      if (!this.invitations.has(item.room)) this.invitations.set(item.room, new Set());
      this.invitations.get(item.room).add(item.seq);
      this.saw(item.room, item.seq);
      if ((this.outbound.get(item.room)?.afterSeq ?? 0) < item.seq) this.rotate(item.room);
    } else if (item.kind === "member.promoted" && item.user && item.user !== this.userId) {
      // Only a promotion naming an invitation seen earlier (SPEC.md §11.3).
      if (item.upto != null && this.invitations.get(item.room)?.has(item.upto)) {
        if (!this.promoted.has(item.room)) this.promoted.set(item.room, new Map());
        this.promoted.get(item.room).set(item.user, item.upto);
        this.forwardKeys(item.room, item.user).catch((err) => console.info("key forwarding", err));
      } else {
        console.warn("member.promoted without a seen invitation: ignored", item.room);
      }
    }
    if (item.seq) this.saw(item.room, item.seq);
    this.h.onEvent?.(item);
  }

  /** A guest invited by e-mail became a member (SPEC.md §11.3, key forwarding): share
   * this device's sender key of the room from its first index with their devices, if
   * that key was made after their invitation was seen, so what was sent since the
   * invitation (and nothing before) becomes readable. Returns how many got it. */
  forwardKeys(room, user) {
    return this.withLock(room, async () => {
      const out = this.outbound.get(room);
      const invitedAt = this.promoted.get(room)?.get(user);
      if (!out || invitedAt === undefined || out.afterSeq < invitedAt) return 0;
      const info = await this.client.roomGet(room);
      if (!(info.members || []).some((m) => m.user === user)) return 0;
      let shared = 0;
      for (const b of await this.devicesOf([user], true)) {
        if (b.userId !== user) continue;
        try {
          await this.client.toDevice(user, b.deviceId, shareSenderKey(this.keys, out.initial, b.deviceId, b.boxPublic));
          out.recipients.add(`${user}|${b.deviceId}`);
          shared++;
        } catch (err) {
          console.info("could not forward a key", err);
        }
      }
      this.save();
      return shared;
    });
  }

  onMsg(msg) {
    if (msg.body == null) {
      // Deleted for everyone (SPEC.md §5.4): a tombstone, nothing to decrypt.
      this.h.onDeleted?.({ room: msg.room, seq: msg.seq, sender: msg.sender, ts: msg.ts, by: msg.deleted_by, edits: msg.edits ?? null });
      return;
    }
    let sid;
    try {
      sid = parseMessage(msg.body).sessionId;
    } catch (err) {
      this.reject(msg, err);
      return;
    }
    const ref = sessionRef(msg.room, msg.device, sid);
    const session = this.inbound.get(ref);
    if (!session) {
      if (!this.held.has(ref)) this.held.set(ref, []);
      this.held.get(ref).push({ deadline: Date.now() + KEY_WAIT_MS, msg });
      if (!this.requested.has(ref) && msg.device !== this.deviceId) {
        this.requested.add(ref);
        this.reportLater(ref, msg.room, msg.device, sid);
      }
      return;
    }
    try {
      const [, plaintext] = session.decrypt(msg.room, msg.device, msg.body);
      const { text, files, edits, reply, mentions, forwarded } = decodeContent(plaintext);
      // The server enforces the frame's reference, the signature covers the plaintext's:
      // they must agree, or a server could move an edit onto another message.
      if (edits !== (msg.edits ?? null)) throw new CryptoError("Tampered", "l'édition ne désigne pas le message annoncé");
      this.h.onMessage?.({ room: msg.room, seq: msg.seq, sender: msg.sender, device: msg.device, ts: msg.ts, text, files, edits, reply, mentions, forwarded });
    } catch (err) {
      this.reject(msg, err);
    }
  }

  /** Still no key half-way through the wait: report it (the server then asks the
   * sender again). Not while this device waits for its approval: its keys come then. */
  reportLater(ref, room, device, sid) {
    setTimeout(() => {
      if (this.awaitingLink) this.requested.delete(ref);
      else if (this.held.has(ref)) this.report(room, device, "unknown_session", sid);
    }, KEY_WAIT_MS / 2);
  }

  reject(msg, err) {
    // `kind` says why, for the screen (i18n.js UNREADABLE); `reason` is for developers.
    const reason = err instanceof CryptoError ? err.message : String(err);
    const kind = err instanceof CryptoError ? err.kind : "other";
    this.h.onUndecryptable?.({ room: msg.room, seq: msg.seq, sender: msg.sender, device: msg.device, ts: msg.ts, reason, kind, edits: msg.edits ?? null });
    const code = err instanceof CryptoError ? REPORT_CODES[err.kind] || "other" : "other";
    if (code !== "unknown_session") this.report(msg.room, msg.device, code, null);
  }

  report(room, device, code, session) {
    this.client.report(room, device, code, session).catch((err) => console.info("report failed", err));
  }

  expireHeld() {
    if (this.awaitingLink) return;
    const now = Date.now();
    for (const [ref, items] of this.held) {
      const waiting = items.filter((i) => i.deadline > now);
      for (const i of items) {
        if (i.deadline <= now) this.reject(i.msg, new CryptoError("UnknownSession", "la clé du message n'est jamais arrivée"));
      }
      if (waiting.length) this.held.set(ref, waiting);
      else this.held.delete(ref);
    }
  }

  async onToDevice(item) {
    if (item.body[0] === 0) {
      await this.onKeyRequest(item);
      return;
    }
    const bundle = await this.bundleOf(item.user, item.device);
    if (!bundle) {
      console.warn("to-device payload from an unknown device");
      return;
    }
    let key;
    try {
      const payload = openSealed(this.keys, this.deviceId, bundle, item.body);
      if (item.user === this.userId && payload.type !== "sender_key") {
        await this.onOwnDevice(item, payload, bundle);
        return;
      }
      if (payload.type !== "sender_key") return;
      key = openSenderKey(payload, bundle);
    } catch (err) {
      console.warn("to-device payload refused", err);
      return;
    }
    if (this.gotKeys([key]).length) {
      // A key this device just got: the devices it is linked with get it too.
      for (const device of this.linked) this.sendKeys(device, [key]).catch((err) => console.info("key forwarding", err));
      // Acknowledged (when this resolves) only once stored: a page closed meanwhile
      // would otherwise lose a key the server no longer holds.
      await this.saved;
    }
  }

  /** Add sender keys (shared with us, from an own device or the backup), read the
   * messages that waited for them, keep them and back them up; the new ones. */
  gotKeys(keys) {
    const fresh = keys.filter((k) => this.addInbound(k));
    if (!fresh.length) return fresh;
    this.saved = this.save();
    this.backUp(fresh);
    for (const key of fresh) {
      const ref = sessionRef(key.roomId, key.deviceId, key.sessionId);
      const held = this.held.get(ref) || [];
      this.held.delete(ref);
      for (const { msg } of held.sort((a, b) => a.msg.seq - b.msg.seq)) this.onMsg(msg);
      this.h.onKey?.(key.roomId);
    }
    return fresh;
  }

  exportKeys() {
    return [...this.initialKeys.values()];
  }

  // -- adding a device (SPEC.md §11.7)

  /** This user's other devices with published keys. */
  async ownDevices() {
    return (await this.devicesOf([this.userId], true)).filter((b) => b.deviceId !== this.deviceId);
  }

  /** Ask the user's other devices to approve this one; returns the code to show. */
  async requestLink() {
    this.awaitingLink = true;
    await this.save();
    for (const b of await this.ownDevices()) {
      const body = seal(this.keys, b.boxPublic, { type: "link_request", from: this.deviceId, to: b.deviceId });
      await this.client.toDevice(this.userId, b.deviceId, body).catch((err) => console.info("link request", err));
    }
    return this.linkCode();
  }

  linkCode() {
    return linkCode(this.keys.bundle(this.userId, this.deviceId));
  }

  /** The approval is over (answered, or replaced by the backup): held messages get
   * their usual wait, and are reported if their key still does not come. */
  stopWaiting() {
    this.awaitingLink = false;
    const deadline = Date.now() + KEY_WAIT_MS;
    for (const [ref, items] of this.held) {
      for (const i of items) i.deadline = deadline;
      const { room, device } = items[0].msg;
      if (device !== this.deviceId && !this.requested.has(ref)) {
        this.requested.add(ref);
        this.reportLater(ref, room, device, parseMessage(items[0].msg.body).sessionId);
      }
    }
    return this.save();
  }

  /** Approve the new device: it gets the backup key and every key held here, now and
   * as they arrive. `onApproved(bundle)` (cross-signing) runs first. */
  async approve(device) {
    const bundle = this.linkRequests.get(device);
    if (!bundle) return 0;
    this.linkRequests.delete(device);
    await this.h.onDeviceApproved?.(bundle);
    const payload = { type: "link_accept", from: this.deviceId, to: device };
    if (this.backup) payload.backup = this.backup;
    // The identity secret goes along: the new device signs itself and approves the next.
    if (this.identity) payload.identity = this.identity.toBytes();
    await this.client.toDevice(this.userId, device, seal(this.keys, bundle.boxPublic, payload));
    this.linked.add(device);
    await this.save();
    const keys = this.exportKeys();
    await this.sendKeys(device, keys, bundle);
    return keys.length;
  }

  async refuse(device) {
    const bundle = this.linkRequests.get(device);
    if (!bundle) return;
    this.linkRequests.delete(device);
    await this.client.toDevice(this.userId, device, seal(this.keys, bundle.boxPublic, { type: "link_refused", from: this.deviceId, to: device }));
  }

  async sendKeys(device, keys, bundle) {
    bundle = bundle || (await this.bundleOf(this.userId, device));
    if (!bundle) return; // revoked since
    for (const payload of roomKeysPayloads(keys, this.deviceId, device)) {
      await this.client.toDevice(this.userId, device, seal(this.keys, bundle.boxPublic, payload));
    }
  }

  async onOwnDevice(item, payload, bundle) {
    if (payload.type === "link_request") {
      if (this.awaitingLink) return; // waiting itself: it has nothing to give
      this.linkRequests.set(item.device, bundle);
      this.h.onLinkRequest?.({ device: item.device, code: linkCode(bundle.bytes) });
    } else if ((payload.type === "link_accept" || payload.type === "link_refused") && this.awaitingLink) {
      const approved = payload.type === "link_accept";
      if (approved) {
        this.linked.add(item.device);
        const b = payload.backup;
        if (b && typeof b.version === "string" && b.key instanceof Uint8Array && b.key.length === 32) this.backup = { version: b.version, key: b.key };
        if (payload.identity instanceof Uint8Array) await this.adoptIdentity(payload.identity);
      }
      await this.stopWaiting();
      this.h.onLinkAnswered?.({ device: item.device, approved });
    } else if (payload.type === "backup_key" && this.linked.has(item.device)) {
      const b = payload.backup;
      if (b && typeof b.version === "string" && b.key instanceof Uint8Array && b.key.length === 32) {
        this.backup = { version: b.version, key: b.key };
        await this.save();
        await this.backUpEverything().catch((err) => console.info("key backup", err));
      }
    } else if (payload.type === "room_keys" && this.linked.has(item.device)) {
      this.gotKeys(roomKeysFromPayload(payload));
    }
  }

  /** Keep the user's identity secret received from an own device or the backup, and
   * sign this device's bundle with it (cross-signing, SPEC.md §11.1). */
  async adoptIdentity(bytes) {
    if (this.identity) return;
    try {
      this.identity = IdentityKeys.fromBytes(bytes);
    } catch (err) {
      console.warn("identity refused", err);
      return;
    }
    await this.h.keepIdentity?.(this.identity);
    await this.publishKeys(this.h.keepIdentity || (() => {}));
  }

  // -- key backup (SPEC.md §9.9, §11.7)

  /** Add keys to the backup, if this device keeps one up to date. */
  backUp(keys) {
    if (!this.backup || !keys.length) return Promise.resolve();
    return this.uploadEntries(this.backup, keys).catch((err) => {
      // Replaced by a new backup made on a device not linked with this one: its key is
      // not ours; stop writing what nobody could read (SPEC.md §9.9).
      if (err.reason === "backup_replaced" || err.reason === "no_backup") {
        this.backup = null;
        this.save();
      } else console.info("key backup", err);
    });
  }

  /** Every key held, and the identity secret if this device holds it. */
  async backUpEverything() {
    await this.uploadEntries(this.backup, this.exportKeys());
    if (this.identity) {
      const [id, data] = sealIdentityEntry(this.backup.key, this.identity.toBytes());
      await this.rest.call("POST", "/v1/keys/backup/entries", { version: this.backup.version, entries: [{ id, data: toB64(data) }] });
    }
  }

  async uploadEntries(backup, keys) {
    for (let at = 0; at < keys.length; at += 500) {
      const entries = keys.slice(at, at + 500).map((k) => {
        const [id, data] = sealEntry(backup.key, k);
        return { id, data: toB64(data) };
      });
      await this.rest.call("POST", "/v1/keys/backup/entries", { version: backup.version, entries });
    }
  }

  /** The account's backup parameters, or null if it has none. */
  async backupInfo() {
    try {
      return await this.rest.call("GET", "/v1/keys/backup");
    } catch (err) {
      if (err.status === 404) return null;
      throw err;
    }
  }

  /** A new backup of every key held (replacing any previous one), kept up to date from
   * here; returns the recovery phrase, to show once. */
  async setUpBackup() {
    const phrase = newPhrase();
    const params = { salt: randomBytes(16), opslimit: BACKUP_OPSLIMIT, memlimit: BACKUP_MEMLIMIT };
    const key = deriveBackupKey(phrase, params);
    const created = await this.rest.call("PUT", "/v1/keys/backup", {
      salt: toB64(params.salt), opslimit: params.opslimit, memlimit: params.memlimit, check: toB64(backupCheck(key)),
    });
    this.backup = { version: created.version, key };
    await this.save();
    await this.backUpEverything();
    // The linked devices keep the backup up to date too: they get its key.
    for (const device of this.linked) {
      const bundle = await this.bundleOf(this.userId, device);
      if (!bundle) continue; // revoked since
      const payload = { type: "backup_key", from: this.deviceId, to: device, backup: this.backup };
      await this.client.toDevice(this.userId, device, seal(this.keys, bundle.boxPublic, payload)).catch((err) => console.info("backup key", err));
    }
    return phrase;
  }

  /** Import the backup's keys with the recovery phrase; false if it is not the phrase. */
  async restoreBackup(phrase) {
    const info = await this.backupInfo();
    if (!info) return false;
    let key;
    try {
      key = deriveBackupKey(phrase, { salt: fromB64(info.salt), opslimit: info.opslimit, memlimit: info.memlimit });
    } catch (err) {
      if (err instanceof CryptoError) return false;
      throw err;
    }
    if (!equal(backupCheck(key), fromB64(info.check))) return false;
    const keys = [];
    const identityId = identityEntryId(key);
    let identity = null;
    let after = "";
    for (;;) {
      const page = await this.rest.call("GET", `/v1/keys/backup/entries?version=${encodeURIComponent(info.version)}&after=${after}`);
      for (const e of page.entries) {
        try {
          if (e.id === identityId) identity = openIdentityEntry(key, fromB64(e.data));
          else keys.push(openEntry(key, e.id, fromB64(e.data)));
        } catch (err) {
          console.warn("backup entry refused", err);
        }
      }
      if (!page.next) break;
      after = page.next;
    }
    this.backup = { version: info.version, key };
    await this.stopWaiting();
    this.gotKeys(keys);
    if (identity) await this.adoptIdentity(identity); // this device is verified again
    await this.backUpEverything();
    return true;
  }

  async onKeyRequest(item) {
    let room, sid;
    try {
      [room, sid] = parseKeyRequest(item.body);
    } catch {
      return;
    }
    const out = this.outbound.get(room);
    if (!out || (sid && !equal(sid, out.initial.sessionId))) return;
    const invitedAt = this.promoted.get(room)?.get(item.user);
    const promoted = invitedAt !== undefined && out.afterSeq >= invitedAt;
    if (!out.recipients.has(`${item.user}|${item.device}`) && !promoted) return;
    const bundle = await this.bundleOf(item.user, item.device);
    const info = await this.client.roomGet(room);
    if (!bundle || !(info.members || []).some((m) => m.user === item.user)) return;
    await this.client.toDevice(item.user, item.device, shareSenderKey(this.keys, out.initial, item.device, bundle.boxPublic));
  }
}

/** The user's identity secret (cross-signing) from IndexedDB, or null if this browser
 * does not hold it. */
export async function loadIdentity(store, userId) {
  const saved = await store.get(`identity:${userId}`);
  return saved ? IdentityKeys.fromBytes(saved) : null;
}

/** This device's keys from IndexedDB, created (and stored) on first use. */
export async function loadOrCreateKeys(store, name) {
  const saved = await store.get(name);
  if (saved) return DeviceKeys.fromBytes(saved);
  const keys = DeviceKeys.generate();
  await store.put(name, keys.toBytes());
  return keys;
}
