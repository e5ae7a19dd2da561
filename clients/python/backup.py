"""The key backup over REST (SPEC.md §9.9, §11.7): create one under a new recovery
phrase, open it with the phrase, upload and download its entries.

The phrase never leaves this process; the server gets the Argon2id parameters, the
check value and the entries, all useless without it.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from protocol.crypto.backup import (
    BackupParams,
    backup_check,
    derive_backup_key,
    identity_entry_id,
    new_phrase,
    open_entry,
    open_identity_entry,
    seal_entry,
    seal_identity_entry,
)
from protocol.crypto.errors import CryptoError
from protocol.crypto.sender_keys import SenderKey

from .errors import ConfrereError
from .rest import Account, request

__all__ = [
    "BackupKey",
    "WrongPhrase",
    "create_backup",
    "download_backup",
    "open_backup",
    "upload_identity",
    "upload_keys",
]

BATCH = 500  # entries per request: the server's limit


class WrongPhrase(ConfrereError):
    """The recovery phrase does not open the account's backup."""


@dataclass(frozen=True, slots=True)
class BackupKey:
    """What writes and reads one backup: its version and the key the phrase gave."""

    version: str
    key: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _derive(phrase: str, params: BackupParams) -> bytes:
    # Argon2id takes 64 MiB and a noticeable moment: off the event loop.
    return await asyncio.to_thread(derive_backup_key, phrase, params)


async def create_backup(account: Account, phrase: str | None = None) -> tuple[str, BackupKey]:
    """Start a new backup (replacing the account's previous one) under ``phrase`` (a new
    one by default); return the phrase, to show once, and the backup's key."""
    phrase = phrase or new_phrase()
    params = BackupParams.generate()
    key = await _derive(phrase, params)
    created = await request(
        account.base_url,
        "PUT",
        "/v1/keys/backup",
        json={
            "salt": _b64(params.salt),
            "opslimit": params.opslimit,
            "memlimit": params.memlimit,
            "check": _b64(backup_check(key)),
        },
        token=account.token,
    )
    return phrase, BackupKey(str(created["version"]), key)


async def open_backup(account: Account, phrase: str) -> BackupKey:
    """The key of the account's backup from its recovery phrase; :class:`WrongPhrase`
    if it is not the phrase (or not a phrase at all), ``ServerError`` ``not_found``
    if the account has no backup."""
    info = await request(account.base_url, "GET", "/v1/keys/backup", token=account.token)
    try:
        params = BackupParams(
            base64.b64decode(info["salt"]), int(info["opslimit"]), int(info["memlimit"])
        )
        key = await _derive(phrase, params)
    except CryptoError as exc:
        raise WrongPhrase(str(exc)) from None
    if not hmac.compare_digest(backup_check(key), base64.b64decode(info["check"])):
        raise WrongPhrase("this is not the recovery phrase of the backup")
    return BackupKey(str(info["version"]), key)


async def upload_keys(account: Account, backup: BackupKey, keys: Iterable[SenderKey]) -> int:
    """Add (or replace) these sender keys in the backup; return how many it holds."""
    return await _upload(account, backup, [seal_entry(backup.key, k) for k in keys])


async def upload_identity(account: Account, backup: BackupKey, identity_file: bytes) -> int:
    """Put the user's identity secret (its identity file bytes) in the backup."""
    return await _upload(account, backup, [seal_identity_entry(backup.key, identity_file)])


async def _upload(account: Account, backup: BackupKey, entries: list[tuple[str, bytes]]) -> int:
    count = 0
    for start in range(0, len(entries), BATCH):
        body = {
            "version": backup.version,
            "entries": [{"id": i, "data": _b64(d)} for i, d in entries[start : start + BATCH]],
        }
        answer = await request(
            account.base_url, "POST", "/v1/keys/backup/entries", json=body, token=account.token
        )
        count = int(answer["entries"])
    return count


async def download_backup(
    account: Account, backup: BackupKey
) -> tuple[list[SenderKey], bytes | None]:
    """Every sender key of the backup, and the identity file it holds (or None); an
    entry that does not open (damaged, or not written with this key) is skipped."""
    keys: list[SenderKey] = []
    identity: bytes | None = None
    identity_id = identity_entry_id(backup.key)
    after = ""
    while True:
        query = urlencode({"version": backup.version, "after": after})
        page = await request(
            account.base_url, "GET", f"/v1/keys/backup/entries?{query}", token=account.token
        )
        for item in page["entries"]:
            data = base64.b64decode(item["data"])
            try:
                if item["id"] == identity_id:
                    identity = open_identity_entry(backup.key, data)
                else:
                    keys.append(open_entry(backup.key, item["id"], data))
            except CryptoError:
                continue
        if not page["next"]:
            return keys, identity
        after = page["next"]
