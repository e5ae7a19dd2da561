"""What the directory indexes of a profile, and how query words become index queries
(pure; shared by both adapters so they index and match alike)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from .directory import NewProfile
from .search_text import deletes, normalise

__all__ = [
    "KM_PER_DEGREE",
    "SAS_CELL_COLUMNS",
    "MAX_SAS_CELLS",
    "MIN_TYPO_WORD",
    "RING_STEPS",
    "Groups",
    "flat_terms",
    "fts5_expression",
    "index_texts",
    "name_terms",
    "near_rings",
    "sas_cells",
    "slot_cells",
    "sort_name",
    "symspell_keys",
    "tsquery_expression",
    "word_passes",
    "lon_scale",
]

# Groups of alternative words: every group must match (AND), any word of a group
# (OR). The query "dupont jean" is [["dupont"], ["jean"]]; after a typo correction,
# "dupomt" may become [["dupont", "dumont"]].
Groups = Sequence[Sequence[str]]

MIN_TYPO_WORD = 4
KM_PER_DEGREE = 111.195


def lon_scale(lat: float) -> float:
    """Kilometres per degree of longitude at ``lat`` (equirectangular distance, exact
    enough within the 200 km of a search radius)."""
    return KM_PER_DEGREE * math.cos(math.radians(lat))


def sort_name(p: NewProfile) -> str:
    return f"{normalise(p.last_name)} {normalise(p.first_name)}"


def index_texts(p: NewProfile, organisation_names: Iterable[str]) -> tuple[str, str]:
    """``(names, other)``: what the words of a query are matched against."""
    names = normalise(f"{p.first_name} {p.last_name}")
    place = p.places[0] if p.places else None
    parts = [p.specialty, *organisation_names]
    if place is not None:
        parts += [place.city, place.postcode]
    return names, normalise(" ".join(parts))


def name_terms(profiles: Iterable[NewProfile]) -> set[str]:
    """The name words worth correcting typos towards."""
    words: set[str] = set()
    for p in profiles:
        words.update(w for w in normalise(f"{p.first_name} {p.last_name}").split())
    return {w for w in words if len(w) >= MIN_TYPO_WORD - 1}


def symspell_keys(terms: Iterable[str]) -> list[tuple[str, str]]:
    """``(key, term)`` rows: each term under itself and its one-deletion strings."""
    return [(key, term) for term in terms for key in (deletes(term) | {term})]


# Radii searched in turn by a "near" search without words, as fractions of its radius.
RING_STEPS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


def near_rings(radius_km: float, after_rank: float | None) -> list[float]:
    """The growing radii a "near" search without words tries, for the profiles without
    an account (rank ``1 + distance / (radius + 1)``): the first ring holding a full
    page holds the page, since everything outside it is further, so ranks higher. A
    cursor in that part starts the rings at its distance."""
    start = 0.0
    if after_rank is not None and after_rank >= 1:
        start = (after_rank - 1) * (radius_km + 1)
    rings = [min(radius_km, start + radius_km * f) for f in RING_STEPS]
    return list(dict.fromkeys(rings))


def word_passes(word: str) -> list[tuple[int, str, list[str], bool]]:
    """A one-word search as passes in rank order, each ``(rank, condition, params)``
    with ``?`` placeholders: exact last name, last name starting with the word, first
    name starting with it, any other match (the adapter adds the full-text condition
    where the params hold ``"*fts*"``), each tier with the account holders first. The
    first two tiers are ranges of ``sort_name`` (last name, space, first name), which
    an index walks in order, so a page of "dup" reads about a page of rows; the last
    item says whether the pass should walk that order (else it sorts its matches)."""
    pattern = word + "%"
    exact = "p.sort_name >= ? AND p.sort_name < ? AND p.last_norm = ?"
    starts = "p.sort_name >= ? AND p.sort_name < ? AND p.last_norm <> ?"
    first = "p.first_norm >= ? AND p.first_norm < ? AND p.last_norm NOT LIKE ?"
    other = "*fts* AND p.last_norm NOT LIKE ? AND p.first_norm NOT LIKE ?"
    tiers = [
        (exact, [word + " ", word + "!", word]),
        (starts, [word, word + "{", word]),
        (first, [word, word + "{", pattern]),
        (other, [pattern, pattern]),
    ]
    passes = []
    for tier, (condition, params) in enumerate(tiers):
        walk = tier < 2
        passes.append((2 * tier, f"p.user_id IS NOT NULL AND {condition}", params, walk))
        passes.append((2 * tier + 1, f"p.user_id IS NULL AND {condition}", params, walk))
    return passes


def flat_terms(groups: Groups) -> list[str]:
    return list(dict.fromkeys(t for g in groups for t in g))


def fts5_expression(groups: Groups, prefix: bool) -> str:
    """An FTS5 MATCH expression (words are ``[a-z0-9]+``, quoted anyway)."""
    star = "*" if prefix else ""
    return " AND ".join("(" + " OR ".join(f'"{t}"{star}' for t in g) + ")" for g in groups)


def tsquery_expression(groups: Groups, prefix: bool) -> str:
    """A PostgreSQL ``to_tsquery('simple', ...)`` expression."""
    star = ":*" if prefix else ""
    return " & ".join("(" + " | ".join(f"{t}{star}" for t in g) + ")" for g in groups)


# The SAS search walks, in each grid cell covering its area, that cell's free eligible
# slots in time order (an index on (cell, starts_at, id)), a page at most per cell, and
# keeps the soonest page of them all: a dense city's thousands of slots are never all
# read and sorted. Two grids: 0.25° cells for the usual radii, 2° past MAX_SAS_CELLS.
SAS_CELL_SIZES = (0.25, 2.0)
SAS_CELL_COLUMNS = ("cell_fine", "cell_coarse")
MAX_SAS_CELLS = 24


def _cell(lat_index: int, lon_index: int) -> int:
    return (lat_index + 10_000) * 100_000 + lon_index + 10_000


def slot_cells(lat: float, lon: float) -> tuple[int, int]:
    """A slot's cell in each grid (the columns of :data:`SAS_CELL_COLUMNS`)."""
    fine, coarse = (
        _cell(math.floor(lat / size), math.floor(lon / size)) for size in SAS_CELL_SIZES
    )
    return fine, coarse


