-- Room names are end-to-end encrypted by clients (SPEC.md §11.4): the column now holds
-- ciphertext. Names stored in clear before are dropped, not kept readable; an owner or
-- admin renames the room from a client.
ALTER TABLE rooms ALTER COLUMN name TYPE BYTEA USING NULL
