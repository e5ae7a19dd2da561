"""The retention sweeper: closed rooms are purged once closed for longer than their
kind's policy (``CONFRERE_RETENTION_<KIND>_DAYS``; 0 keeps them for ever). A closed
patient case is kept for the time medical-records rules require, then really deleted:
messages, events, memberships and header in one transaction recorded in the audit
log (:mod:`storage.retention`), then each attachment's blob and row, blob first.

Several nodes may sweep at once: a purge re-checks its condition in its transaction
and happens once; blob and row deletions are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Protocol

from storage.base import AttachmentStore
from storage.blobs import BlobStore
from storage.errors import StorageError
from storage.retention import RetentionStore

from .clock import now_ms

__all__ = ["Retention", "RetentionResult", "run_retention", "sweep_retention"]

log = logging.getLogger("confrere.retention")


class _RetentionPorts(RetentionStore, AttachmentStore, Protocol):
    """What the retention sweep uses of the store."""


BATCH = 200
DAY_S = 86_400
KINDS = ("patient_case", "group", "direct")


# Medical records (Code de la santé publique, R1112-7): twenty years.
DEFAULT_DAYS = (("patient_case", 20 * 365.0),)


@dataclass(frozen=True, slots=True)
class Retention:
    """Days a closed room of each kind is kept; kinds absent (or 0) are kept for ever."""

    days: tuple[tuple[str, float], ...] = DEFAULT_DAYS
    interval_s: float = 3600.0

    @classmethod
    def from_env(cls) -> Retention:
        d = cls()
        days = dict(d.days)
        for kind in KINDS:
            raw = os.environ.get(f"CONFRERE_RETENTION_{kind.upper()}_DAYS")
            if raw is not None:
                days[kind] = float(raw)
        interval = float(os.environ.get("CONFRERE_RETENTION_INTERVAL_S", str(d.interval_s)))
        return cls(tuple((k, v) for k, v in days.items() if v > 0), interval)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    rooms: int
    attachments: int
    failed: int


async def sweep_retention(
    store: _RetentionPorts, blobs: BlobStore, retention: Retention, now: int
) -> RetentionResult:
    """One pass: purge what is due (at most ``BATCH`` rooms per kind), then delete the
    attachments of purged rooms. Failures are logged and counted, never raised."""
    rooms = attachments = failed = 0
    for kind, days in retention.days:
        before = now - int(days * DAY_S * 1000)
        for room_id in await store.rooms_to_purge(kind, before, BATCH):
            try:
                if await store.purge_room(room_id, before, now) is not None:
                    rooms += 1
            except StorageError as exc:
                log.warning("room %s not purged yet: %s", room_id, exc)
                failed += 1
    for attachment_id in await store.purged_attachments(BATCH):
        try:
            await blobs.delete(attachment_id)
            await store.delete_attachment(attachment_id)
            attachments += 1
        except StorageError as exc:
            log.warning("attachment %s of a purged room not deleted yet: %s", attachment_id, exc)
            failed += 1
    if rooms or attachments or failed:
        log.info(
            "retention: %d room(s) purged, %d attachment(s) deleted, %d to retry",
            rooms,
            attachments,
            failed,
        )
    return RetentionResult(rooms, attachments, failed)


async def run_retention(store: _RetentionPorts, blobs: BlobStore, retention: Retention) -> None:
    """Sweep now, then every ``interval_s``, until cancelled; a full batch is followed
    at once by another."""
    while True:
        try:
            result = await sweep_retention(store, blobs, retention, now_ms())
        except StorageError as exc:
            log.warning("retention sweep failed: %s", exc)
            result = RetentionResult(0, 0, 0)
        if result.rooms < BATCH and result.attachments < BATCH:
            await asyncio.sleep(retention.interval_s)
