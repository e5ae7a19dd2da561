-- Key directory: one signed public key bundle per device (keys.upload / keys.query).
CREATE TABLE device_keys (
    device_id  TEXT PRIMARY KEY REFERENCES devices (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    bundle     BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX device_keys_user ON device_keys (user_id, device_id);

-- Messages clients could not decrypt, counted per room, sender device and reason.
CREATE TABLE decryption_failures (
    room_id    TEXT NOT NULL REFERENCES rooms (id),
    device_id  TEXT NOT NULL,
    reason     TEXT NOT NULL,
    count      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, device_id, reason)
) WITHOUT ROWID;
