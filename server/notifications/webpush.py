"""Web Push to browsers (RFC 8030), the payload encrypted for the subscription (RFC 8291,
``aes128gcm`` with http_ece) and the request signed by the server (VAPID, RFC 8292,
ES256 with py_vapid), and the "push" channel's fan-out over an account's devices.

What a push carries: ``{"title", "room"}`` (the title of :func:`~.push.push_title`,
never a message's content or sender), readable only by the browser that subscribed;
the service worker shows it and opens the conversation on click. The request:
``POST <endpoint>`` with ``Content-Encoding: aes128gcm``, ``TTL`` (a day),
``Urgency: high`` and ``Authorization: vapid t=<JWT>,k=<public key>``; the JWT's
``aud`` is the endpoint's origin, ``exp`` 12 hours ahead, ``sub`` the contact.

A 201/202 is a delivery; 404/410 mean the subscription is gone (removed from the
store); 413 and other 4xx fail for good; 429, 5xx, refused connections and timeouts
are retried (the outbox's backoff).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from storage.outbox import Notification
from storage.push import PushStore, PushSubscription

from .providers import DeliveryFailed

__all__ = [
    "PushFanout",
    "PushSender",
    "Sent",
    "WebPush",
    "WebPushSettings",
    "b64url",
    "check_web_push_keys",
    "unb64url",
]

Sent = Literal["sent", "gone"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_web_push_keys(p256dh: str, auth: str) -> None:
    """Raise ``ValueError`` unless ``p256dh`` is a P-256 public key (65 bytes,
    uncompressed, on the curve) and ``auth`` 16 bytes, both base64url."""
    try:
        point = unb64url(p256dh)
        secret = unb64url(auth)
    except ValueError as exc:
        raise ValueError("keys must be base64url") from exc
    if len(point) != 65 or len(secret) != 16:
        raise ValueError("p256dh must be 65 bytes and auth 16 bytes")
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # ValueError if off


class PushSender(Protocol):
    async def send(self, subscription: PushSubscription, title: str, room: str) -> Sent:
        """Push to one device: "sent", or "gone" (the subscription is dead); raises
        :class:`DeliveryFailed` otherwise."""

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WebPushSettings:
    private_key: str = field(repr=False)  # base64url of the raw 32 bytes, or a PEM
    subject: str  # mailto:contact@example.fr or an https URL
    ttl_s: int = 86_400
    timeout_s: float = 10.0


class WebPush:
    def __init__(self, settings: WebPushSettings) -> None:
        key = settings.private_key.strip()
        try:
            self._vapid = (
                Vapid02.from_pem(key.encode()) if "BEGIN" in key else Vapid02.from_string(key)
            )
        except Exception as exc:  # py_vapid raises several kinds
            raise ValueError("CONFRERE_VAPID_PRIVATE_KEY is not a P-256 private key") from exc
        if not settings.subject.startswith(("mailto:", "https://")):
            raise ValueError("CONFRERE_VAPID_SUBJECT must be a mailto: or https: URL")
        self.settings = settings
        point = self._vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key = b64url(point)  # the browser's applicationServerKey
        self._http = httpx.AsyncClient(timeout=settings.timeout_s, follow_redirects=False)

    def encrypt(self, subscription: PushSubscription, payload: bytes) -> bytes:
        """The RFC 8291 body: aes128gcm, a fresh key pair and salt per message."""
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        body: bytes = http_ece.encrypt(
            payload,
            salt=os.urandom(16),
            private_key=ephemeral,
            dh=unb64url(subscription.p256dh),
            auth_secret=unb64url(subscription.auth),
            version="aes128gcm",
        )
        return body

    def authorization(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(time.time()) + 12 * 3600,
            "sub": self.settings.subject,
        }
        header: str = self._vapid.sign(claims)["Authorization"]
        return header

    async def send(self, subscription: PushSubscription, title: str, room: str) -> Sent:
        payload = json.dumps({"title": title, "room": room}, ensure_ascii=False).encode()
        body = await asyncio.to_thread(self.encrypt, subscription, payload)
        headers = {
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self.settings.ttl_s),
            "Urgency": "high",
            "Authorization": self.authorization(subscription.endpoint),
        }
        try:
            response = await self._http.post(subscription.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"push service unreachable: {type(exc).__name__}") from exc
        status = response.status_code
        if status in (200, 201, 202):
            return "sent"
        if status in (404, 410):
            return "gone"
        if status == 429 or status >= 500:
            raise DeliveryFailed(f"push service answered HTTP {status}")
        raise DeliveryFailed(f"push service refused: HTTP {status}", permanent=True)

    async def close(self) -> None:
        await self._http.aclose()


class PushFanout:
    """The "push" channel: a notification for an account goes to each of its
    subscribed devices, through the sender of the subscription's kind (devices of a
    kind without a sender are skipped). Gone subscriptions are removed. The
    notification fails (to be retried) only when no device got it and one failed for
    a reason that may pass; an account without subscriptions has nothing to wake."""

    def __init__(self, store: PushStore, senders: Mapping[str, PushSender]) -> None:
        self.store = store
        self.senders = dict(senders)

    async def deliver(self, notification: Notification) -> None:
        subscriptions = [
            s
            for s in await self.store.push_subscriptions_of(notification.recipient)
            if s.kind in self.senders
        ]
        title = str(notification.data.get("title", "Nouveau message"))
        room = str(notification.data.get("room", ""))
        outcomes = await asyncio.gather(
            *(self.senders[s.kind].send(s, title, room) for s in subscriptions),
            return_exceptions=True,
        )
        sent = 0
        retry: list[str] = []
        for subscription, outcome in zip(subscriptions, outcomes, strict=True):
            if outcome == "gone":
                await self.store.delete_push_subscription(
                    subscription.device_id, subscription.endpoint
                )
            elif outcome == "sent":
                sent += 1
            elif isinstance(outcome, DeliveryFailed):
                if not outcome.permanent:
                    retry.append(str(outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
        if retry and not sent:
            raise DeliveryFailed(retry[0])

    async def close(self) -> None:
        for sender in {id(s): s for s in self.senders.values()}.values():
            await sender.close()
