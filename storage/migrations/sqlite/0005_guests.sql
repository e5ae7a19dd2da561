-- Guests: e-mail addresses invited into a room, promoted to members when an account
-- confirms the address (storage/guests.py has the states and their transitions).
CREATE TABLE guests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id     TEXT NOT NULL REFERENCES rooms (id),
    email       TEXT NOT NULL,  -- normalised: trimmed, lower-case
    invited_by  TEXT NOT NULL REFERENCES users (id),
    invited_at  INTEGER NOT NULL,
    invited_seq INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    reminders   INTEGER NOT NULL DEFAULT 0,
    notified_at INTEGER NOT NULL,
    user_id     TEXT REFERENCES users (id),
    resolved_at INTEGER
);
CREATE UNIQUE INDEX guests_pending ON guests (room_id, email) WHERE state = 'pending';
CREATE INDEX guests_email ON guests (email, state);
