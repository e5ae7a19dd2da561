"""The hellos' session checks asked for in one turn are read together (the SQLite
engine's read batch: one reader hop) and decided each on its own: a revoked or expired
token among them is refused with the same error as alone, the others pass."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from protocol.errors import ErrorCode
from server.auth import hash_token, new_token
from server.errors import ApiError
from server.sessions import authenticate_with_rooms
from storage import open_store
from storage.types import NewUser, Session


async def test_a_round_of_hellos_is_decided_token_by_token(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/hello.db")
    try:
        tokens = [new_token() for _ in range(4)]
        users = []
        for i, token in enumerate(tokens):
            created = await store.create_user(
                NewUser(f"u{i}@example.org", "h", "J", f"N{i}", "69001", "Lyon", "C", "salarie"),
                now=1000,
            )
            users.append(created)
            device = await store.create_device(created.id, "iPhone", 10)
            expires = 1 if i == 2 else 2**62  # the third has expired
            session = Session(hash_token(token), created.id, device.id, 10, expires)
            await store.create_session(session)
        room, _ = await store.create_room("group", users[0].id, [users[1].id], b"G", None, 11)
        await store.delete_session(hash_token(tokens[3]))  # revoked
        results = await asyncio.gather(
            *(authenticate_with_rooms(store, t) for t in tokens),
            authenticate_with_rooms(store, new_token()),  # never issued
            return_exceptions=True,
        )
        for i in (0, 1):
            found = results[i]
            assert not isinstance(found, BaseException)
            assert found[1].id == users[i].id and found[2] == [room.id]
        for refused in results[2:]:
            assert isinstance(refused, ApiError)
            assert refused.code == ErrorCode.UNAUTHENTICATED
            assert refused.message == "invalid or expired session token"
        with pytest.raises(ApiError):  # alone, the same answer
            await authenticate_with_rooms(store, tokens[2])
    finally:
        await store.close()
