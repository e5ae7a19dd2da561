"""E-mail over SMTP ("email" channel), with aiosmtplib.

One SMTP session per notification (at most ``max_connections`` at a time per node),
secured by STARTTLS (``security="starttls"``, the submission port 587) or implicit TLS
(``"tls"``, port 465); ``"none"`` (clear text) is accepted only towards a loopback
host, a relay on the same machine. Certificates are verified (against ``ca_file``
when given, else the system's store). With a username, the session authenticates
(after TLS: the password never crosses in clear).

Each message has a French plain-text and HTML body (:mod:`.templates`), ``From`` and
``Reply-To`` from the settings, and a ``Message-ID`` made of the outbox row's id: a
repeat after a crash (delivery is at least once) carries the same id, which mail
clients use to show it once.

What the server answers decides what the outbox does (:class:`DeliveryFailed`):
- a 4xx (greylisting, mailbox busy, rate limits), a refused or timed-out connection,
  a dropped session: retried later with the worker's backoff;
- a 5xx about the message or its recipient (unknown mailbox, refused content): failed
  for good, ``permanent``;
- a refused authentication (535) is a setting to fix, not the message's fault:
  retried, so that the backlog leaves once the operator fixed it.
Bounces that arrive later by mail (DSN to the sender address) are not read.
Errors name a status and a class, never an address or a code.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from storage.outbox import Notification

from .providers import DeliveryFailed
from .templates import UnknownTemplate, render_email

__all__ = ["SECURITY_MODES", "SmtpProvider", "SmtpSettings", "message_for"]

SECURITY_MODES = ("starttls", "tls", "none")
_LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""  # the From header: "Confrère <no-reply@example.org>"
    reply_to: str = ""
    timeout_s: float = 30.0
    ca_file: str = ""  # a CA bundle to verify the server's certificate with
    max_connections: int = 4

    def check(self) -> None:
        """Raise ``ValueError`` naming the setting that cannot work."""
        if self.security not in SECURITY_MODES:
            raise ValueError(f"CONFRERE_SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}")
        if self.security == "none" and not _is_loopback(self.host):
            raise ValueError("CONFRERE_SMTP_SECURITY=none only towards a loopback host")
        if "@" not in parseaddr(self.sender)[1]:
            raise ValueError("CONFRERE_SMTP_FROM must be an address (Name <address>)")
        if self.reply_to and "@" not in parseaddr(self.reply_to)[1]:
            raise ValueError("CONFRERE_SMTP_REPLY_TO must be an address")
        if bool(self.username) != bool(self.password):
            raise ValueError("CONFRERE_SMTP_USERNAME and CONFRERE_SMTP_PASSWORD go together")
        if not 0 < self.port < 65536:
            raise ValueError("CONFRERE_SMTP_PORT must be a TCP port")


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def message_for(notification: Notification, sender: str, reply_to: str = "") -> EmailMessage:
    """The e-mail of ``notification``; raises :class:`DeliveryFailed` (permanent) for a
    template without an e-mail text."""
    try:
        rendered = render_email(notification.template, notification.data)
    except UnknownTemplate as exc:
        raise DeliveryFailed(str(exc), permanent=True) from exc
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notification.recipient
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(notification.created_at / 1000, localtime=False)
    message["Message-ID"] = f"<outbox.{notification.id}.{notification.created_at}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message


class SmtpProvider:
    def __init__(self, settings: SmtpSettings) -> None:
        settings.check()
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.max_connections)
        self._tls: ssl.SSLContext | None = None
        if settings.security != "none":
            self._tls = ssl.create_default_context(cafile=settings.ca_file or None)

    async def deliver(self, notification: Notification) -> None:
        s = self.settings
        message = message_for(notification, s.sender, s.reply_to)
        async with self._slots:
            try:
                await aiosmtplib.send(
                    message,
                    sender=parseaddr(s.sender)[1],
                    recipients=[notification.recipient],
                    hostname=s.host,
                    port=s.port,
                    username=s.username or None,
                    password=s.password or None,
                    timeout=s.timeout_s,
                    use_tls=s.security == "tls",
                    start_tls=s.security == "starttls",
                    tls_context=self._tls,
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                codes = [r.code for r in exc.recipients]
                raise DeliveryFailed(
                    f"SMTP recipient refused: {','.join(map(str, codes))}",
                    permanent=all(500 <= c < 600 for c in codes),
                ) from exc
            except aiosmtplib.SMTPAuthenticationError as exc:
                raise DeliveryFailed(f"SMTP authentication refused: {exc.code}") from exc
            except aiosmtplib.SMTPConnectResponseError as exc:
                raise DeliveryFailed(f"SMTP server refused the connection: {exc.code}") from exc
            except aiosmtplib.SMTPResponseException as exc:
                raise DeliveryFailed(
                    f"SMTP {type(exc).__name__}: {exc.code}",
                    permanent=500 <= exc.code < 600,
                ) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                raise DeliveryFailed(f"SMTP unreachable: {type(exc).__name__}") from exc

    async def close(self) -> None:
        return None
