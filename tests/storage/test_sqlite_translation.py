"""The SQLite engine's translation of the store's SQL (written in PostgreSQL's dialect),
run against a real SQLite connection."""

from __future__ import annotations

import sqlite3

import pytest

from storage.sql.sqlite import SqliteTx, drive, translate


@pytest.fixture
def tx() -> SqliteTx:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, b BLOB)")
    return SqliteTx(conn)


def test_placeholders_casts_and_row_locks(tx: SqliteTx) -> None:
    drive(tx.execute("INSERT INTO t (id, n) VALUES ($1, $2::bigint)", "a", 1))
    sql = "SELECT n, $1::text FROM t WHERE id = $2 FOR NO KEY UPDATE"
    assert drive(tx.fetchrow(sql, "x", "a")) == (1, "x")
    assert translate(sql).sql == "SELECT n, ?1 FROM t WHERE id = ?2"
    assert drive(tx.fetchval("SELECT GREATEST($1, 3), LEAST($1, 3)", 5)) == 5


def test_arrays_and_unnest(tx: SqliteTx) -> None:
    inserted = drive(
        tx.execute(
            "INSERT INTO t (id, n) SELECT u.id, u.n FROM unnest($1::text[], $2::bigint[])"
            " AS u (id, n) WHERE true ON CONFLICT DO NOTHING",
            ["a", "b", "c"],
            [1, 2, 3],
        )
    )
    assert inserted == 3
    rows = drive(tx.fetch("SELECT id FROM t WHERE id = ANY($1::text[]) ORDER BY id", ["c", "a"]))
    assert [r[0] for r in rows] == ["a", "c"]
    rows = drive(
        tx.fetch(
            "SELECT i, x FROM unnest($1::text[]) WITH ORDINALITY AS u (x, i) ORDER BY i", ["p", "q"]
        )
    )
    assert [tuple(r) for r in rows] == [(1, "p"), (2, "q")]


def test_insert_rows_counts_what_went_in(tx: SqliteTx) -> None:
    cols = (("id", "text"), ("n", "bigint"), ("b", "bytea"))
    assert drive(tx.insert_rows("t", cols, [("a", 1, b"\x00"), ("b", 2, b"")])) == 2
    again = drive(
        tx.insert_rows("t", cols, [("a", 1, b""), ("c", 3, b"")], "ON CONFLICT DO NOTHING")
    )
    assert again == 1


def test_what_has_no_sqlite_form_is_refused() -> None:
    with pytest.raises(ValueError, match="no SQLite form"):
        translate("SELECT 1 FROM t WHERE id LIKE ANY($1::text[])")


def test_a_transaction_may_not_await_anything_else() -> None:
    import asyncio

    async def tx() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaited something other"):
        drive(tx())
