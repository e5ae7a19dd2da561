// End-to-end encryption formats of protocol/SPEC.md §11, byte for byte as
// protocol/crypto/ writes them (checked against protocol/vectors/ by tests/web).
// Pure functions and small classes over libsodium and @noble/hashes: no I/O here.
import sodiumModule from "/vendor/libsodium-wrappers-sumo/libsodium-wrappers.mjs";
import { blake2b } from "/vendor/noble-hashes/blake2.js";
import { decode, encode } from "./codec.js";

export const sodiumReady = sodiumModule.ready;
let sodium = null;

/** Resolve once libsodium's WebAssembly is loaded; call before anything else here. */
export async function ready() {
  await sodiumReady;
  sodium = sodiumModule;
  return sodium;
}

export class CryptoError extends Error {
  constructor(kind, message) {
    super(`${kind}: ${message}`);
    this.kind = kind; // UnknownSession, BadSignature, Tampered, Truncated, Replayed, ...
  }
}

const te = new TextEncoder();
export const utf8 = (s) => te.encode(s);
const td = new TextDecoder("utf-8", { fatal: true });
export const fromUtf8 = (b) => td.decode(b);

export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equal(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export function unhex(s) {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
  return out;
}

function person(text) {
  const out = new Uint8Array(16); // PyNaCl pads the personalisation with zeros
  out.set(utf8(text));
  return out;
}

// BLAKE2b with a personalisation (the ratchet, seeds, safety numbers): libsodium.js's
// wrapper of crypto_generichash_blake2b_salt_personal hashes no input (it passes a null
// message), so @noble/hashes computes it; the test vectors pin the two together.
function blake(data, { key, personal, size = 32 }) {
  const opts = { dkLen: size, personalization: person(personal) };
  if (key) opts.key = key;
  return blake2b(data, opts);
}

const u32be = (n) => new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const readU32be = (b, at) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

/** len16(s): the UTF-8 length on 2 bytes, big-endian, then the bytes. */
export function lp(text) {
  const raw = utf8(text);
  return concat(new Uint8Array([raw.length >> 8, raw.length & 255]), raw);
}

function checkKey(value, what, size = 32) {
  if (!(value instanceof Uint8Array) || value.length !== size) {
    throw new CryptoError("BadKey", `${what} must be ${size} bytes`);
  }
  return value;
}

// -- §11.1 device keys and bundles

const BUNDLE_CONTEXT = utf8("confrere/bundle");

export class DeviceKeys {
  constructor(boxSecret, signSeed) {
    this.boxSecret = checkKey(boxSecret, "X25519 secret key");
    this.signSeed = checkKey(signSeed, "Ed25519 seed");
    this.boxPublic = sodium.crypto_scalarmult_base(this.boxSecret);
    const pair = sodium.crypto_sign_seed_keypair(this.signSeed);
    this.signPublic = pair.publicKey;
    this.signSecret = pair.privateKey;
  }

  static generate() {
    return new DeviceKeys(sodium.randombytes_buf(32), sodium.randombytes_buf(32));
  }

  /** Deterministic keys from a 32-byte seed (test vectors). */
  static fromSeed(seed) {
    checkKey(seed, "seed");
    return new DeviceKeys(
      blake(utf8("x25519"), { key: seed, personal: "confrere-seed" }),
      blake(utf8("ed25519"), { key: seed, personal: "confrere-seed" }),
    );
  }

  /** The key file format: 0x01 || x25519 secret || ed25519 seed. */
  static fromBytes(data) {
    if (!data || data.length !== 65) throw new CryptoError("Truncated", "key file must be 65 bytes");
    if (data[0] !== 1) throw new CryptoError("BadVersion", `unknown key file version ${data[0]}`);
    return new DeviceKeys(data.slice(1, 33), data.slice(33, 65));
  }

  toBytes() {
    return concat(new Uint8Array([1]), this.boxSecret, this.signSeed);
  }

  sign(message) {
    return sodium.crypto_sign_detached(message, this.signSecret);
  }

  bundle(userId, deviceId) {
    const payload = encode([userId, deviceId, this.boxPublic, this.signPublic]);
    const signature = this.sign(concat(BUNDLE_CONTEXT, new Uint8Array([1]), payload));
    return concat(new Uint8Array([1]), signature, payload);
  }
}

export function verify(signPublic, message, signature, what) {
  checkKey(signPublic, "Ed25519 public key");
  let ok = false;
  try {
    ok = signature.length === 64 && sodium.crypto_sign_verify_detached(signature, message, signPublic);
  } catch {
    ok = false;
  }
  if (!ok) throw new CryptoError("BadSignature", `${what}: signature does not verify`);
}

/** Parse and verify a bundle: {userId, deviceId, boxPublic, signPublic}. */
export function parseBundle(data) {
  if (!(data instanceof Uint8Array) || data.length === 0) throw new CryptoError("Truncated", "empty key bundle");
  if (data[0] !== 1) throw new CryptoError("BadVersion", `unknown key bundle version ${data[0]}`);
  if (data.length > 1024 || data.length < 66) throw new CryptoError("Truncated", "key bundle size");
  const signature = data.slice(1, 65);
  const payload = data.slice(65);
  let fields;
  try {
    fields = decode(payload);
  } catch {
    throw new CryptoError("Truncated", "key bundle payload is not valid msgpack");
  }
  if (!Array.isArray(fields) || fields.length !== 4 || typeof fields[0] !== "string" || typeof fields[1] !== "string" || !fields[0] || !fields[1]) {
    throw new CryptoError("Truncated", "key bundle payload must be [user, device, box key, signing key]");
  }
  const [userId, deviceId, boxPublic, signPublic] = fields;
  checkKey(boxPublic, "X25519 public key");
  checkKey(signPublic, "Ed25519 public key");
  verify(signPublic, concat(BUNDLE_CONTEXT, new Uint8Array([1]), payload), signature, "key bundle");
  return { userId, deviceId, boxPublic, signPublic, bytes: data };
}

// -- §11.1 cross-signing (protocol/crypto/identity.py): a user's identity key signs
// the bundles of that user's devices; a device without that signature is unverified.

const IDENTITY_CONTEXT = utf8("confrere/identity");
const DEVICE_CONTEXT = utf8("confrere/device");

export class IdentityKeys {
  constructor(seed) {
    this.seed = checkKey(seed, "identity seed");
    const pair = sodium.crypto_sign_seed_keypair(this.seed);
    this.public = pair.publicKey;
    this.secret = pair.privateKey;
  }

  static generate() {
    return new IdentityKeys(sodium.randombytes_buf(32));
  }

  /** Deterministic identity from a 32-byte seed (test vectors). */
  static fromSeed(seed) {
    checkKey(seed, "seed");
    return new IdentityKeys(blake(utf8("identity"), { key: seed, personal: "confrere-seed" }));
  }

  /** The identity file format: 0x01 || Ed25519 seed. */
  static fromBytes(data) {
    if (!data || data.length !== 33) throw new CryptoError("Truncated", "identity file must be 33 bytes");
    if (data[0] !== 1) throw new CryptoError("BadVersion", `unknown identity file version ${data[0]}`);
    return new IdentityKeys(data.slice(1));
  }

  toBytes() {
    return concat(new Uint8Array([1]), this.seed);
  }

  /** The self-signed record publishing this key as `userId`'s (keys.upload `identity`). */
  record(userId) {
    const payload = encode([userId, this.public]);
    const signature = sodium.crypto_sign_detached(concat(IDENTITY_CONTEXT, new Uint8Array([1]), payload), this.secret);
    return concat(new Uint8Array([1]), signature, payload);
  }
}

function splitSigned(data, what, limit = 512) {
  if (!(data instanceof Uint8Array) || data.length === 0) throw new CryptoError("Truncated", `empty ${what}`);
  if (data[0] !== 1) throw new CryptoError("BadVersion", `unknown ${what} version ${data[0]}`);
  if (data.length > limit || data.length < 66) throw new CryptoError("Truncated", `${what} size`);
  let fields;
  try {
    fields = decode(data.slice(65));
  } catch {
    throw new CryptoError("Truncated", `${what} payload is not valid msgpack`);
  }
  return { signature: data.slice(1, 65), payload: data.slice(65), fields };
}

/** Parse and verify (self-signature) an identity record: {userId, public}. */
export function parseIdentity(data) {
  const { signature, payload, fields } = splitSigned(data, "identity record");
  if (!Array.isArray(fields) || fields.length !== 2 || typeof fields[0] !== "string" || !fields[0]) {
    throw new CryptoError("Truncated", "identity record payload must be [user, identity key]");
  }
  const publicKey = checkKey(fields[1], "identity public key");
  verify(publicKey, concat(IDENTITY_CONTEXT, new Uint8Array([1]), payload), signature, "identity record");
  return { userId: fields[0], public: publicKey, bytes: data };
}

/** Parse a device signature (format only; verifyDevice checks it): {userId, deviceId, signature}. */
export function parseDeviceSignature(data) {
  const { signature, fields } = splitSigned(data, "device signature");
  if (!Array.isArray(fields) || fields.length !== 2 || !fields.every((f) => typeof f === "string" && f)) {
    throw new CryptoError("Truncated", "device signature payload must be [user, device]");
  }
  return { userId: fields[0], deviceId: fields[1], signature, bytes: data };
}

const deviceMessage = (identityPublic, bundle) => concat(DEVICE_CONTEXT, new Uint8Array([1]), identityPublic, bundle.bytes.slice(65));

/** The identity's signature of a (verified) bundle of its own user: the device
 * signature bytes (keys.upload `signature`, keys.sign). */
export function signDevice(identity, bundle) {
  const signature = sodium.crypto_sign_detached(deviceMessage(identity.public, bundle), identity.secret);
  return concat(new Uint8Array([1]), signature, encode([bundle.userId, bundle.deviceId]));
}

/** Throw BadSignature unless `signature` (parsed) is `identity`'s (parsed record) over `bundle`. */
export function verifyDevice(identity, bundle, signature) {
  if (identity.userId !== bundle.userId || signature.userId !== bundle.userId || signature.deviceId !== bundle.deviceId) {
    throw new CryptoError("BadSignature", "device signature: it names another user or device");
  }
  verify(identity.public, deviceMessage(identity.public, bundle), signature.signature, "device signature");
}

/** Whether `bundle` carries a valid signature (bytes or null) of its user's identity (parsed or null). */
export function deviceVerified(identity, bundle, signatureBytes) {
  if (!identity || !signatureBytes) return false;
  try {
    verifyDevice(identity, bundle, parseDeviceSignature(signatureBytes));
    return true;
  } catch {
    return false;
  }
}

// -- §11.2 sender keys

export const MAX_SKIP = 2000;
const HEADER_SIZE = 1 + 16 + 4 + 24;
const MSG_CONTEXT = utf8("confrere/msg");

export const messageKey = (chain) => blake(new Uint8Array([1]), { key: chain, personal: "confrere-ratchet" });
export const nextChain = (chain) => blake(new Uint8Array([2]), { key: chain, personal: "confrere-ratchet" });
const msgContext = (roomId, deviceId, header) => concat(MSG_CONTEXT, lp(roomId), lp(deviceId), header);

export function parseMessage(data) {
  if (!(data instanceof Uint8Array) || data.length === 0) throw new CryptoError("Truncated", "empty message");
  if (data[0] !== 1) throw new CryptoError("BadVersion", `unknown message version ${data[0]}`);
  if (data.length < HEADER_SIZE + 16 + 64) throw new CryptoError("Truncated", "message too short");
  return { sessionId: data.slice(1, 17), index: readU32be(data, 17), nonce: data.slice(21, HEADER_SIZE) };
}

/** The sending side of one sender key (this device, one room). */
export class OutboundSession {
  constructor(roomId, deviceId, keys, { sessionId, chainKey, index = 0 } = {}) {
    this.roomId = roomId;
    this.deviceId = deviceId;
    this.keys = keys;
    this.sessionId = checkKey(sessionId || sodium.randombytes_buf(16), "session id", 16);
    this.chainKey = checkKey(chainKey || sodium.randombytes_buf(32), "chain key");
    this.index = index;
  }

  senderKey() {
    return {
      roomId: this.roomId,
      deviceId: this.deviceId,
      sessionId: this.sessionId,
      chainKey: this.chainKey,
      index: this.index,
      signPublic: this.keys.signPublic,
    };
  }

  encrypt(plaintext, nonce) {
    nonce = checkKey(nonce || sodium.randombytes_buf(24), "nonce", 24);
    const header = concat(new Uint8Array([1]), this.sessionId, u32be(this.index), nonce);
    const context = msgContext(this.roomId, this.deviceId, header);
    const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
      plaintext, context, null, nonce, messageKey(this.chainKey),
    );
    const signature = this.keys.sign(concat(context, ciphertext));
    this.chainKey = nextChain(this.chainKey);
    this.index += 1;
    return concat(header, ciphertext, signature);
  }
}

