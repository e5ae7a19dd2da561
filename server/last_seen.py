"""Devices' "last seen" (``GET /v1/devices``), written in batches.

Every hello records when its device was seen. One write transaction per hello made
the writer (and its fsync) a large share of a connection's cost, and in a reconnect
storm thousands of them queue behind the messages' commits. Instead, a hello notes the
time in memory and returns; one flush at a time writes everything noted, in one
transaction, and whatever is noted while a flush runs goes into the next (the group
commit of :mod:`storage.group_commit`, without waiters: nobody awaits a last-seen).
Under no load a device's last-seen is written at once; under a storm, one transaction
carries hundreds. A failed flush is logged and dropped: last-seen is informational,
and the device's next hello records it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

__all__ = ["LastSeen"]

log = logging.getLogger("confrere.last_seen")


class _Store(Protocol):
    async def touch_devices(self, seen: Mapping[str, int]) -> None: ...


class LastSeen:
    def __init__(self, store: _Store) -> None:
        self._store = store
        self._noted: dict[str, int] = {}
        self._flush: asyncio.Task[None] | None = None
        self.batches = 0

    def note(self, device_id: str, now_ms: int) -> None:
        """The device was seen at ``now_ms``; written soon, never awaited."""
        self._noted[device_id] = now_ms
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(
                self._write(), name="last-seen-flush"
            )

    async def _write(self) -> None:
        try:
            while self._noted:
                batch, self._noted = self._noted, {}
                try:
                    await self._store.touch_devices(batch)
                    self.batches += 1
                except Exception as exc:
                    log.info("last seen of %d devices not recorded: %s", len(batch), exc)
        finally:
            self._flush = None

    async def flush(self) -> None:
        """Return once everything noted so far is written (at shutdown, before the
        store closes)."""
        while self._flush is not None:
            await asyncio.shield(self._flush)
