-- Cross-signing and device management (issue 18). A user's identity key (its signed
-- record, SPEC.md §11.1), the identity's signature of each device's bundle, when a
-- device was last seen (a connection's hello) and when it was revoked (a revoked device
-- has no session, no keys and no queued to-device messages; its row stays for the ids
-- that name it in timelines).
CREATE TABLE identity_keys (
    user_id    TEXT PRIMARY KEY REFERENCES users (id),
    record     BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE device_keys ADD COLUMN signature BLOB;
ALTER TABLE devices ADD COLUMN last_seen_at INTEGER;
ALTER TABLE devices ADD COLUMN revoked_at INTEGER;
