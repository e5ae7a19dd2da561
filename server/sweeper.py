"""The orphan sweep: uploads that no message (or referral) referenced within
``orphan_ttl_s`` are deleted, blob first, then row.

Each candidate is first *claimed* (:meth:`Store.claim_attachment_deletion` with
``unreferenced_before``): the claim succeeds only if the attachment is still
unreferenced, and once it has, no message can reference it any more, so a send racing
the sweep either keeps the file or is refused, never left pointing at a deleted one.
The blob goes before the row so that a failure in between leaves a row in state
"deleting", which the next sweep claims and finishes; never a blob that no row names.
Several nodes may sweep at once: claims and deletions are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from storage.base import AttachmentStore
from storage.blobs import BlobStore
from storage.errors import StorageError

from .clock import now_ms

__all__ = ["SweepResult", "finish_deletion", "run_sweeper", "sweep_orphans"]

log = logging.getLogger("confrere.attachments")

BATCH = 500
FINISH_ATTEMPTS = 8  # 1 s, 2 s, 4 s... about 4 minutes before leaving it to the sweep
_finishing: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class SweepResult:
    deleted: int
    failed: int


async def sweep_orphans(
    store: AttachmentStore, blobs: BlobStore, *, now: int, ttl_s: float, limit: int = BATCH
) -> SweepResult:
    """Delete up to ``limit`` attachments created before ``now - ttl_s`` (``now`` in
    ms) and never referenced. Failures are logged and counted, never raised."""
    before = now - int(ttl_s * 1000)
    deleted = failed = 0
    for candidate in await store.unreferenced_attachments(before, limit):
        try:
            if await store.claim_attachment_deletion(candidate.id, unreferenced_before=before):
                await blobs.delete(candidate.id)
                await store.delete_attachment(candidate.id)
                deleted += 1
        except StorageError as exc:
            log.warning("orphan %s not deleted yet: %s", candidate.id, exc)
            failed += 1
    if deleted or failed:
        log.info("orphan sweep: %d deleted, %d to retry", deleted, failed)
    return SweepResult(deleted, failed)


def finish_deletion(store: AttachmentStore, blobs: BlobStore, attachment_id: str) -> None:
    """An uploader's delete whose blob could not be removed (the blob store failed
    midway): keep trying in the background. The row stays in state "deleting" and
    unreferenced (everyone already gets 404), so if this node dies first, the orphan
    sweep claims and finishes it."""

    async def retry() -> None:
        for attempt in range(FINISH_ATTEMPTS):
            await asyncio.sleep(2.0**attempt)
            try:
                await blobs.delete(attachment_id)
                await store.delete_attachment(attachment_id)
                log.info("deletion of attachment %s finished", attachment_id)
                return
            except StorageError as exc:
                log.warning("attachment %s still not deleted: %s", attachment_id, exc)
        log.warning("attachment %s left to the orphan sweep", attachment_id)

    task = asyncio.create_task(retry(), name="attachment-deletion")
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


async def run_sweeper(
    store: AttachmentStore, blobs: BlobStore, ttl_s: float, interval_s: float
) -> None:
    """Sweep now, then every ``interval_s`` seconds, until cancelled. A batch that
    deleted a full ``BATCH`` is followed at once by another."""
    while True:
        try:
            result = await sweep_orphans(store, blobs, now=now_ms(), ttl_s=ttl_s)
        except StorageError as exc:
            log.warning("orphan sweep failed: %s", exc)
            result = SweepResult(0, 0)
        if result.deleted < BATCH:
            await asyncio.sleep(interval_s)
