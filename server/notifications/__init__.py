"""Notifications: the outbox worker and its providers, webhooks, offline push.

Rows are written to the outbox (:mod:`storage.outbox`) in the transaction of the event
that causes them; :class:`OutboxWorker` delivers them through one provider per
channel. The defaults: e-mail, SMS and push go to a :class:`LogSink` (one JSON line
per notification, ``var/outbox.jsonl`` beside the SQLite database unless
``CONFRERE_OUTBOX_LOG`` says otherwise); e-mail goes over SMTP once
``CONFRERE_SMTP_HOST`` is set (:mod:`.email`), SMS through OVHcloud's API once
``CONFRERE_SMS_URL`` is (:mod:`.sms`), push to browsers by Web Push once
``CONFRERE_VAPID_PRIVATE_KEY`` is (:mod:`.webpush`) and to the mobile apps by APNs
and FCM once their keys are (:mod:`.mobile`); webhooks are POSTed signed
(:mod:`.signing`) to the URLs of ``CONFRERE_WEBHOOK_URLS`` (https, or plain http to
a loopback host only). Delivery is at least once: a receiver deduplicates on the
signed body's ``id`` (the outbox row's, the same on every retry).
:func:`open_notifications` builds the set from the settings; the app starts and
closes it.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from storage.guests import ReminderPolicy
from storage.push import PushStore

from ..config import Settings
from ..presence import Presence
from ..ratelimit import RateLimiter
from ..server_key import ServerKey
from .email import SmtpProvider, SmtpSettings
from .mobile import Apns, ApnsSettings, Fcm, FcmSettings
from .providers import DeliveryFailed, LogSink, Provider, WebhookProvider, webhook_body
from .push import OfflinePush, PushPorts, push_title
from .signing import SIGNATURE_HEADER, sign, verify
from .sms import OvhSms, OvhSmsSettings
from .webpush import PushFanout, PushSender, WebPush, WebPushSettings
from .worker import Backoff, OutboxWorker

__all__ = [
    "Apns",
    "ApnsSettings",
    "Fcm",
    "FcmSettings",
    "SIGNATURE_HEADER",
    "Backoff",
    "DeliveryFailed",
    "LogSink",
    "Notifications",
    "OfflinePush",
    "OutboxWorker",
    "OvhSms",
    "OvhSmsSettings",
    "PushFanout",
    "Provider",
    "SmtpProvider",
    "SmtpSettings",
    "WebPush",
    "WebPushSettings",
    "WebhookProvider",
    "check_webhook_url",
    "open_notifications",
    "outbox_log_path",
    "push_title",
    "smtp_settings",
    "sign",
    "verify",
    "webhook_body",
]


@dataclass(slots=True)
class Notifications:
    """What handlers need to notify: the worker to wake after enqueueing, the offline
    push batcher, where webhooks and sign-up links point, how invitations last."""

    worker: OutboxWorker
    push: OfflinePush
    webhook_urls: tuple[str, ...]
    public_url: str
    invitations: ReminderPolicy
    # The VAPID public key browsers subscribe with (applicationServerKey); "" = no Web Push.
    vapid_public_key: str = ""
    # Guest invitation e-mails one practitioner may cause, per node: 100, then 100 an hour.
    invite_mails: RateLimiter = field(default_factory=lambda: RateLimiter(100 / 3600, 100))

    def start(self) -> None:
        self.worker.start()
        self.push.start()

    async def close(self) -> None:
        await self.push.close()
        await self.worker.close()


def outbox_log_path(settings: Settings) -> Path:
    """``CONFRERE_OUTBOX_LOG``, else ``outbox.jsonl`` beside the SQLite database, else
    ``./var/outbox.jsonl``."""
    if settings.outbox_log:
        return Path(settings.outbox_log)
    scheme, _, rest = settings.database_url.partition("://")
    if scheme == "sqlite":
        return Path(rest[1:] if rest.startswith("/") else rest).parent / "outbox.jsonl"
    return Path("var/outbox.jsonl")


_LOOPBACK_HOSTS = ("localhost", "::1")


def check_webhook_url(url: str, setting: str = "CONFRERE_WEBHOOK_URLS") -> None:
    """Raise ``ValueError`` (naming ``setting``) unless ``url`` is https, or plain http
    to a loopback host (a receiver on the same machine): over plain http to another
    host the body, personal data included, would cross the network in clear."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            if host in _LOOPBACK_HOSTS:
                return
        raise ValueError(f"{setting}: {url!r}: plain http only to a loopback host")
    raise ValueError(f"{setting}: {url!r} is not an https URL")


