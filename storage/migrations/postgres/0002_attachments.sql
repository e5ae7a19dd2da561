-- Attachments: metadata of the files in the blob store (the blob's key is the id).
-- state: 'uploading' (row written before the first byte, so a crash mid-upload leaves
-- a row the orphan sweep finds) -> 'ready' -> 'deleting' (claimed by a deleter; no
-- message may reference it any more). referenced_at: first message that named it.
CREATE TABLE attachments (
    id            TEXT PRIMARY KEY,
    uploader      TEXT NOT NULL REFERENCES users (id),
    room_id       TEXT REFERENCES rooms (id),
    kind          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    name          TEXT,
    size          BIGINT NOT NULL DEFAULT 0,
    sha256        TEXT,
    key_id        TEXT,
    state         TEXT NOT NULL DEFAULT 'uploading',
    created_at    BIGINT NOT NULL,
    referenced_at BIGINT
);
CREATE INDEX attachments_unreferenced ON attachments (created_at) WHERE referenced_at IS NULL;
