-- Key backup (issue 18): each account's client-encrypted sender keys. The server
-- stores ciphertext and the Argon2id parameters only (SPEC.md §11.7).
CREATE TABLE key_backups (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    version     TEXT NOT NULL,
    salt        BYTEA NOT NULL,
    opslimit    INTEGER NOT NULL,
    memlimit    BIGINT NOT NULL,
    check_value BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE key_backup_entries (
    user_id    TEXT NOT NULL REFERENCES key_backups (user_id),
    entry_id   TEXT NOT NULL,
    data       BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, entry_id)
);
