"""SMS through OVHcloud's SMS API ("sms" channel): ``POST {base}/sms/{service}/jobs``.

The request is OVHcloud's signed API call: headers ``X-Ovh-Application`` (the
application key), ``X-Ovh-Consumer`` (the consumer key), ``X-Ovh-Timestamp`` (Unix
seconds) and ``X-Ovh-Signature`` = ``"$1$" + hex SHA-1 of
"<application secret>+<consumer key>+<METHOD>+<full URL>+<body>+<timestamp>"``
(:func:`ovh_signature`, sans-I/O). The body: ``{"message", "receivers": [E.164],
"sender" (or "senderForResponse": true without one), "charset": "UTF-8", "coding":
"8bit", "noStopClause": true, "priority": "high", "validityPeriod": 2880}``; the
answer ``{"ids", "validReceivers", "invalidReceivers", "totalCreditsRemoved"}``.

The recipient is normalised to E.164 with phonenumbers first (:func:`server.fields.e164`): a
number that is not one fails for good, as does a 2xx naming it in
``invalidReceivers`` and a 400 (the request itself is wrong). 401/403/404 (keys or the
service name to fix), 429, 5xx, refused connections and timeouts are retried.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

import httpx

from storage.outbox import Notification

from ..fields import e164
from .providers import DeliveryFailed
from .templates import UnknownTemplate, render_sms

__all__ = ["OvhSms", "OvhSmsSettings", "ovh_signature", "sms_body"]


@dataclass(frozen=True, slots=True)
class OvhSmsSettings:
    base_url: str  # https://eu.api.ovh.com/1.0
    service: str  # the SMS account: sms-ab12345-1
    application_key: str
    application_secret: str = field(repr=False)
    consumer_key: str = field(repr=False)
    sender: str = ""  # a sender name registered with the account; "" = a short number
    timeout_s: float = 15.0

    def check(self) -> None:
        """Raise ``ValueError`` naming the setting that is missing."""
        for value, name in (
            (self.service, "CONFRERE_SMS_SERVICE"),
            (self.application_key, "CONFRERE_SMS_APPLICATION_KEY"),
            (self.application_secret, "CONFRERE_SMS_APPLICATION_SECRET"),
            (self.consumer_key, "CONFRERE_SMS_CONSUMER_KEY"),
        ):
            if not value:
                raise ValueError(f"CONFRERE_SMS_URL needs {name}")
        if "/" in self.service or "?" in self.service:
            raise ValueError("CONFRERE_SMS_SERVICE is an SMS account name, not a path")


def ovh_signature(
    secret: str, consumer_key: str, method: str, url: str, body: str, timestamp: int
) -> str:
    """OVHcloud's API request signature (see the module doc)."""
    text = "+".join((secret, consumer_key, method.upper(), url, body, str(timestamp)))
    return "$1$" + hashlib.sha1(text.encode("utf-8")).hexdigest()  # their scheme: SHA-1


def sms_body(message: str, receiver: str, sender: str) -> str:
    payload: dict[str, object] = {
        "charset": "UTF-8",
        "coding": "8bit",
        "message": message,
        "noStopClause": True,
        "priority": "high",
        "receivers": [receiver],
        "validityPeriod": 2880,
    }
    if sender:
        payload["sender"] = sender
    else:
        payload["senderForResponse"] = True
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class OvhSms:
    def __init__(self, settings: OvhSmsSettings) -> None:
        settings.check()
        self.settings = settings
        self.url = f"{settings.base_url.rstrip('/')}/sms/{settings.service}/jobs"
        self._http = httpx.AsyncClient(timeout=settings.timeout_s, follow_redirects=False)

    async def deliver(self, notification: Notification) -> None:
        s = self.settings
        number = e164(notification.recipient)
        if number is None:
            raise DeliveryFailed("SMS recipient is not a valid phone number", permanent=True)
        try:
            text = render_sms(notification.template, notification.data)
        except UnknownTemplate as exc:
            raise DeliveryFailed(str(exc), permanent=True) from exc
        body = sms_body(text, number, s.sender)
        now = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Ovh-Application": s.application_key,
            "X-Ovh-Consumer": s.consumer_key,
            "X-Ovh-Timestamp": str(now),
            "X-Ovh-Signature": ovh_signature(
                s.application_secret, s.consumer_key, "POST", self.url, body, now
            ),
        }
        try:
            response = await self._http.post(self.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"SMS API unreachable: {type(exc).__name__}") from exc
        status = response.status_code
        if status == 400:
            raise DeliveryFailed("SMS API refused the request: HTTP 400", permanent=True)
        if not 200 <= status < 300:
            raise DeliveryFailed(f"SMS API answered HTTP {status}")
        try:
            answer = response.json()
            invalid = answer.get("invalidReceivers") or []
        except (ValueError, AttributeError) as exc:
            raise DeliveryFailed("SMS API answered something else than JSON") from exc
        if number in invalid:
            raise DeliveryFailed("SMS API: invalid receiver", permanent=True)

    async def close(self) -> None:
        await self._http.aclose()
