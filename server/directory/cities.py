"""Real French cities with coordinates, offline, for the synthetic directory: the
metropolitan communes of 5,000 inhabitants or more of the official postcode base
(:mod:`server.postcodes`), each with its real postcode (the lowest when it
has several) and official name (Paris, Lyon and Marseille by arrondissement)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..postcodes import all_communes

__all__ = ["City", "french_cities"]

MIN_POPULATION = 5_000


@dataclass(frozen=True, slots=True)
class City:
    name: str
    postcode: str
    lat: float
    lon: float
    population: int


@functools.cache
def french_cities() -> tuple[City, ...]:
    """Largest first (ties by name)."""
    cities: dict[str, City] = {}
    for c in all_communes():  # by postcode: a commune's first is its lowest
        if c.population >= MIN_POPULATION and not c.insee.startswith("97"):
            cities.setdefault(c.insee, City(c.name, c.postcode, c.lat, c.lon, c.population))
    return tuple(sorted(cities.values(), key=lambda c: (-c.population, c.name)))
