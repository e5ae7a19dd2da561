"""Agendas for the web tests: a practitioner's place, motives and open slots (made
through REST, as the agenda screen does)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from clients.python import Account
from harness import ServerUnderTest

HALF_HOUR = 1_800_000


async def api(account: Account, server: ServerUnderTest, method: str, path: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.request(
            method, path, headers={"Authorization": f"Bearer {account.token}"}, **kw
        )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def slot_day() -> dt.datetime:
    """Tomorrow at 9:00 UTC, or the day after when tomorrow starts a new week (the
    agenda opens on the current week)."""
    tomorrow = dt.datetime.now(dt.UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    tomorrow += dt.timedelta(days=1)
    if tomorrow.weekday() == 0:  # today is Sunday: keep to this week, later today
        tomorrow = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        tomorrow += dt.timedelta(hours=2)
    return tomorrow


async def open_agenda(
    account: Account, server: ServerUnderTest, count: int = 4, snp: bool = False
) -> dict[str, Any]:
    """The practitioner's profile with a motive and ``count`` half-hour slots from
    :func:`slot_day` at their sign-up place; ``snp`` adds "Soins non programmés" to
    the slots. Returns {"profile", "place", "motive", "slots"}."""
    profile = (await api(account, server, "GET", "/v1/directory/me"))["profile"]
    place = profile["places"][0]["id"]
    motive = (
        await api(
            account,
            server,
            "POST",
            "/v1/agenda/motives",
            json={"label": "Première consultation", "duration_min": 30},
        )
    )["motive"]
    motives = [motive["id"]]
    if snp:
        sas = await api(
            account,
            server,
            "POST",
            "/v1/agenda/motives",
            json={"label": "Soins non programmés", "duration_min": 15},
        )
        motives.append(sas["motive"]["id"])
    start = int(slot_day().timestamp() * 1000)
    slots = (
        await api(
            account,
            server,
            "POST",
            "/v1/agenda/slots",
            json={
                "slots": [
                    {
                        "place": place,
                        "starts_at": start + i * HALF_HOUR,
                        "ends_at": start + (i + 1) * HALF_HOUR,
                        "motives": motives,
                    }
                    for i in range(count)
                ]
            },
        )
    )["slots"]
    return {"profile": profile, "place": place, "motive": motive, "slots": slots}