/** The receiving side of one sender key (one sender device, one room). */
export class InboundSession {
  constructor(key) {
    this.key = key;
    this.firstIndex = key.index;
    this.chain = key.chainKey; // chain at index this.next
    this.next = key.index;
    this.skipped = new Map(); // index -> message key, oldest first
  }

  decrypt(roomId, deviceId, data) {
    const head = parseMessage(data);
    if (!equal(head.sessionId, this.key.sessionId)) throw new CryptoError("UnknownSession", "message of another sender key");
    if (roomId !== this.key.roomId || deviceId !== this.key.deviceId) {
      throw new CryptoError("UnknownSession", "this sender key belongs to another room or device");
    }
    const body = data.slice(0, data.length - 64);
    const signature = data.slice(data.length - 64);
    const context = msgContext(roomId, deviceId, body.slice(0, HEADER_SIZE));
    verify(this.key.signPublic, concat(context, body.slice(HEADER_SIZE)), signature, "message");
    const index = head.index;
    if (index < this.firstIndex) throw new CryptoError("UnknownSession", `message ${index} precedes the sender key we hold`);
    const skipped = [];
    let chain = this.chain;
    let key;
    if (index < this.next) {
      key = this.skipped.get(index);
      if (!key) throw new CryptoError("Replayed", `message ${index} was already decrypted (or is too old)`);
    } else {
      if (index - this.next > MAX_SKIP) throw new CryptoError("TooFarAhead", `message ${index} is too far ahead`);
      for (let i = this.next; i < index; i++) {
        skipped.push([i, messageKey(chain)]);
        chain = nextChain(chain);
      }
      key = messageKey(chain);
      chain = nextChain(chain);
    }
    let plaintext;
    try {
      plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, body.slice(HEADER_SIZE), context, head.nonce, key);
    } catch {
      throw new CryptoError("Tampered", "message does not authenticate");
    }
    if (index < this.next) {
      this.skipped.delete(index);
    } else {
      for (const [i, k] of skipped) this.skipped.set(i, k);
      this.chain = chain;
      this.next = index + 1;
      while (this.skipped.size > MAX_SKIP) this.skipped.delete(this.skipped.keys().next().value);
    }
    return [index, plaintext];
  }
}

