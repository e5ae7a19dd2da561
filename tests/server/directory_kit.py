"""Shared pieces of the directory and referral tests: a node on each storage adapter,
a small directory, REST calls."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.python import Account
from harness import ServerUnderTest, server_on
from storage import Store
from storage.directory import Motive, NewProfile, NewSlot, Organisation, Place

DOUAI = (50.37069, 3.07922)
LILLE = (50.63297, 3.05858)
HOUR = 3_600_000
# Far enough ahead for every test run, on a fixed day so slots are reproducible.
BASE = 4_102_444_800_000  # 2100-01-01T00:00Z


@contextlib.asynccontextmanager
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerUnderTest]:
    async with server_on(request.param, request, tmp_path) as server:
        yield server


async def call(
    account: Account | None,
    server: ServerUnderTest,
    method: str,
    path: str,
    **kwargs: Any,
) -> httpx.Response:
    headers = {} if account is None else {"Authorization": f"Bearer {account.token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        return await http.request(method, path, headers=headers, **kwargs)


def _profile(
    pid: str, first: str, last: str, specialty: str, at: tuple[float, float], **kw: Any
) -> NewProfile:
    city, postcode = ("Lille", "59000") if at == LILLE else ("Douai", "59500")
    place = Place(f"pl-{pid}", pid, "Cabinet", "4c Rue d'Auby", postcode, city, *at)
    return NewProfile(pid, first, last, specialty, 1, places=(place,), **kw)


async def small_directory(store: Store) -> None:
    """A few practitioners around Douai and Lille, Dr Faure with an agenda: slot
    "s-open" (open to new patients, online), "s-closed" (not open to new patients),
    "s-snp" (closed to new patients and offline, but with "Soins non programmés"),
    "s-offline" (open to new patients, not bookable online)."""
    await store.load_directory(
        [
            Organisation("cpts-douai", "cpts", "CPTS Grand Douai", "59500", "Douai"),
            Organisation("chu-lille", "hospital", "CHU de Lille", "59000", "Lille"),
        ],
        [
            _profile(
                "dupont",
                "Jean",
                "Dupont",
                "Médecine générale",
                DOUAI,
                organisations=("cpts-douai",),
            ),
            _profile(
                "lefevre",
                "Émilie",
                "Lefèvre",
                "Cardiologie et maladies vasculaires",
                LILLE,
                organisations=("chu-lille",),
            ),
            _profile(
                "faure",
                "Emmanuel",
                "Faure",
                "Cardiologie et maladies vasculaires",
                DOUAI,
                organisations=("cpts-douai",),
                required_fields=("email",),
            ),
            _profile("hidden", "Jean", "Dupontel", "Pédiatrie", DOUAI, visible=False),
        ],
        [
            Motive("m-first", "faure", "Première consultation", 30),
            Motive("m-snp", "faure", "Soins non programmés", 15),
        ],
        [
            (
                "s-open",
                "faure",
                NewSlot("pl-faure", BASE + 9 * HOUR, BASE + 10 * HOUR, ("m-first",)),
            ),
            (
                "s-closed",
                "faure",
                NewSlot("pl-faure", BASE + 10 * HOUR, BASE + 11 * HOUR, ("m-first",), False, True),
            ),
            (
                "s-snp",
                "faure",
                NewSlot(
                    "pl-faure",
                    BASE + 11 * HOUR,
                    BASE + 12 * HOUR,
                    ("m-first", "m-snp"),
                    False,
                    False,
                ),
            ),
            (
                "s-offline",
                "faure",
                NewSlot("pl-faure", BASE + 12 * HOUR, BASE + 13 * HOUR, ("m-first",), True, False),
            ),
        ],
    )
    await store.finish_directory_load()


PATIENT = {
    "civility": "madame",
    "first_name": "Marie",
    "last_name": "Durand",
    "birth_name": "Martin",
    "birth_date": "21/11/1952",
    "birth_place": "Douai",
    "phone": "06 45 37 26 53",
    "email": "marie.durand@email.com",
    "postcode": "59500",
    "consulted_before": False,
}
