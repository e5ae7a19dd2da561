"""Presence for a single node: connection counts in memory."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MemoryPresence"]


class MemoryPresence:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._counts.clear()

    async def connected(self, user_id: str) -> None:
        self._counts[user_id] = self._counts.get(user_id, 0) + 1

    async def disconnected(self, user_id: str) -> None:
        left = self._counts.get(user_id, 0) - 1
        if left > 0:
            self._counts[user_id] = left
        else:
            self._counts.pop(user_id, None)

    async def online(self, user_ids: Sequence[str]) -> set[str]:
        return {u for u in user_ids if u in self._counts}
