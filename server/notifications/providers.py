"""Delivery providers of the notification outbox: one per channel, pluggable.

A provider delivers one :class:`~storage.outbox.Notification` or raises
:class:`DeliveryFailed` (the worker then retries later with backoff, or gives up);
it never retries by itself and never logs recipients or contents.

- :class:`LogSink` (the default for "email", "sms" and "push"): appends one JSON line
  per notification to a file that a person, a test or a log shipper reads
  (``var/outbox.jsonl`` beside the SQLite database by default). Lines are written with
  one ``write`` on a file opened in append mode, so nodes sharing the file do not
  interleave them. The file holds addresses and e-mail codes: it is created 0600.
- :class:`WebhookProvider` ("webhook"): POSTs the notification as JSON to its
  recipient URL, signed (:mod:`.signing`); any 2xx is a delivery, anything else
  (other statuses, refused connections, timeouts) a failure to retry.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import httpx

from storage.outbox import Notification

from .signing import SIGNATURE_HEADER, sign

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "DeliveryFailed",
    "LogSink",
    "Provider",
    "WebhookProvider",
    "webhook_body",
]

DELIVERY_HEADER = "Confrere-Delivery"  # the notification id: receivers deduplicate by it
EVENT_HEADER = "Confrere-Event"


class DeliveryFailed(Exception):
    """Not delivered this time. The message is stored as the notification's
    ``last_error``: it names what failed (a status, an exception type), never a
    recipient or a secret. ``permanent``: trying again cannot succeed (an address or
    number refused for good, a template the provider cannot write): the worker gives
    up at once instead of retrying."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Provider(Protocol):
    async def deliver(self, notification: Notification) -> None:
        """Deliver, or raise :class:`DeliveryFailed`."""

    async def close(self) -> None: ...


class LogSink:
    """Appends each notification as one JSON line to ``path`` (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _append(self, line: bytes) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    async def deliver(self, notification: Notification) -> None:
        record = {
            "id": notification.id,
            "channel": notification.channel,
            "recipient": notification.recipient,
            "template": notification.template,
            "data": notification.data,
            "created_at": notification.created_at,
            "delivered_at": time.time_ns() // 1_000_000,
        }
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        try:
            await asyncio.to_thread(self._append, line.encode("utf-8"))
        except OSError as exc:
            raise DeliveryFailed(f"log sink not writable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        return None


def webhook_body(notification: Notification) -> bytes:
    """The JSON a webhook receiver gets: ``{id, type, created_at, data}``."""
    payload: dict[str, Any] = {
        "id": notification.id,
        "type": notification.template,
        "created_at": notification.created_at,
        "data": notification.data,
    }
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")


class WebhookProvider:
    """POSTs signed JSON to the notification's recipient URL (see :mod:`.signing`)."""

    def __init__(self, secret: bytes, *, timeout_s: float = 10.0) -> None:
        self._secret = secret
        # No redirects: a signed body goes only where it was configured to go.
        self._http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def deliver(self, notification: Notification) -> None:
        body = webhook_body(notification)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, int(time.time()), body),
            DELIVERY_HEADER: str(notification.id),
            EVENT_HEADER: notification.template,
        }
        try:
            response = await self._http.post(notification.recipient, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook unreachable: {type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"webhook answered HTTP {response.status_code}")

    async def close(self) -> None:
        await self._http.aclose()
