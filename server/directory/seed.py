"""The synthetic directory: deterministic for a seed (pure; the CLI loads its batches).

``generate(count, seed, start_ms)`` yields :class:`SeedBatch`es: the first carries the
organisations (hospitals, clinics, MSPs, laboratories, health centres, and one CPTS per
territory around each city of 30,000+ inhabitants); every batch carries practitioners,
placed in real French cities (:mod:`server.directory.cities`) in proportion to their
population, with the French specialty mix of
:data:`~server.directory.names.SPECIALTIES`. About one practitioner in twenty who
consults has an agenda: motives (a third with "Soins non programmés") and slots over
the three working days from ``start_ms``. The same ``(count, seed, start_ms)`` always
gives the same rows, ids included.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from storage.directory import (
    SNP_MOTIVE,
    Motive,
    NewProfile,
    NewSlot,
    Organisation,
    Place,
)

from .cities import City, french_cities
from .geo import distance_km
from .names import FIRST_NAMES, LAST_NAMES, SPECIALTIES, STREETS

__all__ = ["SeedBatch", "generate", "seed_id"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
LAB_BRANDS = ("Cerballiance", "Biogroup", "Synlab", "Eurofins Biomnis", "Inovie", "Unilabs")
SAINTS = ("Saint-Joseph", "Sainte-Marie", "Saint-Martin", "du Parc", "des Cèdres", "Pasteur")
CONSULTING = {s for s, _, title in SPECIALTIES if title == "Dr"} - {
    "Pharmacien",
    "Biologie médicale",
    "Radiologie",
    "Anesthésie-réanimation",
}
UNSCHEDULED = {"Médecine générale", "Pédiatrie", "Médecine d'urgence"}


@dataclass(slots=True)
class SeedBatch:
    organisations: list[Organisation] = field(default_factory=list)
    profiles: list[NewProfile] = field(default_factory=list)
    motives: list[Motive] = field(default_factory=list)
    slots: list[tuple[str, str, NewSlot]] = field(default_factory=list)


def seed_id(seed: int, kind: str, n: int) -> str:
    """16 url-safe characters, the same for the same ``(seed, kind, n)``."""
    digest = hashlib.blake2b(f"{seed}:{kind}:{n}".encode(), digest_size=12).digest()
    return base64.urlsafe_b64encode(digest).decode()


@dataclass(slots=True)
class _CityOrgs:
    hospital: list[str] = field(default_factory=list)
    clinic: list[str] = field(default_factory=list)
    msp: list[str] = field(default_factory=list)
    laboratory: list[str] = field(default_factory=list)
    health_centre: list[str] = field(default_factory=list)
    cpts: str = ""


def _organisations(
    cities: tuple[City, ...], seed: int
) -> tuple[list[Organisation], list[_CityOrgs]]:
    orgs: list[Organisation] = []
    per_city = [_CityOrgs() for _ in cities]
    counter = itertools.count()

    def add(i: int, kind: str, name: str) -> str:
        city = cities[i]
        org = Organisation(
            seed_id(seed, "org", next(counter)), kind, name, city.postcode, city.name
        )
        orgs.append(org)
        return org.id

    hubs = [i for i, c in enumerate(cities) if c.population >= 30_000]
    cpts_of_hub = {i: add(i, "cpts", f"CPTS Grand {cities[i].name}") for i in hubs}
    for i, city in enumerate(cities):
        mine = per_city[i]
        nearest = min(
            hubs, key=lambda h: distance_km(city.lat, city.lon, cities[h].lat, cities[h].lon)
        )
        mine.cpts = cpts_of_hub[nearest]
        pop = city.population
        if pop >= 150_000:
            mine.hospital.append(add(i, "hospital", f"CHU de {city.name}"))
        if pop >= 25_000:
            mine.hospital.append(add(i, "hospital", f"Centre hospitalier de {city.name}"))
        for n in range(pop // 60_000):
            saint = SAINTS[n % len(SAINTS)]
            mine.clinic.append(add(i, "clinic", f"Clinique {saint} - {city.name}"))
        for n in range(1 + pop // 40_000):
            suffix = "" if n == 0 else f" {n + 1}"
            mine.msp.append(add(i, "msp", f"MSP {city.name}{suffix}"))
        for n in range(1 + pop // 50_000):
            brand = LAB_BRANDS[(i + n) % len(LAB_BRANDS)]
            part = ("Centre", "Nord", "Sud", "Est", "Ouest")[n % 5]
            mine.laboratory.append(
                add(i, "laboratory", f"Laboratoire {brand} - {city.name} {part}")
            )
        for _ in range(pop // 80_000):
            mine.health_centre.append(add(i, "health_centre", f"Centre de santé de {city.name}"))
    return orgs, per_city


def _memberships(rng: random.Random, specialty: str, mine: _CityOrgs) -> list[str]:
    chosen: list[str] = []
    if rng.random() < 0.45:
        chosen.append(mine.cpts)
    if specialty == "Biologie médicale" and mine.laboratory:
        chosen.append(rng.choice(mine.laboratory))
    elif specialty in ("Médecine générale", "Infirmier", "Masseur-kinésithérapeute", "Sage-femme"):
        if rng.random() < 0.25:
            chosen.append(rng.choice(mine.msp))
        elif mine.health_centre and rng.random() < 0.1:
            chosen.append(rng.choice(mine.health_centre))
    elif specialty not in ("Pharmacien", "Chirurgien-dentiste"):
        if mine.hospital and rng.random() < 0.5:
            chosen.append(rng.choice(mine.hospital))
        elif mine.clinic and rng.random() < 0.4:
            chosen.append(rng.choice(mine.clinic))
    return chosen


def _agenda(
    rng: random.Random, seed: int, n: int, p: NewProfile, start_ms: int, batch: SeedBatch
) -> None:
    motives = [
        Motive(seed_id(seed, "motive", 3 * n), p.id, "Première consultation", 30),
        Motive(seed_id(seed, "motive", 3 * n + 1), p.id, "Consultation de suivi", 20),
    ]
    if p.specialty in UNSCHEDULED and rng.random() < 0.33:
        motives.append(Motive(seed_id(seed, "motive", 3 * n + 2), p.id, SNP_MOTIVE, 20))
    batch.motives.extend(motives)
    open_new = rng.random() < 0.6
    online = rng.random() < 0.8
    k = 0
    for day in range(3):
        for hour in (9, 11, 14, 16):
            starts = start_ms + day * DAY_MS + hour * HOUR_MS
            ids = tuple(m.id for m in motives if m.label != SNP_MOTIVE or hour >= 14)
            slot = NewSlot(p.places[0].id, starts, starts + 30 * 60_000, ids, open_new, online)
            batch.slots.append((seed_id(seed, "slot", 12 * n + k), p.id, slot))
            k += 1


def generate(count: int, seed: int, start_ms: int, batch_size: int = 10_000) -> Iterator[SeedBatch]:
    """``count`` practitioners in batches of ``batch_size``; see the module docstring.
    ``start_ms`` is the midnight (ms) the agendas start from."""
    cities = french_cities()
    orgs, per_city = _organisations(cities, seed)
    cumulative = list(itertools.accumulate(c.population for c in cities))
    spec_cumulative = list(itertools.accumulate(share for _, share, _ in SPECIALTIES))
    rng = random.Random(seed)
    batch = SeedBatch(organisations=orgs)
    agendas = 0
    for n in range(count):
        i = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
        city = cities[min(i, len(cities) - 1)]
        j = bisect.bisect_right(spec_cumulative, rng.random() * spec_cumulative[-1])
        specialty, _, title = SPECIALTIES[min(j, len(SPECIALTIES) - 1)]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if rng.random() < 0.08:  # compound names
            last = f"{last}-{rng.choice(LAST_NAMES)}"
        spread = 0.01 + 0.04 * min(1.0, math.sqrt(city.population / 1_000_000))
        lat = round(city.lat + rng.uniform(-spread, spread), 6)
        lon = round(city.lon + rng.uniform(-spread, spread) * 1.4, 6)
        memberships = _memberships(rng, specialty, per_city[min(i, len(cities) - 1)])
        pid = seed_id(seed, "profile", n)
        place_name = f"Cabinet du Dr {last}" if title else f"Cabinet de {first} {last}"
        address = f"{rng.randint(1, 120)} {rng.choice(STREETS)}"
        place = Place(
            seed_id(seed, "place", n), pid, place_name, address, city.postcode, city.name, lat, lon
        )
        profile = NewProfile(
            id=pid,
            first_name=first,
            last_name=last,
            specialty=specialty,
            created_at=start_ms,
            title=title,
            rpps=f"10{rng.randrange(10**9):09d}",
            visible=rng.random() >= 0.03,
            organisations=tuple(memberships),
            places=(place,),
            required_fields=("email",) if rng.random() < 0.1 else (),
        )
        batch.profiles.append(profile)
        if specialty in CONSULTING and rng.random() < 0.06:
            _agenda(rng, seed, agendas, profile, start_ms, batch)
            agendas += 1
        if len(batch.profiles) >= batch_size:
            yield batch
            batch = SeedBatch()
    if batch.profiles or batch.organisations:
        yield batch