// -- §11.3 to-device payloads

export function seal(sender, recipientBoxPublic, payload, nonce) {
  checkKey(recipientBoxPublic, "X25519 public key");
  nonce = checkKey(nonce || sodium.randombytes_buf(24), "nonce", 24);
  const boxed = sodium.crypto_box_easy(encode(payload), nonce, recipientBoxPublic, sender.boxSecret);
  return concat(new Uint8Array([1]), nonce, boxed);
}

export function openSealed(recipient, recipientDevice, senderBundle, data) {
  if (!(data instanceof Uint8Array) || data.length === 0) throw new CryptoError("Truncated", "empty to-device payload");
  if (data[0] !== 1) throw new CryptoError("BadVersion", `unknown to-device payload version ${data[0]}`);
  if (data.length < 1 + 24 + 16) throw new CryptoError("Truncated", "to-device payload too short");
  let plaintext;
  try {
    plaintext = sodium.crypto_box_open_easy(data.slice(25), data.slice(1, 25), senderBundle.boxPublic, recipient.boxSecret);
  } catch {
    throw new CryptoError("Tampered", "to-device payload does not authenticate");
  }
  let payload;
  try {
    payload = decode(plaintext);
  } catch {
    throw new CryptoError("Truncated", "to-device payload is not a msgpack map");
  }
  if (!payload || typeof payload !== "object" || typeof payload.type !== "string") {
    throw new CryptoError("Truncated", "to-device payload is not a typed map");
  }
  if (payload.from !== senderBundle.deviceId || payload.to !== recipientDevice) {
    throw new CryptoError("BadSignature", "to-device payload names other devices than its sender/recipient");
  }
  return payload;
}

