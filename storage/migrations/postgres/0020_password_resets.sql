-- Password reset codes (one per account, keyed hash) and the index that lists an
-- account's sessions (issue 20: the account lifecycle).
CREATE TABLE password_resets (
    user_id    TEXT PRIMARY KEY REFERENCES users (id),
    code_hash  BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE INDEX sessions_by_user ON sessions (user_id);
