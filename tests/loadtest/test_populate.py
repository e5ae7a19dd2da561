"""``populate`` loads usable accounts in bulk, on every storage adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from services_pg import PostgresServer, drop_database, fresh_database

from loadtest.popfile import load_population
from loadtest.populate import populate
from server.auth import hash_token
from storage import open_store


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lt.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = await fresh_database(server.url)
    try:
        yield url
    finally:
        await drop_database(server.url, url)


async def test_populate_creates_verified_practitioners_with_sessions_and_rooms(
    database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "population.msgpack"
    report = await populate(60, database_url, out, seed=1)
    population = load_population(out)
    assert report["users"] == len(population.users) == 60
    kinds = {kind for _, kind, _ in population.rooms}
    assert kinds == {"direct", "group", "patient_case"}
    assert out.stat().st_mode & 0o777 == 0o600  # it holds bearer tokens
    store = await open_store(database_url)
    try:
        for number in (0, 59):
            user_id, device_id, token = population.users[number]
            session = await store.session(hash_token(token))
            assert session is not None
            assert (session.user_id, session.device_id) == (user_id, device_id)
            user = await store.user_by_id(user_id)
            assert user is not None and user.verified
            rooms = {room.id for room, _ in await store.rooms_of(user_id)}
            expected = {r for r, _, members in population.rooms if number in members}
            assert rooms == expected
        room_id, _, members = population.rooms[-1]
        listed = await store.room_members(room_id)
        assert listed is not None
        assert set(listed.roles) == {population.users[m][0] for m in members}
    finally:
        await store.close()


async def test_uniform_rooms_for_the_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "population.msgpack"
    await populate(45, f"sqlite:///{tmp_path / 'b.db'}", out, room_size=20)
    sizes = [len(members) for _, _, members in load_population(out).rooms]
    assert sizes == [20, 20, 5]
