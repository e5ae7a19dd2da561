"""Settings, read once from the environment (``CONFRERE_*``). Defaults are the embedded
setup: SQLite and blobs under ./var, the in-process broker, 127.0.0.1:8000.

``server_key`` (base64 of 32 bytes) encrypts server-visible documents at rest; it is
kept out of ``repr`` and never logged. Unset, the key is read from (or generated into)
``server_key_file``, by default ``server.key`` beside the SQLite database (see
:mod:`server.server_key`); ``server_key_previous`` lists keys replaced by a rotation,
still used to read what they sealed."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace

from protocol.limits import HELLO_TIMEOUT_S

from .limits import Limits
from .retention import Retention

__all__ = ["HttpLimits", "Settings"]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CONFRERE_{name}", default)


def _commit_delay_ms(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"CONFRERE_COMMIT_DELAY_MS: milliseconds, 0 or more, not {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one HTTP connection may make a node hold, and for how long
    (:mod:`server.http_protocol`); each from ``CONFRERE_HTTP_<FIELD>``."""

    max_head_bytes: int = 32 * 1024  # request line and header fields
    max_headers: int = 100
    head_timeout_s: float = 10.0  # from the head's first byte (or the connection)
    body_timeout_s: float = 30.0  # longest silence while a body is read
    min_body_rate: float = 4096.0  # bytes/s on average once body_timeout_s has passed

    @classmethod
    def from_env(cls) -> HttpLimits:
        d = cls()
        changes: dict[str, float | int] = {}
        for f in fields(cls):
            raw = os.environ.get(f"CONFRERE_HTTP_{f.name.upper()}")
            if raw is not None:
                changes[f.name] = int(raw) if isinstance(getattr(d, f.name), int) else float(raw)
        return replace(d, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    # Addresses or networks (CIDR) of the reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed: the client address of the per-address limits
    # (log-in, sign-up) and the scheme. Anyone else's forwarded headers are ignored.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    http: HttpLimits = field(default_factory=HttpLimits)
    database_url: str = "sqlite:///var/confrere.db"
    broker_url: str = "memory://"
    # file://relative/dir, file:///absolute/dir or s3://bucket?endpoint=... (storage.blobs)
    blob_url: str = "file://var/blobs"
    # Uploads no message (or referral) referenced within this time are deleted.
    orphan_ttl_s: int = 24 * 3600
    orphan_sweep_interval_s: float = 600.0
    # Lifetime of presigned download URLs of chat files (stores that issue them: S3).
    download_url_ttl_s: int = 300
    server_key: str = field(default="", repr=False)
    server_key_file: str = ""
    # Keys replaced by a rotation, comma-separated base64: still read, never written.
    server_key_previous: str = field(default="", repr=False)
    session_ttl_s: int = 30 * 24 * 3600
    hello_timeout_s: float = HELLO_TIMEOUT_S
    # WebSocket keepalive: a ping per connection every this many seconds (NAT mappings,
    # dead peers); unanswered for two rounds closes with 1011.
    ping_interval_s: float = 20.0
    # Frames queued for one connection before it counts as a slow consumer (close 4008).
    send_queue_frames: int = 2048
    max_inflight_requests: int = 64
    # Argon2id cost: "interactive" (default) or "moderate"; "min" only for throwaway tests.
    password_cost: str = "interactive"
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "info"
    # Notifications (server/notifications): the log sink of e-mail/SMS/push ("" = beside
    # the SQLite database), signed webhooks, retries of the outbox, offline push batching.
    outbox_log: str = ""
    webhook_urls: tuple[str, ...] = field(default_factory=tuple)
    webhook_secret: str = field(default="", repr=False)
    outbox_poll_s: float = 1.0
    outbox_retry_base_ms: int = 1000
    outbox_max_attempts: int = 12
    push_interval_s: float = 1.0
    # E-mail over SMTP (server/notifications/email.py); no host = the log sink.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"  # "starttls", "tls" (implicit, port 465), "none"
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = ""
    smtp_reply_to: str = ""
    smtp_timeout_s: float = 30.0
    smtp_ca_file: str = ""
    # SMS through OVHcloud's SMS API (server/notifications/sms.py); no URL = the log sink.
    sms_url: str = ""
    sms_service: str = ""
    sms_application_key: str = ""
    sms_application_secret: str = field(default="", repr=False)
    sms_consumer_key: str = field(default="", repr=False)
    sms_sender: str = ""
    # Web Push (server/notifications/webpush.py): the VAPID key pair's private key
    # (base64url of 32 bytes, or a PEM) and the contact it names; unset = no Web Push.
    vapid_private_key: str = field(default="", repr=False)
    vapid_subject: str = ""
    # Mobile push (server/notifications/mobile.py): APNs by token (.p8 key file, key id,
    # team id, the app's bundle id) and FCM HTTP v1 (a service account key file).
    apns_key_file: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    apns_url: str = "https://api.push.apple.com"
    fcm_service_account_file: str = ""
    fcm_url: str = "https://fcm.googleapis.com"
    # Guests invited by e-mail: sign-up links point here; invitations last this long.
    public_url: str = "http://127.0.0.1:8000"
    invitation_ttl_s: int = 30 * 24 * 3600
    # Hardening (issue 11): rate and size limits (server.limits, CONFRERE_LIMIT_*), log
    # format ("json" or "text"), how often live connections' sessions are re-checked.
    limits: Limits = field(default_factory=Limits)
    retention: Retention = field(default_factory=Retention)
    log_format: str = "json"
    session_check_interval_s: float = 60.0
    # Commit delay of the sends' group commit (storage/group_commit.py): while sends keep
    # coming, a batch waits up to this long for more of them; 0: off.
    commit_delay_ms: float = 5.0
    # Accounts and identity verification (issue 7; README "Identity verification").
    terms_version: str = "2025-01"
    privacy_version: str = "2025-01"
    signups_per_hour: float = 100.0  # per client address
    # A new sign-up takes the address of an account that never confirmed it after this.
    unconfirmed_account_ttl_s: int = 72 * 3600
    psc_issuer: str = ""  # Pro Santé Connect disabled when empty
    psc_client_id: str = ""
    psc_client_secret: str = field(default="", repr=False)
    psc_redirect_uri: str = ""  # "" = this node's /v1/verification/psc/callback
    identity_retention_s: int = 30 * 24 * 3600  # identity documents, once decided
    identity_sweep_interval_s: float = 3600.0

    @classmethod
    def from_env(cls) -> Settings:
        d = cls()
        origins = tuple(o.strip() for o in _env("ALLOWED_ORIGINS", "").split(",") if o.strip())
        proxies = _env("TRUSTED_PROXIES", ",".join(d.trusted_proxies))
        return cls(
            host=_env("HOST", d.host),
            port=int(_env("PORT", str(d.port))),
            trusted_proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
            http=HttpLimits.from_env(),
            database_url=_env("DATABASE_URL", d.database_url),
            broker_url=_env("BROKER_URL", d.broker_url),
            blob_url=_env("BLOB_URL", d.blob_url),
            orphan_ttl_s=int(_env("ORPHAN_TTL_S", str(d.orphan_ttl_s))),
            orphan_sweep_interval_s=float(
                _env("ORPHAN_SWEEP_INTERVAL_S", str(d.orphan_sweep_interval_s))
            ),
            download_url_ttl_s=int(_env("DOWNLOAD_URL_TTL_S", str(d.download_url_ttl_s))),
            server_key=_env("SERVER_KEY", ""),
            server_key_file=_env("SERVER_KEY_FILE", ""),
            server_key_previous=_env("SERVER_KEY_PREVIOUS", ""),
            session_ttl_s=int(_env("SESSION_TTL_S", str(d.session_ttl_s))),
            hello_timeout_s=float(_env("HELLO_TIMEOUT_S", str(d.hello_timeout_s))),
            ping_interval_s=float(_env("WS_PING_INTERVAL_S", str(d.ping_interval_s))),
            send_queue_frames=int(_env("SEND_QUEUE_FRAMES", str(d.send_queue_frames))),
            max_inflight_requests=int(_env("MAX_INFLIGHT_REQUESTS", str(d.max_inflight_requests))),
            password_cost=_env("PASSWORD_COST", d.password_cost),
            allowed_origins=origins,
            log_level=_env("LOG_LEVEL", d.log_level),
            outbox_log=_env("OUTBOX_LOG", d.outbox_log),
            webhook_urls=tuple(u.strip() for u in _env("WEBHOOK_URLS", "").split(",") if u.strip()),
            webhook_secret=_env("WEBHOOK_SECRET", ""),
            outbox_poll_s=float(_env("OUTBOX_POLL_S", str(d.outbox_poll_s))),
            outbox_retry_base_ms=int(_env("OUTBOX_RETRY_BASE_MS", str(d.outbox_retry_base_ms))),
            outbox_max_attempts=int(_env("OUTBOX_MAX_ATTEMPTS", str(d.outbox_max_attempts))),
            push_interval_s=float(_env("PUSH_INTERVAL_S", str(d.push_interval_s))),
            smtp_host=_env("SMTP_HOST", ""),
            smtp_port=int(_env("SMTP_PORT", str(d.smtp_port))),
            smtp_security=_env("SMTP_SECURITY", d.smtp_security),
            smtp_username=_env("SMTP_USERNAME", ""),
            smtp_password=_env("SMTP_PASSWORD", ""),
            smtp_from=_env("SMTP_FROM", ""),
            smtp_reply_to=_env("SMTP_REPLY_TO", ""),
            smtp_timeout_s=float(_env("SMTP_TIMEOUT_S", str(d.smtp_timeout_s))),
            smtp_ca_file=_env("SMTP_CA_FILE", ""),
            sms_url=_env("SMS_URL", ""),
            sms_service=_env("SMS_SERVICE", ""),
            sms_application_key=_env("SMS_APPLICATION_KEY", ""),
            sms_application_secret=_env("SMS_APPLICATION_SECRET", ""),
            sms_consumer_key=_env("SMS_CONSUMER_KEY", ""),
            sms_sender=_env("SMS_SENDER", ""),
            vapid_private_key=_env("VAPID_PRIVATE_KEY", ""),
            vapid_subject=_env("VAPID_SUBJECT", ""),
            apns_key_file=_env("APNS_KEY_FILE", ""),
            apns_key_id=_env("APNS_KEY_ID", ""),
            apns_team_id=_env("APNS_TEAM_ID", ""),
            apns_topic=_env("APNS_TOPIC", ""),
            apns_url=_env("APNS_URL", d.apns_url),
            fcm_service_account_file=_env("FCM_SERVICE_ACCOUNT_FILE", ""),
            fcm_url=_env("FCM_URL", d.fcm_url),
            public_url=_env("PUBLIC_URL", d.public_url),
            invitation_ttl_s=int(_env("INVITATION_TTL_S", str(d.invitation_ttl_s))),
            limits=Limits.from_env(),
            retention=Retention.from_env(),
            log_format=_env("LOG_FORMAT", d.log_format),
            session_check_interval_s=float(
                _env("SESSION_CHECK_INTERVAL_S", str(d.session_check_interval_s))
            ),
            commit_delay_ms=_commit_delay_ms(_env("COMMIT_DELAY_MS", str(d.commit_delay_ms))),
            terms_version=_env("TERMS_VERSION", d.terms_version),
            privacy_version=_env("PRIVACY_VERSION", d.privacy_version),
            signups_per_hour=float(_env("SIGNUPS_PER_HOUR", str(d.signups_per_hour))),
            unconfirmed_account_ttl_s=int(
                _env("UNCONFIRMED_ACCOUNT_TTL_S", str(d.unconfirmed_account_ttl_s))
            ),
            psc_issuer=_env("PSC_ISSUER", ""),
            psc_client_id=_env("PSC_CLIENT_ID", ""),
            psc_client_secret=_env("PSC_CLIENT_SECRET", ""),
            psc_redirect_uri=_env("PSC_REDIRECT_URI", ""),
            identity_retention_s=int(_env("IDENTITY_RETENTION_S", str(d.identity_retention_s))),
            identity_sweep_interval_s=float(
                _env("IDENTITY_SWEEP_INTERVAL_S", str(d.identity_sweep_interval_s))
            ),
        )
