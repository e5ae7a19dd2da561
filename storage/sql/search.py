"""What the directory's search really does differently on each database: the full-text
index, the spatial index, typo correction and planner hints. One object per engine
(``Engine.search``); :mod:`storage.sql.directory` writes everything else once.

- PostgreSQL: a ``tsvector`` generated from the profile's ``search_text`` with a GIN
  index (prefix ``:*`` queries), a GiST index on the main place's point, pg_trgm (GIN)
  over the name words for typos.
- SQLite: FTS5 (prefix indexes) beside the profiles, keyed by ``rid``; an R*Tree for
  main places; a SymSpell key table (every one-letter deletion of each name word).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ..directory_index import (
    MIN_TYPO_WORD,
    Groups,
    fts5_expression,
    symspell_keys,
    tsquery_expression,
)
from ..search_text import deletes, edit_distance_at_most_1
from .engine import Tx

__all__ = ["DirectorySearch", "PostgresSearch", "SqliteSearch"]

# (rid, names, other words, main place's (lat, lon) or None) of a new profile.
IndexEntry = tuple[int, str, str, tuple[float, float] | None]
Param = Callable[[object], str]  # hands out the placeholder of a query argument


class DirectorySearch(Protocol):
    # Columns of directory_profiles only this database has, and their values.
    extra_columns: tuple[str, ...]
    # How a table's rows are ordered as inserted (places, patient record reads).
    insertion_order: str

    def extra_values(self, names: str, other: str) -> tuple[object, ...]: ...

    async def next_rids(self, c: Tx, n: int) -> list[int]: ...

    async def index_profiles(self, c: Tx, entries: Sequence[IndexEntry]) -> None: ...

    async def index_main_place(self, c: Tx, rid: int, lat: float, lon: float) -> None: ...

    async def add_terms(self, c: Tx, terms: set[str]) -> None:
        """Remember the name words, for typo correction."""

    def match(self, groups: Groups, prefix: bool, p: Param) -> str:
        """A condition on profile ``p``: its words match each group (prefixes)."""

    async def any_match(self, c: Tx, groups: Groups) -> bool:
        """Whether any profile at all matches (the words are not a typo)."""

    async def corrections(self, c: Tx, words: Sequence[str]) -> list[list[str]]:
        """Each word, or the indexed name words within one edit of it when there are."""

    def in_box(self, p: Param, lat0: float, lat1: float, lon0: float, lon1: float) -> str:
        """A condition: profile ``p``'s main place is in the box, by the spatial index."""

    def flag(self, column: str) -> str:
        """A condition: the boolean ``column`` is true (as the partial indexes say it)."""

    def unindexed(self, column: str, *, order: bool) -> str:
        """``column`` in a form the planner will not walk an index of (to filter, or
        to order by when the matches are few)."""

    async def finish_load(self, c: Tx) -> None: ...


class PostgresSearch:
    extra_columns: tuple[str, ...] = ("search_text",)
    insertion_order = "ctid"

    def extra_values(self, names: str, other: str) -> tuple[object, ...]:
        return (f"{names} {other}",)

    async def next_rids(self, c: Tx, n: int) -> list[int]:
        rows = await c.fetch(
            "SELECT nextval('directory_profiles_rid_seq') FROM generate_series(1, $1)", n
        )
        return [r[0] for r in rows]

    async def index_profiles(self, c: Tx, entries: Sequence[IndexEntry]) -> None:
        """Nothing: the tsvector is generated from search_text, the GiST is on lat/lon."""

    async def index_main_place(self, c: Tx, rid: int, lat: float, lon: float) -> None:
        """Nothing: the GiST is on the profile's own lat/lon."""

    async def add_terms(self, c: Tx, terms: set[str]) -> None:
        await c.execute(
            "INSERT INTO directory_terms (term) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            sorted(terms),
        )

    def match(self, groups: Groups, prefix: bool, p: Param) -> str:
        return f"p.search @@ to_tsquery('simple', {p(tsquery_expression(groups, prefix))})"

    async def any_match(self, c: Tx, groups: Groups) -> bool:
        # "Any match?" with LIMIT 1 tempts the planner into a sequential scan that
        # reads the whole table when the answer is no.
        await c.execute("SET LOCAL enable_seqscan = off")
        found = await c.fetchval(
            "SELECT 1 FROM directory_profiles WHERE search @@ to_tsquery('simple', $1) LIMIT 1",
            tsquery_expression(groups, True),
        )
        await c.execute("SET LOCAL enable_seqscan = on")
        return found is not None

    async def corrections(self, c: Tx, words: Sequence[str]) -> list[list[str]]:
        groups: list[list[str]] = []
        # One edit in a short word changes most of its trigrams ("fuare" and "faure"
        # share 2 of 10): cast a wide net, then keep the words within one edit.
        await c.execute("SET LOCAL pg_trgm.similarity_threshold = 0.15")
        for word in words:
            if len(word) < MIN_TYPO_WORD:
                groups.append([word])
                continue
            rows = await c.fetch(
                "SELECT term FROM directory_terms WHERE term % $1"
                " ORDER BY similarity(term, $1) DESC, term LIMIT 50",
                word,
            )
            near = sorted(r[0] for r in rows if edit_distance_at_most_1(word, r[0]))
            groups.append(near or [word])
        return groups

    def in_box(self, p: Param, lat0: float, lat1: float, lon0: float, lon1: float) -> str:
        return (
            f"point(p.lon, p.lat) <@ box(point({p(lon0)}, {p(lat0)}), point({p(lon1)}, {p(lat1)}))"
        )

    def flag(self, column: str) -> str:
        return column

    def unindexed(self, column: str, *, order: bool) -> str:
        return f"{column} || ''" if order else column

    async def finish_load(self, c: Tx) -> None:
        for table in (
            "directory_profiles",
            "directory_profile_orgs",
            "directory_terms",
            "agenda_slots",
        ):
            await c.execute(f"ANALYZE {table}")


