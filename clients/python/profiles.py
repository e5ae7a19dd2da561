"""Who is who: profile cards by user id (``GET /v1/profiles``, SPEC.md §9), cached.

A message carries its sender's user id, a member list user ids: an application shows
names. :class:`Profiles` fetches the cards it does not hold in batches of at most
:data:`BATCH` ids and keeps each answer, including "not visible to you", for ``ttl_s``
seconds, so rendering a room costs one request, and a colleague's new name or badge
shows up within the TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .rest import Account, request

__all__ = ["BATCH", "Profile", "Profiles"]

BATCH = 100  # the server's limit of ids per request


@dataclass(frozen=True, slots=True)
class Profile:
    """A colleague's public card. ``directory``: the public parts of their directory
    profile (``profile`` id, ``organisations``, ``places``), or ``None`` when they are
    not listed in the directory."""

    user: str
    first_name: str
    last_name: str
    title: str
    specialty: str
    profession: str
    verified: bool
    directory: dict[str, Any] | None

    @property
    def display_name(self) -> str:
        """The name shown: "Dr Anne Martin", or "Anne Martin" without a title."""
        return " ".join(p for p in (self.title, self.first_name, self.last_name) if p)

    @classmethod
    def from_json(cls, card: dict[str, Any]) -> Profile:
        return cls(
            user=str(card["user"]),
            first_name=str(card["first_name"]),
            last_name=str(card["last_name"]),
            title=str(card.get("title") or ""),
            specialty=str(card["specialty"]),
            profession=str(card["profession"]),
            verified=bool(card["verified"]),
            directory=card.get("directory"),
        )


class Profiles:
    """The cards ``account`` may see, cached for ``ttl_s`` seconds."""

    def __init__(
        self,
        account: Account,
        *,
        ttl_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = account
        self.ttl_s = ttl_s
        self._clock = clock
        self._cards: dict[str, tuple[float, Profile | None]] = {}  # id -> (fetched, card)
        self._lock = asyncio.Lock()
        self.requests = 0  # REST calls made (for tests and metrics)

    def cached(self, user_id: str) -> Profile | None:
        """The card held for ``user_id``, fresh or not, without a request."""
        entry = self._cards.get(user_id)
        return entry[1] if entry else None

    def forget(self, user_id: str) -> None:
        self._cards.pop(user_id, None)

    async def get(self, user_ids: Iterable[str]) -> dict[str, Profile]:
        """The cards of ``user_ids`` the account may see (the others are left out)."""
        wanted = list(dict.fromkeys(user_ids))
        async with self._lock:  # one fetch at a time: concurrent callers share results
            now = self._clock()
            stale = [
                u for u in wanted if u not in self._cards or now - self._cards[u][0] >= self.ttl_s
            ]
            for start in range(0, len(stale), BATCH):
                await self._fetch(stale[start : start + BATCH], now)
        return {u: card for u in wanted if (card := self.cached(u)) is not None}

    async def one(self, user_id: str) -> Profile | None:
        return (await self.get([user_id])).get(user_id)

    async def _fetch(self, ids: list[str], now: float) -> None:
        query = ",".join(quote(i, safe="") for i in ids)
        self.requests += 1
        body = await request(
            self.account.base_url, "GET", f"/v1/profiles?users={query}", token=self.account.token
        )
        found = {c["user"]: Profile.from_json(c) for c in body["profiles"]}
        for user_id in ids:
            self._cards[user_id] = (now, found.get(user_id))