def smtp_settings(settings: Settings) -> SmtpSettings:
    return SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password,
        sender=settings.smtp_from,
        reply_to=settings.smtp_reply_to,
        timeout_s=settings.smtp_timeout_s,
        ca_file=settings.smtp_ca_file,
    )


class NotificationPorts(PushPorts, PushStore, Protocol):
    """What the outbox worker, offline push and Web Push use of the store."""


def open_notifications(
    store: NotificationPorts,
    presence: Presence,
    settings: Settings,
    server_key: ServerKey | None = None,
) -> Notifications:
    """The notification set the settings describe (not started yet). Raises
    ``ValueError`` when webhook URLs are not http(s) or come without a secret, or a
    provider's settings cannot work (naming the setting)."""
    if settings.webhook_urls and not settings.webhook_secret:
        raise ValueError("CONFRERE_WEBHOOK_URLS needs CONFRERE_WEBHOOK_SECRET to sign requests")
    for url in settings.webhook_urls:
        check_webhook_url(url)
    sink = LogSink(outbox_log_path(settings))
    providers: dict[str, Provider] = {"email": sink, "sms": sink, "push": sink}
    if settings.smtp_host:
        providers["email"] = SmtpProvider(smtp_settings(settings))
    if settings.sms_url:
        check_webhook_url(settings.sms_url, "CONFRERE_SMS_URL")
        providers["sms"] = OvhSms(
            OvhSmsSettings(
                base_url=settings.sms_url,
                service=settings.sms_service,
                application_key=settings.sms_application_key,
                application_secret=settings.sms_application_secret,
                consumer_key=settings.sms_consumer_key,
                sender=settings.sms_sender,
            )
        )
    if settings.webhook_secret:
        providers["webhook"] = WebhookProvider(settings.webhook_secret.encode("utf-8"))
    vapid_public_key = ""
    senders: dict[str, PushSender] = {}
    if settings.vapid_private_key:
        web_push = WebPush(WebPushSettings(settings.vapid_private_key, settings.vapid_subject))
        vapid_public_key = web_push.public_key
        senders["webpush"] = web_push
    if settings.apns_key_file:
        check_webhook_url(settings.apns_url, "CONFRERE_APNS_URL")
        key = Path(settings.apns_key_file).read_text("utf-8")
        senders["apns"] = Apns(
            ApnsSettings(
                key,
                settings.apns_key_id,
                settings.apns_team_id,
                settings.apns_topic,
                settings.apns_url,
            )
        )
    if settings.fcm_service_account_file:
        check_webhook_url(settings.fcm_url, "CONFRERE_FCM_URL")
        account = json.loads(Path(settings.fcm_service_account_file).read_text("utf-8"))
        senders["fcm"] = Fcm(FcmSettings(account, settings.fcm_url))
    if senders:
        providers["push"] = PushFanout(store, senders)
    worker = OutboxWorker(
        store,
        providers,
        backoff=Backoff(
            base_ms=settings.outbox_retry_base_ms,
            max_attempts=settings.outbox_max_attempts,
        ),
        poll_s=settings.outbox_poll_s,
        server_key=server_key,
    )
    push = OfflinePush(
        store, presence, interval_s=settings.push_interval_s, on_enqueued=worker.kick
    )
    return Notifications(
        worker,
        push,
        settings.webhook_urls,
        settings.public_url.rstrip("/"),
        ReminderPolicy(ttl_ms=settings.invitation_ttl_s * 1000),
        vapid_public_key=vapid_public_key,
    )