def sas_cells(lat: float, lon: float, radius_km: float) -> tuple[str, list[int]]:
    """The column and the cells that meet the circle: the fine grid unless it needs
    more than :data:`MAX_SAS_CELLS` cells. A cell of the circle's bounding box that
    only its corner reaches is left out: walking a dense cell whose slots are nearly
    all out of range is the slow case."""
    dlat = radius_km / KM_PER_DEGREE
    dlon = radius_km / max(lon_scale(lat), 0.01)
    for column, size in zip(SAS_CELL_COLUMNS, SAS_CELL_SIZES, strict=True):
        rows = range(math.floor((lat - dlat) / size), math.floor((lat + dlat) / size) + 1)
        cols = range(math.floor((lon - dlon) / size), math.floor((lon + dlon) / size) + 1)
        cells = []
        for r in rows:
            for c in cols:
                # The cell's point nearest the centre, in km (equirectangular).
                near_lat = min(max(lat, r * size), (r + 1) * size)
                near_lon = min(max(lon, c * size), (c + 1) * size)
                dy = (near_lat - lat) * KM_PER_DEGREE
                dx = (near_lon - lon) * lon_scale(lat)
                if dx * dx + dy * dy <= radius_km * radius_km:
                    cells.append(_cell(r, c))
        if len(cells) <= MAX_SAS_CELLS or size == SAS_CELL_SIZES[-1]:
            return column, cells
    raise AssertionError("unreachable")
