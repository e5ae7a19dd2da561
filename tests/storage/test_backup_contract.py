"""Key backup contract (one per account, replaced with its entries, writers bound to
the current version, bounded), identical for every adapter."""

from __future__ import annotations

import pytest
from test_store_contract import user

from storage import Store
from storage.backup import MAX_BACKUP_ENTRIES, KeyBackup
from storage.errors import BackupFull, BackupReplaced, NoSuchBackup


def _backup(user_id: str, version: str, now: int = 10) -> KeyBackup:
    return KeyBackup(user_id, version, bytes(16), 3, 64 << 20, b"c" * 32, now, now, 0)


async def test_backup_lifecycle(store: Store) -> None:
    alice, bob = await user(store), await user(store)
    assert await store.key_backup(alice) is None
    with pytest.raises(NoSuchBackup):
        await store.put_backup_entries(alice, "v1", [("a" * 32, b"x")], 11)
    with pytest.raises(NoSuchBackup):
        await store.backup_entries(alice, "v1", "", 10)
    await store.create_key_backup(_backup(alice, "v1"))
    await store.create_key_backup(_backup(bob, "b1"))
    entries = [(f"{n:032x}", bytes([n]) * 100) for n in range(5)]
    assert await store.put_backup_entries(alice, "v1", entries[:3], 12) == 3
    # Uploading an entry again replaces it; the count is the account's only.
    assert await store.put_backup_entries(alice, "v1", [(entries[0][0], b"new")], 13) == 3
    assert await store.put_backup_entries(alice, "v1", entries[3:], 14) == 5
    assert await store.put_backup_entries(bob, "b1", [("f" * 32, b"bob")], 14) == 1
    got = await store.key_backup(alice)
    assert got == KeyBackup(alice, "v1", bytes(16), 3, 64 << 20, b"c" * 32, 10, 14, 5)
    page = await store.backup_entries(alice, "v1", "", 2)
    assert page == [(entries[0][0], b"new"), entries[1]]
    assert await store.backup_entries(alice, "v1", page[-1][0], 10) == entries[2:]
    # A new backup (a new phrase) replaces the old one and drops its entries; a writer
    # still naming the old version is refused and stores nothing.
    await store.create_key_backup(_backup(alice, "v2", 20))
    with pytest.raises(BackupReplaced):
        await store.put_backup_entries(alice, "v1", entries, 21)
    with pytest.raises(BackupReplaced):
        await store.backup_entries(alice, "v1", "", 10)
    assert (await store.key_backup(alice)) == _backup(alice, "v2", 20)
    assert await store.backup_entries(alice, "v2", "", 10) == []
    assert await store.delete_key_backup(alice) is True
    assert await store.delete_key_backup(alice) is False
    assert await store.key_backup(alice) is None
    assert await store.backup_entries(bob, "b1", "", 10) == [("f" * 32, b"bob")]


async def test_backup_is_bounded_and_erased_with_the_account(store: Store) -> None:
    alice = await user(store)
    await store.create_key_backup(_backup(alice, "v1"))
    batch = 5000
    for start in range(0, MAX_BACKUP_ENTRIES, batch):
        chunk = [(f"{n:032x}", b"e") for n in range(start, start + batch)]
        await store.put_backup_entries(alice, "v1", chunk, 11)
    with pytest.raises(BackupFull):
        await store.put_backup_entries(alice, "v1", [("0" * 31 + "g", b"x"), ("z" * 32, b"y")], 12)
    full = await store.key_backup(alice)
    assert full is not None and full.entries == MAX_BACKUP_ENTRIES and full.updated_at == 11
    # Replacing an existing entry still fits.
    assert await store.put_backup_entries(alice, "v1", [(f"{0:032x}", b"z")], 13) == (
        MAX_BACKUP_ENTRIES
    )
    await store.delete_account(alice)
    assert await store.key_backup(alice) is None
