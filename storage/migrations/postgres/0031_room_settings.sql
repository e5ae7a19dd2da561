-- Each member's own settings of a room (SPEC.md §4.21 `room.settings`), synced across
-- its devices: notifications ('all', 'mentions', 'none'), archived, pinned, marked
-- unread (0 or 1). They go with the membership.
ALTER TABLE memberships ADD COLUMN notify TEXT NOT NULL DEFAULT 'all';
ALTER TABLE memberships ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
ALTER TABLE memberships ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE memberships ADD COLUMN marked_unread INTEGER NOT NULL DEFAULT 0;
