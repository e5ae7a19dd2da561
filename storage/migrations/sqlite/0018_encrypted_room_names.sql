-- Room names are end-to-end encrypted by clients (SPEC.md §11.4): the column now holds
-- ciphertext (BLOB, as PostgreSQL's BYTEA). Names stored in clear before are dropped,
-- not kept readable; an owner or admin renames the room from a client.
ALTER TABLE rooms DROP COLUMN name;
ALTER TABLE rooms ADD COLUMN name BLOB
