-- Confrère schema v1 (PostgreSQL). Ids are random url-safe strings; times are ms since
-- epoch (BIGINT); payloads and event metadata (msgpack) are BYTEA.
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
    verified      BOOLEAN NOT NULL DEFAULT false,
    created_at    BIGINT NOT NULL
);

CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    device_id  TEXT NOT NULL REFERENCES devices (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- last_seq is the per-room counter: writers of a room serialise on this row's lock.
CREATE TABLE rooms (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT,
    status     TEXT NOT NULL DEFAULT 'open',
    header     BYTEA,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL DEFAULT 0,
    direct_key TEXT UNIQUE  -- "a|b" with a < b, for kind = 'direct' only
);

CREATE TABLE memberships (
    room_id    TEXT NOT NULL REFERENCES rooms (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL,
    joined_seq BIGINT NOT NULL,
    read_seq   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- Events have NULL device and cid; NULLs are distinct, so only messages are constrained.
CREATE TABLE timeline (
    room_id TEXT NOT NULL REFERENCES rooms (id),
    seq     BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    ts      BIGINT NOT NULL,
    sender  TEXT,
    device  TEXT,
    cid     TEXT,
    body    BYTEA,
    meta    BYTEA,
    PRIMARY KEY (room_id, seq),
    CONSTRAINT timeline_device_cid UNIQUE (device, cid)
);

CREATE TABLE to_device (
    tid           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id     TEXT NOT NULL,
    sender_user   TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    ts            BIGINT NOT NULL,
    body          BYTEA NOT NULL
);
CREATE INDEX to_device_target ON to_device (device_id, tid);
