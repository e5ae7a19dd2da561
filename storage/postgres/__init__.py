"""The directory's PostgreSQL half (see storage.sql for the rest of the store)."""
