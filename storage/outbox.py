"""The notification outbox: what the store offers, and its rows.

A notification is written in the same transaction as the event that causes it (an
invitation, an e-mail code, a booking...), so an event that committed always gets its
notification and one that rolled back never does. A worker claims due rows, hands them to
a provider and marks them sent, or failed with a retry time; a claim is a lease
(``next_attempt_at`` moves to the end of the lease), so a worker that dies mid-delivery
only delays its rows, and several nodes never deliver a row at the same time.
Delivery is at least once: a provider must tolerate a repeat after a crash.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "CHANNELS",
    "Channel",
    "NewNotification",
    "Notification",
    "OutboxStore",
    "SENSITIVE_KEYS",
    "dump_data",
    "load_data",
]

Channel = Literal["email", "sms", "push", "webhook"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "push", "webhook")
NotificationState = Literal["pending", "sent", "failed"]


@dataclass(frozen=True, slots=True)
class NewNotification:
    """``data`` is JSON-serialisable; it never holds message plaintext."""

    channel: Channel
    recipient: str
    template: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    channel: Channel
    recipient: str
    template: str
    data: dict[str, Any]
    state: NotificationState
    attempts: int
    next_attempt_at: int
    created_at: int
    sent_at: int | None
    last_error: str | None


# Data keys holding secrets (e-mail codes, sign-up links) or links naming an address:
# blanked ("") in the same UPDATE that marks a row sent or finally failed, so the outbox
# does not keep them once they cannot be delivered any more (both adapters).
SENSITIVE_KEYS: tuple[str, ...] = ("code", "url", "signup_url", "token")


def dump_data(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def load_data(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


class OutboxStore(Protocol):
    async def enqueue_notifications(self, items: Sequence[NewNotification], now: int) -> list[int]:
        """Store ``items`` as pending, due now; return their ids in order."""

    async def claim_notifications(self, now: int, limit: int, lease_ms: int) -> list[Notification]:
        """Up to ``limit`` pending rows due at ``now``, oldest due first, each leased until
        ``now + lease_ms`` (its ``attempts`` counts this claim)."""

    async def mark_notification_sent(self, notification_id: int, now: int) -> None: ...

    async def mark_notifications_sent(self, notification_ids: Sequence[int], now: int) -> None:
        """Mark several sent in one transaction (a worker's round: one commit, not one
        per notification)."""

    async def mark_notification_failed(
        self, notification_id: int, error: str, retry_at: int | None, now: int
    ) -> None:
        """Pending again from ``retry_at``, or ``failed`` for good when it is ``None``."""

    async def notifications(
        self, channel: Channel | None = None, recipient: str | None = None, limit: int = 100
    ) -> list[Notification]:
        """Rows of any state, newest first, filtered by channel and/or recipient."""

    async def outbox_backlog(self, now: int) -> int:
        """Pending rows due at ``now`` (a gauge for /metrics)."""
