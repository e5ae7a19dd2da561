"""Key backups: each account's client-encrypted copy of its sender keys (SPEC.md §11.7).

An account has at most one backup: its parameters (the Argon2id ``salt``, ``opslimit``
and ``memlimit``, and the ``check`` value a device compares with what the phrase
derives), and its entries, one per sender key, replaced when a device uploads the same
entry id again. All of it is opaque to the server. Creating a backup replaces the
previous one and its entries in the same transaction (a new recovery phrase); writers
name the backup ``version`` they encrypted for, so a device still holding the old key
cannot add entries nobody can read (:class:`~storage.errors.BackupReplaced`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MAX_BACKUP_ENTRIES", "BackupStore", "KeyBackup"]

MAX_BACKUP_ENTRIES = 100_000  # per account: a sender key per room, sender and rotation


@dataclass(frozen=True, slots=True)
class KeyBackup:
    user_id: str
    version: str
    salt: bytes
    opslimit: int
    memlimit: int
    check: bytes
    created_at: int
    updated_at: int
    entries: int  # how many entries it holds


class BackupStore(Protocol):
    async def create_key_backup(self, backup: KeyBackup) -> None:
        """Make ``backup`` the account's (``entries`` is ignored), deleting the previous
        one and all its entries."""

    async def key_backup(self, user_id: str) -> KeyBackup | None:
        """The account's backup and its number of entries, or None."""

    async def put_backup_entries(
        self, user_id: str, version: str, entries: Sequence[tuple[str, bytes]], now: int
    ) -> int:
        """Store (or replace) entries ``(id, data)`` of the account's backup ``version``;
        return how many entries it holds now. Raises ``NoSuchBackup``, ``BackupReplaced``
        (``version`` is not the current one) or ``BackupFull`` (more than
        :data:`MAX_BACKUP_ENTRIES`; nothing is stored then)."""

    async def backup_entries(
        self, user_id: str, version: str, after: str, limit: int
    ) -> list[tuple[str, bytes]]:
        """Entries of the account's backup ``version`` whose id is greater than
        ``after``, in id order, at most ``limit``. Raises ``NoSuchBackup`` or
        ``BackupReplaced``."""

    async def delete_key_backup(self, user_id: str) -> bool:
        """Delete the account's backup and its entries; whether there was one."""
