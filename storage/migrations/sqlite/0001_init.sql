-- Confrère schema v1 (SQLite). Ids are random url-safe strings; times are ms since epoch.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    postcode      TEXT NOT NULL,
    city          TEXT NOT NULL,
    specialty     TEXT NOT NULL,
    practice_mode TEXT NOT NULL,
    rpps          TEXT,
    verified      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    device_id  TEXT NOT NULL REFERENCES devices (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE rooms (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT,
    status     TEXT NOT NULL DEFAULT 'open',
    header     BLOB,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    direct_key TEXT UNIQUE  -- "a|b" with a < b, for kind = 'direct' only
);

CREATE TABLE memberships (
    room_id    TEXT NOT NULL REFERENCES rooms (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL,
    joined_seq INTEGER NOT NULL,
    read_seq   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE timeline (
    room_id TEXT NOT NULL REFERENCES rooms (id),
    seq     INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    ts      INTEGER NOT NULL,
    sender  TEXT,
    device  TEXT,
    cid     TEXT,
    body    BLOB,
    meta    BLOB,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX timeline_device_cid ON timeline (device, cid) WHERE cid IS NOT NULL;

CREATE TABLE to_device (
    tid           INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id     TEXT NOT NULL,
    sender_user   TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    ts            INTEGER NOT NULL,
    body          BLOB NOT NULL
);
CREATE INDEX to_device_target ON to_device (device_id, tid);
