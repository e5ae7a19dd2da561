-- Accounts and identity verification (issue 7): e-mail confirmation, consents,
-- profession (practitioner or SAS regulator), Pro Santé Connect flows, manual review
-- requests and their identity documents, regulator sign-up links.
ALTER TABLE users ADD COLUMN email_confirmed BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN profession TEXT NOT NULL DEFAULT 'practitioner';

CREATE TABLE consents (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document    TEXT NOT NULL,
    version     TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, document, version)
);

CREATE TABLE email_codes (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    code_hash  BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE psc_flows (
    state_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX psc_flows_expiry ON psc_flows (expires_at);

CREATE TABLE identity_requests (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document             TEXT NOT NULL,
    issuing_country      TEXT,
    state                TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    decided_at           BIGINT,
    decided_by           TEXT,
    reason               TEXT,
    documents_deleted_at BIGINT
);
CREATE UNIQUE INDEX identity_requests_one_pending ON identity_requests (user_id)
    WHERE state = 'pending';
CREATE INDEX identity_requests_queue ON identity_requests (state, created_at);
CREATE INDEX identity_requests_user ON identity_requests (user_id, created_at);

CREATE TABLE identity_documents (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    side         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    key_id       TEXT NOT NULL,
    request_id   TEXT REFERENCES identity_requests (id),
    state        TEXT NOT NULL,
    staged       BOOLEAN NOT NULL DEFAULT false,
    created_at   BIGINT NOT NULL
);
CREATE INDEX identity_documents_user ON identity_documents (user_id, side);
CREATE INDEX identity_documents_request ON identity_documents (request_id);

CREATE TABLE regulator_links (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    issued_by  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    user_id    TEXT
)
;