export function senderKeyPayload(key, recipientDevice) {
  // Key order as protocol/crypto/share.py, so the bytes match the vectors.
  return {
    type: "sender_key",
    from: key.deviceId,
    to: recipientDevice,
    room: key.roomId,
    sid: key.sessionId,
    ck: key.chainKey,
    i: key.index,
    spk: key.signPublic,
  };
}

export const shareSenderKey = (sender, key, recipientDevice, recipientBoxPublic, nonce) =>
  seal(sender, recipientBoxPublic, senderKeyPayload(key, recipientDevice), nonce);

export function openSenderKey(payload, senderBundle) {
  if (payload.type !== "sender_key") throw new CryptoError("Truncated", "not a sender key payload");
  const { room, sid, ck, i, spk } = payload;
  if (typeof room !== "string" || !room) throw new CryptoError("Truncated", "sender key payload: 'room' must be a string");
  if (!Number.isInteger(i) || i < 0 || i > 0xffffffff) throw new CryptoError("Truncated", "sender key payload: 'i' must be an integer");
  if (!equal(spk, senderBundle.signPublic)) {
    throw new CryptoError("BadSignature", "sender key signed by another key than the device's published one");
  }
  return {
    roomId: room,
    deviceId: senderBundle.deviceId,
    sessionId: checkKey(sid, "session id", 16),
    chainKey: checkKey(ck, "chain key"),
    index: i,
    signPublic: senderBundle.signPublic,
  };
}

