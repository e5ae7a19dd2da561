"""The two migration trees (``storage/migrations/sqlite`` and ``.../postgres``) must give
the same schema: the same tables, columns (name, kind of value, NULL or not), primary
keys, unique rules, foreign keys, indexes (their columns; a partial index's condition
is written in each dialect's terms and not compared) and the events triggers guard.
One store runs on both, so a column or a rule that only one database has is a bug
waiting for the other.

Left out, and only these: what each database's search index is made of (PostgreSQL's
``search_text``/``search`` columns with their GIN and GiST indexes and
``directory_terms`` for pg_trgm; SQLite's FTS5 and R*Tree tables and the SymSpell
``directory_terms_keys``).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from services_pg import PostgresServer, drop_database, fresh_database

from storage import migrations, open_store
from storage.migrations import migration_files

Schema = dict[str, object]

SEARCH_TABLES = {
    "sqlite": {"directory_fts", "directory_geo", "directory_term_keys"},
    "postgres": {"directory_terms"},
}
SEARCH_COLUMNS = {("directory_profiles", "search_text"), ("directory_profiles", "search")}
SEARCH_INDEXES = {
    "directory_profiles_search",
    "directory_profiles_geo",
    "directory_terms_trgm",
}

# Kinds of value: SQLite's declared affinity and PostgreSQL's types meet here.
_SQLITE_KIND = {"TEXT": "text", "INTEGER": "integer", "REAL": "real", "BLOB": "bytes"}
_PG_KIND = {
    "text": "text",
    "bigint": "integer",
    "integer": "integer",
    "boolean": "integer",  # SQLite keeps booleans as 0/1 integers
    "double precision": "real",
    "bytea": "bytes",
}


def _sqlite_schema(path: Path) -> Schema:
    c = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in c.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' AND name <> 'schema_version'"
            )
        ]
        skip = SEARCH_TABLES["sqlite"]
        tables = sorted(n for n in names if not any(n.startswith(s) for s in skip))
        columns, pks, uniques, fks, indexes = set(), set(), set(), set(), set()
        for t in tables:
            pk: list[tuple[int, str]] = []
            for _, name, decl, notnull, _, pkpos in c.execute(f"PRAGMA table_info({t})"):
                kind = _SQLITE_KIND[decl.split()[0].upper()]
                # An INTEGER PRIMARY KEY is the rowid: never NULL whatever it says.
                columns.add((t, name, kind, bool(notnull) or pkpos > 0))
                if pkpos:
                    pk.append((pkpos, name))
            if pk:
                pks.add((t, tuple(n for _, n in sorted(pk))))
            for _, iname, unique, origin, _ in c.execute(f"PRAGMA index_list({t})"):
                cols = tuple(r[2] for r in c.execute(f"PRAGMA index_info({iname})"))
                if origin == "pk":
                    continue
                if unique:
                    uniques.add((t, cols))
                else:
                    indexes.add((t, iname, cols))
            for row in c.execute(f"PRAGMA foreign_key_list({t})"):
                fks.add((t, row[3], row[2], row[4]))
        triggers = {
            (r[0], r[1])
            for r in c.execute("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
        }
        return {
            "tables": tables,
            "columns": columns,
            "primary keys": pks,
            "unique": uniques,
            "foreign keys": fks,
            "indexes": indexes,
            "triggers": _trigger_events(triggers),
        }
    finally:
        c.close()


def _trigger_events(triggers: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """(table, event) of each trigger: what it guards, whatever its language."""
    events = set()
    for table, sql in triggers:
        for event in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
            if re.search(rf"\b{event}\b(?=.*\bON\b)", sql.upper().split(" BEGIN")[0]):
                events.add((table, event))
    return events


async def _postgres_schema(url: str) -> Schema:
    c = await asyncpg.connect(url)
    try:
        skip = SEARCH_TABLES["postgres"]
        tables = sorted(
            r[0]
            for r in await c.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                " AND table_name <> 'schema_version'"
            )
            if r[0] not in skip
        )
        columns = {
            (r[0], r[1], _PG_KIND[r[2]], r[3] == "NO")
            for r in await c.fetch(
                "SELECT table_name, column_name, data_type, is_nullable"
                " FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name = ANY($1::text[])",
                tables,
            )
            if (r[0], r[1]) not in SEARCH_COLUMNS
        }
        pks, uniques, fks = set(), set(), set()
        for r in await c.fetch(
            "SELECT con.contype::text, rel.relname,"
            " ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)"
            "  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),"
            " ref.relname,"
            " ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)"
            "  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)"
            " FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid"
            " LEFT JOIN pg_class ref ON ref.oid = con.confrelid"
            " JOIN pg_namespace ns ON ns.oid = rel.relnamespace WHERE ns.nspname = 'public'"
        ):
            kind, table, cols, ref, ref_cols = r
            if table not in tables:
                continue
            if kind == "p":
                pks.add((table, tuple(cols)))
            elif kind == "u":
                uniques.add((table, tuple(cols)))
            elif kind == "f":
                for col, ref_col in zip(cols, ref_cols, strict=True):
                    fks.add((table, col, ref, ref_col))
        indexes = set()
        for r in await c.fetch(
            "SELECT t.relname, i.relname, ix.indisunique, ix.indisprimary,"
            " ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(n, o)"
            "  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o),"
            " EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.oid)"
            " FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid"
            " JOIN pg_class i ON i.oid = ix.indexrelid"
            " JOIN pg_namespace ns ON ns.oid = t.relnamespace WHERE ns.nspname = 'public'"
        ):
            table, name, unique, primary, cols, of_constraint = r
            if table not in tables or name in SEARCH_INDEXES or primary or of_constraint:
                continue
            if unique:
                uniques.add((table, tuple(cols)))
            else:
                indexes.add((table, name, tuple(cols)))
        triggers = {
            (r[0], r[1])
            for r in await c.fetch(
                "SELECT event_object_table, event_manipulation FROM information_schema.triggers"
                " WHERE trigger_schema = 'public'"
            )
        }
        # TRUNCATE triggers are not in information_schema; SQLite has no TRUNCATE.
        return {
            "tables": tables,
            "columns": columns,
            "primary keys": pks,
            "unique": uniques,
            "foreign keys": fks,
            "indexes": indexes,
            "triggers": triggers,
        }
    finally:
        await c.close()


async def test_both_migration_trees_give_the_same_schema(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    sqlite_path = tmp_path / "schema.db"
    store = await open_store(f"sqlite:///{sqlite_path}")
    await store.close()
    url = await fresh_database(postgres_server.url)
    try:
        store = await open_store(url)
        await store.close()
        on_postgres = await _postgres_schema(url)
    finally:
        await drop_database(postgres_server.url, url)
    on_sqlite = _sqlite_schema(sqlite_path)
    differences = {}
    for part, found in on_sqlite.items():
        only_sqlite = sorted(set(found) - set(on_postgres[part]))  # type: ignore[call-overload]
        only_postgres = sorted(set(on_postgres[part]) - set(found))  # type: ignore[call-overload]
        if only_sqlite or only_postgres:
            differences[part] = {"SQLite only": only_sqlite, "PostgreSQL only": only_postgres}
    assert differences == {}


def test_both_trees_number_the_same_migrations_once_each() -> None:
    """A migration written for one database only, or two files sharing a number (the
    second would be recorded as applied without running), fail here before any store
    opens."""
    numbers = {d: [v for v, _ in migration_files(d)] for d in ("sqlite", "postgres")}
    assert numbers["sqlite"] == numbers["postgres"]
    assert len(set(numbers["sqlite"])) == len(numbers["sqlite"])


def test_a_shared_number_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sqlite").mkdir()
    for name in ("0001_a.sql", "0001_b.sql"):
        (tmp_path / "sqlite" / name).write_text("SELECT 1;", "utf-8")
    monkeypatch.setattr(migrations.resources, "files", lambda _: tmp_path)
    with pytest.raises(RuntimeError, match=r"0001_a\.sql and 0001_b\.sql share the number 1"):
        migration_files("sqlite")