class SqliteSearch:
    extra_columns: tuple[str, ...] = ()
    insertion_order = "rowid"

    def extra_values(self, names: str, other: str) -> tuple[object, ...]:
        return ()

    async def next_rids(self, c: Tx, n: int) -> list[int]:
        first = int(await c.fetchval("SELECT COALESCE(MAX(rid), 0) + 1 FROM directory_profiles"))
        return list(range(first, first + n))

    async def index_profiles(self, c: Tx, entries: Sequence[IndexEntry]) -> None:
        await c.copy("directory_fts", ("rowid", "names", "other"), [e[:3] for e in entries])
        await c.copy(
            "directory_geo",
            ("rid", "min_lat", "max_lat", "min_lon", "max_lon"),
            [(e[0], e[3][0], e[3][0], e[3][1], e[3][1]) for e in entries if e[3] is not None],
        )

    async def index_main_place(self, c: Tx, rid: int, lat: float, lon: float) -> None:
        await c.execute(
            "INSERT INTO directory_geo (rid, min_lat, max_lat, min_lon, max_lon)"
            " VALUES ($1, $2, $2, $3, $3)",
            rid,
            lat,
            lon,
        )

    async def add_terms(self, c: Tx, terms: set[str]) -> None:
        await c.executemany(
            "INSERT INTO directory_term_keys (key, term) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            symspell_keys(terms),
        )

    def match(self, groups: Groups, prefix: bool, p: Param) -> str:
        expression = p(fts5_expression(groups, prefix))
        return f"p.rid IN (SELECT rowid FROM directory_fts WHERE directory_fts MATCH {expression})"

    async def any_match(self, c: Tx, groups: Groups) -> bool:
        found = await c.fetchval(
            "SELECT 1 FROM directory_fts WHERE directory_fts MATCH $1 LIMIT 1",
            fts5_expression(groups, True),
        )
        return found is not None

    async def corrections(self, c: Tx, words: Sequence[str]) -> list[list[str]]:
        groups: list[list[str]] = []
        for word in words:
            if len(word) < MIN_TYPO_WORD:
                groups.append([word])
                continue
            keys = sorted(deletes(word) | {word})
            rows = await c.fetch(
                "SELECT DISTINCT term FROM directory_term_keys WHERE key = ANY($1::text[])", keys
            )
            near = sorted(r[0] for r in rows if edit_distance_at_most_1(word, r[0]))
            groups.append(near or [word])
        return groups

    def in_box(self, p: Param, lat0: float, lat1: float, lon0: float, lon1: float) -> str:
        return (
            f"p.rid IN (SELECT rid FROM directory_geo WHERE min_lat >= {p(lat0)}"
            f" AND max_lat <= {p(lat1)} AND min_lon >= {p(lon0)} AND max_lon <= {p(lon1)})"
        )

    def flag(self, column: str) -> str:
        return f"{column} = 1"

    def unindexed(self, column: str, *, order: bool) -> str:
        return f"+{column}"

    async def finish_load(self, c: Tx) -> None:
        await c.execute("INSERT INTO directory_fts (directory_fts) VALUES ('optimize')")
        await c.execute("ANALYZE")
