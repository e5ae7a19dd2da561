"""The outbox worker: delivers pending notifications through their channel's provider.

Every node runs one. Each round it *claims* a batch of due notifications
(:meth:`~storage.outbox.OutboxStore.claim_notifications`, which leases them for
``lease_ms`` so that no other node delivers them meanwhile), delivers them
concurrently, and records each outcome: sent, or failed with the time of the next
attempt (exponential backoff: ``retry_base_ms`` doubled per attempt, capped at
``retry_cap_ms``, with jitter), or failed for good after ``max_attempts`` (or at once
when the provider says a retry cannot succeed: :attr:`DeliveryFailed.permanent`).

Guarantee: a notification is delivered at least once while attempts remain, and once
in the normal course (claimed by one node, marked sent once the provider accepted it:
the round's successes in one transaction, so a busy outbox costs one commit per round,
not one per notification). A node that dies between a provider's success and the mark leaves the
lease to expire and the notification is delivered again: webhook receivers
deduplicate by the ``Confrere-Delivery`` id.

A round runs every ``poll_s`` seconds, at once after :meth:`OutboxWorker.kick` (called
by whoever just enqueued something on this node), and again at once while rounds come
back full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

from storage.errors import StorageError
from storage.outbox import Notification, OutboxStore

from ..clock import now_ms
from .providers import DeliveryFailed, Provider

__all__ = ["Backoff", "OutboxWorker"]

log = logging.getLogger("confrere.outbox")


@dataclass(frozen=True, slots=True)
class Backoff:
    """When to try again after a failure (sans-I/O: pure arithmetic)."""

    base_ms: int = 1_000
    cap_ms: int = 3_600_000
    max_attempts: int = 12

    def retry_at(self, now: int, attempts: int, rand: float) -> int | None:
        """The time of the next attempt after ``attempts`` failed ones (``rand`` in
        [0, 1) spreads retries of many failures over the last quarter of the delay),
        or ``None`` once ``max_attempts`` have been made."""
        if attempts >= self.max_attempts:
            return None
        delay = min(self.cap_ms, self.base_ms * 2 ** max(0, attempts - 1))
        return now + int(delay * (0.75 + 0.25 * rand))


class OutboxWorker:
    def __init__(
        self,
        store: OutboxStore,
        providers: Mapping[str, Provider],
        *,
        backoff: Backoff | None = None,
        batch: int = 50,
        lease_ms: int = 60_000,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.providers = dict(providers)
        self.backoff = backoff or Backoff()
        self.batch = batch
        self.lease_ms = lease_ms
        self.poll_s = poll_s
        self.delivered = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Something was enqueued: run a round now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def close(self) -> None:
        """Stop the loop (a delivery in flight is cancelled: its lease expires and it is
        retried), then close the providers."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for provider in {id(p): p for p in self.providers.values()}.values():
            await provider.close()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                count = await self.run_once()
            except StorageError as exc:
                log.warning("outbox round failed: %s", exc)
                count = 0
            if count >= self.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def run_once(self) -> int:
        """Claim one batch of due notifications and deliver it; return how many were
        claimed."""
        claimed = await self.store.claim_notifications(now_ms(), self.batch, self.lease_ms)
        if claimed:
            outcomes = await asyncio.gather(*(self._deliver(n) for n in claimed))
            sent = [n.id for n, ok in zip(claimed, outcomes, strict=True) if ok]
            if sent:  # one transaction for the round's successes
                await self.store.mark_notifications_sent(sent, now_ms())
                self.delivered += len(sent)
        return len(claimed)

    async def _deliver(self, n: Notification) -> bool:
        """Deliver; on failure record it (retry time or give-up) and return false."""
        provider = self.providers.get(n.channel)
        try:
            if provider is None:
                raise DeliveryFailed(f"no provider for channel {n.channel!r}")
            await provider.deliver(n)
        except DeliveryFailed as exc:
            await self._failed(n, str(exc), permanent=provider is None or exc.permanent)
            return False
        except Exception as exc:  # a provider's bug must not stop the worker
            log.exception("provider for %s failed on notification %d", n.channel, n.id)
            await self._failed(n, f"provider error: {type(exc).__name__}", permanent=False)
            return False
        return True

    async def _failed(self, n: Notification, error: str, *, permanent: bool) -> None:
        now = now_ms()
        attempts = n.attempts  # the claim counted this attempt
        retry_at = None if permanent else self.backoff.retry_at(now, attempts, random.random())
        await self.store.mark_notification_failed(n.id, error, retry_at, now)
        self.failed += 1
        if retry_at is None:
            log.warning(
                "notification %d (%s) given up after %d attempts: %s",
                n.id,
                n.channel,
                attempts,
                error,
            )
        else:
            log.info(
                "notification %d (%s) failed, retry in %d ms: %s",
                n.id,
                n.channel,
                retry_at - now,
                error,
            )
