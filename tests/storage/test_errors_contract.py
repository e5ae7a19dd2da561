"""Both databases refuse the same writes with the same typed error (storage/errors.py):
callers tell refusals apart by class, never by the database's message."""

from __future__ import annotations

import pytest
from test_store_contract import user

from storage import Store
from storage.audit import NewAuditEntry
from storage.errors import BadValue, ConstraintViolated, NoSuchRoom, NoSuchUser
from storage.roles import Role
from storage.sql.store import SqlStore
from storage.types import NewUser, ReadMark


async def test_a_unique_rule_refuses_alike(store: Store) -> None:
    new = NewUser("twice@example.org", "h", "A", "B", "75001", "Paris", "MG", "liberal")
    await store.create_user(new, 1)
    with pytest.raises(ConstraintViolated):
        await store.create_user(new, 2)


async def test_a_trigger_refuses_alike(store: Store) -> None:
    await store.append_audit([NewAuditEntry("admin.verified", None, "u1")], now=1)
    assert isinstance(store, SqlStore)
    with pytest.raises(ConstraintViolated, match="append-only"):
        await store.db.run("raw", lambda c: c.execute("DELETE FROM audit_log"), "transaction")


async def test_missing_rows_are_named_by_class(store: Store) -> None:
    someone = await user(store)
    with pytest.raises(NoSuchRoom):
        await store.add_members("no-such-room", [someone], someone, 1)
    with pytest.raises(NoSuchRoom):
        await store.update_room("no-such-room", someone, 1, name=b"x")
    with pytest.raises(NoSuchUser):
        await store.put_device_keys(someone, "no-such-device", b"bundle", 1)
    role: Role = "reviewer"
    with pytest.raises(NoSuchUser):
        await store.grant_role("no-such-user", role, 1)


async def test_values_no_column_holds_are_refused_alike(store: Store) -> None:
    nul = NewUser("nul@example.org", "h", "A\x00B", "B", "75001", "Paris", "MG", "liberal")
    with pytest.raises(BadValue):
        await store.create_user(nul, 1)
    assert await store.user_by_email("nul@example.org") is None
    someone = await user(store)
    with pytest.raises(BadValue):
        await store.timeline("a room", 2**70, 10)
    with pytest.raises(BadValue):
        await store.set_reads([ReadMark("a room", someone, -(2**64))])
