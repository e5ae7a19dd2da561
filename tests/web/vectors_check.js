// Runs in the page (tests/web/test_vectors.py): the browser's crypto against
// protocol/vectors/*.json and the attachment vector; returns a list of failures.
async (v) => {
  const c = await import("/app/crypto.js");
  await c.ready();
  const H = c.unhex;
  const fails = [];
  const check = (name, ok) => { if (!ok) fails.push(name); };
  for (const d of v.keys.devices) {
    const keys = c.DeviceKeys.fromSeed(H(d.seed));
    check(`${d.device} box secret`, c.hex(keys.boxSecret) === d.box_secret);
    check(`${d.device} sign seed`, c.hex(keys.signSeed) === d.sign_seed);
    check(`${d.device} box public`, c.hex(keys.boxPublic) === d.box_public);
    check(`${d.device} sign public`, c.hex(keys.signPublic) === d.sign_public);
    check(`${d.device} bundle`, c.hex(keys.bundle(d.user, d.device)) === d.bundle);
    check(`${d.device} key file`, c.hex(keys.toBytes()) === d.key_file);
    const parsed = c.parseBundle(H(d.bundle));
    check(`${d.device} parse bundle`, parsed.userId === d.user && parsed.deviceId === d.device);
    const forged = H(d.bundle); forged[forged.length - 1] ^= 1;
    try { c.parseBundle(forged); fails.push(`${d.device} forged bundle accepted`); } catch (e) { check("forged kind", e.kind === "BadSignature"); }
  }
  const sk = v.sender_keys;
  const sender = c.DeviceKeys.fromSeed(H(sk.sender.seed));
  const out = new c.OutboundSession(sk.room, sk.sender.device, sender, { sessionId: H(sk.session_id), chainKey: H(sk.messages[0].chain_key), index: 0 });
  const inbound = new c.InboundSession(out.senderKey());
  for (const m of sk.messages) {
    check(`chain ${m.index}`, c.hex(out.chainKey) === m.chain_key);
    check(`message key ${m.index}`, c.hex(c.messageKey(out.chainKey)) === m.message_key);
    const msg = out.encrypt(c.utf8(m.plaintext), H(m.nonce));
    check(`message ${m.index}`, c.hex(msg) === m.message);
  }
  for (const m of [...sk.messages].reverse()) {
    const [index, plain] = inbound.decrypt(sk.room, sk.sender.device, H(m.message));
    check(`decrypt ${m.index}`, index === m.index && c.fromUtf8(plain) === m.plaintext);
  }
  try { inbound.decrypt(sk.room, sk.sender.device, H(sk.messages[0].message)); fails.push("replay accepted"); } catch (e) { check("replay kind", e.kind === "Replayed"); }
  const tampered = H(sk.messages[1].message); tampered[50] ^= 1;
  try { new c.InboundSession(out.senderKey()).decrypt(sk.room, sk.sender.device, tampered); fails.push("tampered accepted"); } catch (e) { check("tampered", e instanceof c.CryptoError); }
  for (const m of sk.contents) {
    const edits = m.edits ?? null;
    const reply = m.reply ?? null;
    const mentions = m.mentions ?? [];
    const forwarded = m.forwarded ?? false;
    check(`content ${m.text}`, c.hex(c.encodeContent(m.text, [], edits, reply, mentions, forwarded)) === m.packed);
    check(`read forwarded ${m.text}`, c.decodeContent(H(m.packed)).forwarded === forwarded);
    const read = c.decodeContent(H(m.packed));
    check(`read content ${m.text}`, read.text === m.text && read.edits === edits && read.files.length === 0);
    check(`read reply ${m.text}`, reply === null ? read.reply === null : read.reply.seq === reply.seq && read.reply.sender === reply.sender && read.reply.text === reply.text);
    check(`read mentions ${m.text}`, JSON.stringify(read.mentions) === JSON.stringify(mentions));
  }
  const header = c.wrapHeader(sk.sender.device, H(sk.messages[0].message));
  check("case header", c.hex(header) === sk.header_of_first_message);
  const sh = v.share;
  const shareSender = c.DeviceKeys.fromSeed(H(sh.sender.seed));
  const key = { roomId: sh.room, deviceId: sh.sender.device, sessionId: H(sh.session_id), chainKey: H(sh.chain_key), index: sh.index, signPublic: shareSender.signPublic };
  const { encode } = await import("/app/codec.js");
  check("share plaintext", c.hex(encode(c.senderKeyPayload(key, sh.recipient.device))) === sh.plaintext);
  const body = c.shareSenderKey(shareSender, key, sh.recipient.device, H(sh.recipient.box_public), H(sh.nonce));
  check("share body", c.hex(body) === sh.body);
  check("key request", c.hex(c.keyRequest(sh.room, H(sh.session_id))) === sh.key_request);
  const recipient = c.DeviceKeys.fromSeed(H(sh.recipient.seed));
  const senderBundle = c.parseBundle(H(sh.sender.bundle));
  const opened = c.openSenderKey(c.openSealed(recipient, sh.recipient.device, senderBundle, H(sh.body)), senderBundle);
  check("open share", opened.roomId === sh.room && c.hex(opened.chainKey) === sh.chain_key && c.hex(opened.sessionId) === sh.session_id);
  const [room, sid] = c.parseKeyRequest(H(sh.key_request));
  check("parse key request", room === sh.room && c.hex(sid) === sh.session_id);
  for (const s of v.safety.vectors) {
    const n = c.safetyNumber(s.user_a, s.keys_a.map(H), s.user_b, s.keys_b.map(H));
    check(`safety ${s.user_a}/${s.user_b}`, n === s.number);
  }
  for (const u of v.identity.users) {
    const id = c.IdentityKeys.fromSeed(H(u.seed));
    check(`${u.user} identity seed`, c.hex(id.seed) === u.identity_seed);
    check(`${u.user} identity public`, c.hex(id.public) === u.identity_public);
    check(`${u.user} identity file`, c.hex(c.IdentityKeys.fromBytes(H(u.identity_file)).toBytes()) === u.identity_file);
    check(`${u.user} identity record`, c.hex(id.record(u.user)) === u.record);
    const record = c.parseIdentity(H(u.record));
    check(`${u.user} parse identity`, record.userId === u.user && c.hex(record.public) === u.identity_public);
    for (const d of u.devices) {
      const bundle = c.parseBundle(H(d.bundle));
      check(`${d.device} device signature`, c.hex(c.signDevice(id, bundle)) === d.signature);
      check(`${d.device} verified`, c.deviceVerified(record, bundle, H(d.signature)));
      const forged = H(d.signature); forged[10] ^= 1;
      check(`${d.device} forged signature refused`, !c.deviceVerified(record, bundle, forged));
    }
  }
  const is = v.identity.safety;
  check("identity safety number", c.safetyNumber(is.user_a, is.keys_a.map(H), is.user_b, is.keys_b.map(H)) === is.number);
  const plain = c.decryptFile(H(v.attachment.key), H(v.attachment.vector));
  check("attachment vector", c.hex(plain) === v.attachment.plain);
  const again = c.encryptFile(H(v.attachment.key), plain);
  check("attachment size", again.length === c.ciphertextSize(plain.length));
  check("attachment round trip", c.hex(c.decryptFile(H(v.attachment.key), again)) === v.attachment.plain);
  const cut = H(v.attachment.vector).slice(0, -1);
  try { c.decryptFile(H(v.attachment.key), cut); fails.push("truncated attachment accepted"); } catch (e) { check("truncated", e instanceof c.CryptoError); }
  // §11.7: key backup (Argon2id, entries) and device linking, as protocol/crypto.
  const bk = v.backup;
  for (const d of bk.derivations) {
    const key = c.deriveBackupKey(d.phrase, { salt: H(d.salt), opslimit: d.opslimit, memlimit: d.memlimit });
    check(`argon2id ${d.phrase}`, c.hex(key) === d.key);
    check(`backup check ${d.phrase}`, c.hex(c.backupCheck(key)) === d.check);
  }
  const e = bk.entry;
  const entryKey = { roomId: e.room, deviceId: e.device, sessionId: H(e.session_id), chainKey: H(e.chain_key), index: e.index, signPublic: H(e.sign_public) };
  const [eid, blob] = c.sealEntry(H(e.backup_key), entryKey, H(e.nonce));
  check("backup entry id", eid === e.id);
  check("backup entry", c.hex(blob) === e.data);
  const opened2 = c.openEntry(H(e.backup_key), e.id, H(e.data));
  check("open backup entry", c.hex(opened2.chainKey) === e.chain_key && opened2.roomId === e.room);
  try { c.openEntry(H(bk.derivations[1].key), e.id, H(e.data)); fails.push("entry opened with another key"); } catch (err) { check("entry wrong key", err.kind === "Tampered"); }
  const ie = bk.identity_entry;
  const [iid, iblob] = c.sealIdentityEntry(H(e.backup_key), H(ie.identity_file), H(ie.nonce));
  check("identity entry", iid === ie.id && c.hex(iblob) === ie.data && c.identityEntryId(H(e.backup_key)) === ie.id);
  check("open identity entry", c.hex(c.openIdentityEntry(H(e.backup_key), H(ie.data))) === ie.identity_file);
  for (const l of bk.link_codes) check(`link code ${l.code}`, c.linkCode(H(l.bundle)) === l.code);
  const rk = c.roomKeysPayloads([entryKey], e.device, v.keys.devices[1].device);
  check("room_keys payload", rk.length === 1 && c.hex(encode(rk[0])) === bk.room_keys_plaintext);
  check("room_keys parse", c.hex(c.roomKeysFromPayload(rk[0])[0].chainKey) === e.chain_key);
  const phrase = c.newPhrase();
  check("new phrase", /^([a-km-z2-9]{4}-){5}[a-km-z2-9]{4}$/.test(phrase) && c.normalizePhrase(phrase.toUpperCase()) === phrase.replaceAll("-", ""));
  return fails;
}