export function keyRequest(roomId, sessionId) {
  const payload = { type: "key_request", room: roomId };
  if (sessionId) payload.sid = sessionId;
  return concat(new Uint8Array([0]), encode(payload));
}

export function parseKeyRequest(data) {
  if (!data.length || data[0] !== 0) throw new CryptoError("BadVersion", "not a key request");
  let payload;
  try {
    payload = decode(data.slice(1));
  } catch {
    throw new CryptoError("Truncated", "key request is not msgpack");
  }
  if (!payload || payload.type !== "key_request" || typeof payload.room !== "string") {
    throw new CryptoError("Truncated", "not a key request");
  }
  if (payload.sid != null && !(payload.sid instanceof Uint8Array)) throw new CryptoError("Truncated", "malformed key request");
  return [payload.room, payload.sid || null];
}

// -- §11.4 patient-case headers

export function wrapHeader(deviceId, sealed) {
  return concat(new Uint8Array([1]), lp(deviceId), sealed);
}

export function unwrapHeader(blob) {
  if (!blob || blob[0] !== 1 || blob.length < 3) throw new CryptoError("Truncated", "not an encrypted header");
  const size = (blob[1] << 8) | blob[2];
  return { deviceId: fromUtf8(blob.slice(3, 3 + size)), sealed: blob.slice(3 + size) };
}

// -- §11.5 safety numbers

function safetyHalf(userId, keys) {
  const material = concat(...keys.map((k) => checkKey(k, "Ed25519 public key")).sort(compareBytes));
  if (!material.length) throw new Error("a safety number needs at least one key per user");
  let digest = concat(new Uint8Array([1]), lp(userId), material);
  for (let n = 0; n < 1024; n++) digest = blake(concat(digest, material), { personal: "confrere-safety", size: 64 });
  let out = "";
  for (let k = 0; k < 6; k++) {
    let v = 0n;
    for (const byte of digest.slice(5 * k, 5 * k + 5)) v = (v << 8n) | BigInt(byte);
    out += (v % 100000n).toString().padStart(5, "0");
  }
  return out;
}

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export function safetyNumber(userA, keysA, userB, keysB) {
  return [safetyHalf(userA, keysA), safetyHalf(userB, keysB)].sort().join("");
}

export const formatSafetyNumber = (n) => n.match(/.{1,5}/g).join(" ");

// -- §11.6 attachments

export const CHUNK = 64 * 1024;
export const MAX_ATTACHMENT = 50 * 1024 * 1024;
const ATT_AD = concat(utf8("confrere/att"), new Uint8Array([1]));

export const ciphertextSize = (n) => 25 + n + 17 * Math.max(1, Math.ceil(n / CHUNK));

const MAGIC = [
  [new Uint8Array([0x25, 0x50, 0x44, 0x46, 0x2d]), "application/pdf"],
  [new Uint8Array([0xff, 0xd8, 0xff]), "image/jpeg"],
  [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), "image/png"],
];

/** The content type the first bytes announce (PDF, JPEG, PNG), or null. */
export function sniff(head) {
  for (const [magic, type] of MAGIC) {
    if (head.length >= magic.length && equal(head.slice(0, magic.length), magic)) return type;
  }
  return null;
}

export const newFileKey = () => sodium.randombytes_buf(32);

/** Encrypt a whole file; onChunk(done, total) reports progress. Returns the stream. */
export function encryptFile(key, plaintext, onChunk) {
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(checkKey(key, "attachment key"));
  const parts = [new Uint8Array([1]), header];
  const chunks = Math.max(1, Math.ceil(plaintext.length / CHUNK));
  for (let c = 0; c < chunks; c++) {
    const last = c === chunks - 1;
    const tag = last
      ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
      : sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    parts.push(sodium.crypto_secretstream_xchacha20poly1305_push(state, plaintext.subarray(c * CHUNK, (c + 1) * CHUNK), ATT_AD, tag));
    if (onChunk) onChunk(c + 1, chunks);
  }
  return concat(...parts);
}

