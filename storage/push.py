"""Push subscriptions: where to wake each device of an account (what the store offers).

One subscription per device: a Web Push subscription of a browser (``webpush``: its
push service endpoint and its keys, RFC 8291), or a mobile app's token (``apns``,
``fcm``). A device subscribing again replaces its subscription. A push service that
answers "gone" (404/410, an unregistered token) removes it, but only if it is still
the one that was tried (a device that subscribed again meanwhile keeps its new one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["PUSH_KINDS", "PushKind", "PushStore", "PushSubscription"]

PushKind = Literal["webpush", "apns", "fcm"]
PUSH_KINDS: tuple[PushKind, ...] = ("webpush", "apns", "fcm")


@dataclass(frozen=True, slots=True)
class PushSubscription:
    device_id: str
    user_id: str
    kind: PushKind
    endpoint: str  # the Web Push endpoint URL, or the APNs / FCM device token
    p256dh: str  # Web Push: the browser's P-256 key (base64url); "" otherwise
    auth: str  # Web Push: the 16-byte auth secret (base64url); "" otherwise
    created_at: int


class PushStore(Protocol):
    async def put_push_subscription(self, subscription: PushSubscription) -> None:
        """Store (or replace) the subscription of its device."""

    async def push_subscriptions_of(self, user_id: str) -> list[PushSubscription]:
        """The account's subscriptions, one per subscribed device."""

    async def delete_push_subscription(self, device_id: str, endpoint: str | None = None) -> bool:
        """Remove the device's subscription (only if it still has ``endpoint``, when
        given); whether one was removed."""
