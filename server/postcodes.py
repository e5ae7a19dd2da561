"""The official postcode base, offline (pure): which postcodes exist, the communes each
serves, and where a postcode or a commune name is.

The data (``postcodes.tsv`` beside this module, about 35,700 communes and 6,200
postcodes) is built from the BAN's ``codes-postaux`` package by
:mod:`server.directory.build_postcodes`, which states its sources and licences. Paris,
Lyon and Marseille are there by arrondissement (75011, 69003, 13001...); their names
are also found in short ("Paris 11e", "Lyon 3", "Marseille 1er") and the city's own
name stands for the whole city.
"""

from __future__ import annotations

import functools
import gc
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from storage.search_text import normalise

__all__ = [
    "Commune",
    "all_communes",
    "communes",
    "is_postcode",
    "locate",
    "locate_address",
    "name_key",
]

DATA = Path(__file__).with_name("postcodes.tsv")
_ARRONDISSEMENT = re.compile(r"(paris|lyon|marseille) 0*([1-9][0-9]?)(?:er|e|eme)?(?: .*)?")
_POSTCODE = re.compile(r"[0-9]{5}")


@dataclass(frozen=True, slots=True)
class Commune:
    postcode: str
    insee: str
    name: str
    lat: float
    lon: float
    population: int  # GeoNames', 0 when unknown


def name_key(name: str) -> str:
    """The form names are matched in: :func:`normalise`'d, and an arrondissement
    however written (``Paris 11e Arrondissement``, ``Paris 11``, ``paris 11e``,
    ``Lyon 03``) as ``paris 11``."""
    key = normalise(name)
    m = _ARRONDISSEMENT.fullmatch(key)
    return f"{m[1]} {m[2]}" if m else key


class _Base:
    def __init__(self, rows: list[Commune]) -> None:
        self.rows = tuple(rows)
        self.by_postcode: dict[str, list[Commune]] = defaultdict(list)
        self.by_name: dict[str, list[Commune]] = defaultdict(list)
        for c in rows:
            self.by_postcode[c.postcode].append(c)
            self.by_name[name_key(c.name)].append(c)
        cities: dict[str, list[Commune]] = defaultdict(list)
        for key, found in self.by_name.items():
            m = _ARRONDISSEMENT.fullmatch(key)
            if m:
                cities[m[1]].extend(found)
        for city, parts in cities.items():  # "Paris": the whole city, at its centre
            total = sum(c.population for c in parts) or 1
            self.by_name[city].append(
                Commune(
                    min(c.postcode for c in parts),
                    "",
                    city.capitalize(),
                    sum(c.lat * c.population for c in parts) / total,
                    sum(c.lon * c.population for c in parts) / total,
                    total,
                )
            )
        for found in (*self.by_postcode.values(), *self.by_name.values()):
            found.sort(key=lambda c: (-c.population, c.insee))


@functools.cache
def _base() -> _Base:
    rows = []
    with DATA.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            postcode, insee, name, lat, lon, population = line.rstrip("\n").split("\t")
            rows.append(Commune(postcode, insee, name, float(lat), float(lon), int(population)))
    base = _Base(rows)
    # 75,000 objects that live as long as the process: out of the garbage collector's
    # full passes, which would otherwise walk them all (40 ms each, on the event loop).
    gc.freeze()
    return base


def is_postcode(raw: str) -> bool:
    """Whether ``raw`` is a postcode of the base (five digits that La Poste serves)."""
    return _POSTCODE.fullmatch(raw) is not None and raw in _base().by_postcode


def all_communes() -> tuple[Commune, ...]:
    """Every commune of every postcode, by postcode then INSEE code."""
    return _base().rows


def communes(postcode: str) -> tuple[Commune, ...]:
    """The communes ``postcode`` serves, most populous first (none if it is no postcode)."""
    return tuple(_base().by_postcode.get(postcode, ()))


def locate(place: str) -> Commune | None:
    """A postcode's most populous commune, or the most populous commune of that name
    (``"Lyon 3e"``, ``"saint-etienne"``, ``"PARIS"``); ``None`` if neither."""
    place = place.strip()
    found = _base().by_postcode.get(place) or _base().by_name.get(name_key(place))
    return found[0] if found else None


def locate_address(postcode: str, city: str) -> Commune | None:
    """Where an address of ``postcode`` and ``city`` is: the commune of that name the
    postcode serves, else the postcode's most populous one, else the city by name."""
    found = communes(postcode)
    key = name_key(city)
    named = [c for c in found if name_key(c.name) == key]
    return (named or list(found))[0] if found else locate(city)