/** Decrypt a whole stream; throws unless every chunk authenticates and the last is FINAL. */
export function decryptFile(key, data) {
  if (!data || data.length < 25) throw new CryptoError("Truncated", "attachment stream ends inside its header");
  if (data[0] !== 1) throw new CryptoError("BadVersion", `attachment stream version ${data[0]} is unknown`);
  let state;
  try {
    state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(data.slice(1, 25), checkKey(key, "attachment key"));
  } catch {
    throw new CryptoError("Tampered", "attachment header refused");
  }
  const out = [];
  let at = 25;
  let final = false;
  while (at < data.length) {
    if (final) throw new CryptoError("Tampered", "attachment stream continues after its final chunk");
    const chunk = data.subarray(at, at + CHUNK + 17);
    at += chunk.length;
    const res = sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, ATT_AD);
    if (!res) throw new CryptoError("Tampered", "attachment chunk failed authentication");
    if (res.tag === sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL) final = true;
    else if (res.tag !== sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
      throw new CryptoError("Tampered", "attachment chunk has an unexpected tag");
    }
    out.push(res.message);
  }
  if (!final) throw new CryptoError("Truncated", "attachment stream ends before its final chunk");
  return concat(...out);
}

export const sha256 = (data) => sodium.crypto_hash_sha256(data);
export const randomBytes = (n) => sodium.randombytes_buf(n);

/** A random url-safe id of 16 characters (cids), as the reference client makes. */
export function randomId() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return Array.from(sodium.randombytes_buf(16), (b) => alphabet[b & 63]).join("");
}

// -- message content (§11.2) and attachment references (§11.6)

export const MAX_QUOTE_CHARS = 200; // of the excerpt a reply quotes (SPEC.md §11.2)
const MAX_MENTIONS = 50;

/** A message's plaintext (SPEC.md §11.2); `edits`: the seq of the message an edit
 * replaces, or null; `reply`: {seq, sender, text} of the message it answers, or null;
 * `mentions`: user ids of the members it names; `forwarded`: sent on from another
 * conversation. */
export function encodeContent(text, files = [], edits = null, reply = null, mentions = [], forwarded = false) {
  const content = { v: 1, type: "text", text };
  if (files.length) content.files = files.map(refToWire);
  if (edits != null) content.edits = edits;
  if (reply) content.reply = { seq: reply.seq, sender: reply.sender, text: reply.text };
  if (mentions.length) content.mentions = [...new Set(mentions)];
  if (forwarded) content.forwarded = true;
  return encode(content);
}

const isSeq = (n) => Number.isSafeInteger(n) && n > 0;
const isId = (s) => typeof s === "string" && s.length > 0 && s.length <= 64;

export function decodeContent(plaintext) {
  let content;
  try {
    content = decode(plaintext);
  } catch {
    throw new CryptoError("Truncated", "not msgpack");
  }
  if (!content || typeof content !== "object" || Array.isArray(content)) throw new CryptoError("Truncated", "not a text message");
  if ((content.v ?? 1) !== 1) throw new CryptoError("BadVersion", "message content version is unknown");
  const files = content.files ?? [];
  if (typeof content.text !== "string") throw new CryptoError("Truncated", "not a text message");
  if (!Array.isArray(files) || files.length > 10) throw new CryptoError("Truncated", "bad 'files'");
  const edits = content.edits ?? null;
  if (edits !== null && !isSeq(edits)) throw new CryptoError("Truncated", "bad 'edits'");
  const reply = content.reply ?? null;
  if (reply !== null && !(reply && typeof reply === "object" && isSeq(reply.seq) && isId(reply.sender) && typeof reply.text === "string" && reply.text.length <= 1000)) {
    throw new CryptoError("Truncated", "bad 'reply'");
  }
  const forwarded = content.forwarded ?? false;
  if (typeof forwarded !== "boolean") throw new CryptoError("Truncated", "bad 'forwarded'");
  const mentions = content.mentions ?? [];
  if (!Array.isArray(mentions) || mentions.length > MAX_MENTIONS || !mentions.every(isId)) throw new CryptoError("Truncated", "bad 'mentions'");
  return {
    text: content.text,
    files: files.map(refFromWire),
    edits,
    reply: reply && { seq: reply.seq, sender: reply.sender, text: reply.text },
    mentions,
    forwarded,
  };
}

