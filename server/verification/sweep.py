"""The identity documents' retention sweep (an I/O adapter over the pure rules): every
``interval_s``, delete the documents of requests decided more than ``retention_ms``
ago, and photos staged but never submitted (or replaced) for a day. Blob first, then
row: a crash in between leaves a row whose blob is gone, which the next pass deletes.
"""

from __future__ import annotations

import asyncio
import logging

from storage.blobs import BlobStore
from storage.verification import VerificationStore

from ..clock import now_ms

__all__ = ["STAGED_TTL_MS", "run_identity_sweeper", "sweep_identity_documents"]

log = logging.getLogger("confrere.verification")

STAGED_TTL_MS = 24 * 3600 * 1000
_BATCH = 100


async def sweep_identity_documents(
    store: VerificationStore, blobs: BlobStore, retention_ms: int
) -> int:
    """One pass; returns the number of documents deleted."""
    deleted = 0
    while True:
        now = now_ms()
        ids = await store.expired_identity_documents(
            now - retention_ms, now - STAGED_TTL_MS, _BATCH
        )
        for doc_id in ids:
            await blobs.delete(doc_id)
        if ids:
            await store.forget_identity_documents(ids, now)
        deleted += len(ids)
        if len(ids) < _BATCH:
            return deleted


async def run_identity_sweeper(
    store: VerificationStore, blobs: BlobStore, retention_s: int, interval_s: float
) -> None:
    while True:
        try:
            deleted = await sweep_identity_documents(store, blobs, retention_s * 1000)
            if deleted:
                log.info("retention: %d identity documents deleted", deleted)
        except Exception as exc:  # storage trouble: try again next time
            log.warning("identity document sweep failed: %s", exc)
        await asyncio.sleep(interval_s)
