-- Edits and deletion for everyone (SPEC.md §4.2 `edits`, §4.20 `msg.delete`).
-- `edits`: seq of the original message (same room) an edit replaces; visible to the
-- server so that only the author edits and a deletion drops the edits' ciphertext too.
-- A deleted message keeps its row as a tombstone: body NULL, deleted_by/deleted_at set.
ALTER TABLE timeline ADD COLUMN edits BIGINT;
ALTER TABLE timeline ADD COLUMN deleted_by TEXT;
ALTER TABLE timeline ADD COLUMN deleted_at BIGINT;
CREATE INDEX timeline_edits ON timeline (room_id, edits) WHERE edits IS NOT NULL;