export function refToWire(ref) {
  const wire = { v: 1, id: ref.id, key: ref.key, sha256: ref.sha256, size: ref.size, type: ref.type };
  if (ref.name) wire.name = ref.name;
  return wire;
}

export function refFromWire(wire) {
  if (!wire || typeof wire !== "object") throw new CryptoError("Truncated", "an attachment reference is a map");
  if (wire.v !== 1) throw new CryptoError("BadVersion", "attachment reference version is unknown");
  const { id, key, sha256: sha, size, type, name } = wire;
  if (typeof id !== "string" || !id || id.length > 64) throw new CryptoError("Truncated", "attachment reference: bad 'id'");
  checkKey(key, "attachment key");
  if (!(sha instanceof Uint8Array) || sha.length !== 32) throw new CryptoError("Truncated", "attachment reference: bad 'sha256'");
  if (!Number.isInteger(size) || size < 0 || size > MAX_ATTACHMENT) throw new CryptoError("Truncated", "attachment reference: bad 'size'");
  if (!MAGIC.some(([, t]) => t === type)) throw new CryptoError("Truncated", "attachment reference: bad 'type'");
  if (name != null && (typeof name !== "string" || !name || name.length > 255)) throw new CryptoError("Truncated", "attachment reference: bad 'name'");
  return { id, key, sha256: sha, size, type, name: name ?? null };
}

// -- §11.7 key backup and device linking (protocol/crypto/backup.py, linking.py)

export const PHRASE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";
const PHRASE_CHARS = 24;
export const BACKUP_OPSLIMIT = 3;
export const BACKUP_MEMLIMIT = 64 * 1024 * 1024;

/** A fresh recovery phrase: six groups of four characters (120 random bits). */
export function newPhrase() {
  const raw = sodium.randombytes_buf(15);
  let bits = 0n;
  for (const b of raw) bits = (bits << 8n) | BigInt(b);
  const chars = [];
  for (let i = 0; i < PHRASE_CHARS; i++) chars.push(PHRASE_ALPHABET[Number((bits >> BigInt(5 * i)) & 31n)]);
  const groups = [];
  for (let i = 0; i < PHRASE_CHARS; i += 4) groups.push(chars.slice(i, i + 4).join(""));
  return groups.join("-");
}

/** The 24 characters of a typed phrase (case, spaces and dashes ignored). */
export function normalizePhrase(phrase) {
  const kept = [...String(phrase).toLowerCase()].filter((c) => !" -\t\n".includes(c)).join("");
  if (kept.length !== PHRASE_CHARS || [...kept].some((c) => !PHRASE_ALPHABET.includes(c))) {
    throw new CryptoError("BadKey", `a recovery phrase has ${PHRASE_CHARS} letters and digits`);
  }
  return kept;
}

/** Argon2id of the normalized phrase: the 32-byte backup key. */
export function deriveBackupKey(phrase, { salt, opslimit, memlimit }) {
  checkKey(salt, "backup salt", 16);
  if (!(opslimit >= 1 && opslimit <= 10 && memlimit >= 8192 && memlimit <= 256 * 1024 * 1024)) {
    throw new CryptoError("BadKey", "backup parameters out of range");
  }
  return sodium.crypto_pwhash(32, utf8(normalizePhrase(phrase)), salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13);
}

export const backupCheck = (backupKey) => blake(utf8("check"), { key: checkKey(backupKey, "backup key"), personal: "confrere-backup" });

export function entryId(backupKey, roomId, deviceId, sessionId) {
  const data = concat(lp(roomId), lp(deviceId), checkKey(sessionId, "session id", 16));
  return hex(blake(data, { key: checkKey(backupKey, "backup key"), personal: "confrere-bkp-id", size: 16 }));
}

/** A sender key as the msgpack map of backups and room_keys payloads (key order as Python). */
export const senderKeyToWire = (k) => ({ room: k.roomId, device: k.deviceId, sid: k.sessionId, ck: k.chainKey, i: k.index, spk: k.signPublic });

export function senderKeyFromWire(w) {
  if (!w || typeof w !== "object") throw new CryptoError("Truncated", "a sender key is a map");
  if (typeof w.room !== "string" || !w.room || typeof w.device !== "string" || !w.device) {
    throw new CryptoError("Truncated", "a sender key names its room and device");
  }
  if (!Number.isInteger(w.i) || w.i < 0 || w.i > 0xffffffff) throw new CryptoError("Truncated", "a sender key's 'i' is an integer");
  return {
    roomId: w.room,
    deviceId: w.device,
    sessionId: checkKey(w.sid, "session id", 16),
    chainKey: checkKey(w.ck, "chain key"),
    index: w.i,
    signPublic: checkKey(w.spk, "Ed25519 public key"),
  };
}

const entryAd = (id) => concat(utf8("confrere/backup"), new Uint8Array([1]), utf8(id));

function sealValue(backupKey, id, value, nonce) {
  nonce = checkKey(nonce || sodium.randombytes_buf(24), "nonce", 24);
  const sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(encode(value), entryAd(id), null, nonce, backupKey);
  return concat(new Uint8Array([1]), nonce, sealed);
}

function openValue(backupKey, id, data) {
  if (!(data instanceof Uint8Array) || !data.length) throw new CryptoError("Truncated", "empty backup entry");
  if (data[0] !== 1) throw new CryptoError("BadVersion", `unknown backup entry version ${data[0]}`);
  if (data.length < 41 || data.length > 512) throw new CryptoError("Truncated", "backup entry size");
  let plain;
  try {
    plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, data.slice(25), entryAd(id), data.slice(1, 25), backupKey);
  } catch {
    throw new CryptoError("Tampered", "backup entry does not authenticate");
  }
  try {
    return decode(plain);
  } catch {
    throw new CryptoError("Truncated", "backup entry is not msgpack");
  }
}

/** [entry id, entry bytes] for one sender key. */
export function sealEntry(backupKey, key, nonce) {
  const id = entryId(backupKey, key.roomId, key.deviceId, key.sessionId);
  return [id, sealValue(backupKey, id, senderKeyToWire(key), nonce)];
}

export function openEntry(backupKey, id, data) {
  const key = senderKeyFromWire(openValue(backupKey, id, data));
  if (entryId(backupKey, key.roomId, key.deviceId, key.sessionId) !== id) throw new CryptoError("Tampered", "backup entry is not the key its id names");
  return key;
}

/** The entry holding the user's identity secret (its identity file bytes). */
export const identityEntryId = (backupKey) => hex(blake(utf8("identity"), { key: checkKey(backupKey, "backup key"), personal: "confrere-bkp-id", size: 16 }));

export function sealIdentityEntry(backupKey, identityFile, nonce) {
  const id = identityEntryId(backupKey);
  return [id, sealValue(backupKey, id, { identity: identityFile }, nonce)];
}

export function openIdentityEntry(backupKey, data) {
  const value = openValue(backupKey, identityEntryId(backupKey), data);
  if (!value || !(value.identity instanceof Uint8Array)) throw new CryptoError("Truncated", "not the identity entry");
  return value.identity;
}

/** The 12 digits both screens show for a new device's bundle (bytes): "1234 5678 9012". */
export function linkCode(bundleBytes) {
  const payload = bundleBytes.slice(65); // version, signature, then the payload (§11.1)
  const digest = blake(concat(utf8("confrere/link"), new Uint8Array([1]), payload), { personal: "confrere-link" });
  let v = 0n;
  for (const b of digest.slice(0, 8)) v = (v << 8n) | BigInt(b);
  const digits = (v % 10n ** 12n).toString().padStart(12, "0");
  return `${digits.slice(0, 4)} ${digits.slice(4, 8)} ${digits.slice(8)}`;
}

const MAX_KEYS_PLAINTEXT = 60000;
const MAX_KEYS_PER_PAYLOAD = 1000;

/** room_keys payloads carrying `keys`, each small enough for one to-device body. */
export function roomKeysPayloads(keys, senderDevice, recipientDevice) {
  const payloads = [];
  let batch = [];
  let size = 0;
  const flush = () => payloads.push({ type: "room_keys", from: senderDevice, to: recipientDevice, keys: batch });
  for (const k of keys) {
    const wire = senderKeyToWire(k);
    const packed = encode(wire).length;
    if (batch.length && (size + packed > MAX_KEYS_PLAINTEXT || batch.length >= MAX_KEYS_PER_PAYLOAD)) {
      flush();
      batch = [];
      size = 0;
    }
    batch.push(wire);
    size += packed;
  }
  if (batch.length) flush();
  return payloads;
}

export function roomKeysFromPayload(payload) {
  if (payload.type !== "room_keys" || !Array.isArray(payload.keys)) throw new CryptoError("Truncated", "not a room_keys payload");
  if (payload.keys.length > MAX_KEYS_PER_PAYLOAD) throw new CryptoError("Truncated", "too many keys in one payload");
  return payload.keys.map(senderKeyFromWire);
}
