"""A real SMTP server for tests: aiosmtpd, in the test's event loop, on a socket of its own.

The socket is bound at construction but listens only once :meth:`start` runs (until
then connections are refused, as with a relay that is down). TLS: ``"starttls"``
(STARTTLS required before MAIL) or ``"tls"`` (implicit TLS), with a self-signed
certificate for 127.0.0.1 written to ``cert_file`` (the client's CA file). With
``credentials``, AUTH is required. ``script`` holds answers to give instead of
accepting: each RCPT or DATA pops the next one (e.g. ``"451 4.7.1 Try again later"``),
``"250"`` meaning accept; then everything is accepted.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import ssl
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from local_http import Arrivals, bound_socket


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key: (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    authenticated_as: str | None


@dataclass
class _Handler:
    owner: SmtpServer
    script: list[str] = field(default_factory=list)

    def _scripted(self) -> str | None:
        if self.script:
            answer = self.script.pop(0)
            return None if answer.startswith("250") else answer
        return None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        refusal = self._scripted()
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self._scripted()
        if refusal is not None:
            return refusal
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        user = session.auth_data.login.decode() if session.auth_data is not None else None
        self.owner.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, user)
        )
        return "250 Message accepted"


class _Silent(asyncio.Protocol):
    transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


class SmtpServer:
    def __init__(
        self,
        directory: Path,
        *,
        security: str = "starttls",
        credentials: tuple[str, str] | None = None,
        script: list[str] | None = None,
        silent: bool = False,
    ) -> None:
        self.sock = bound_socket()
        self.port: int = self.sock.getsockname()[1]
        self.security = security
        self.credentials = credentials
        self.cert_file, self.key_file = self_signed(directory)
        self.received = Arrivals[Received]()
        self.handler = _Handler(self, list(script or []))
        self.silent = silent  # accept connections, never answer (a hung relay)
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._protocols: list[_Silent | SMTP] = []

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def _protocol(self) -> asyncio.Protocol:
        self.connections += 1
        if self.silent:
            silent = _Silent()
            self._protocols.append(silent)
            return silent
        with warnings.catch_warnings():  # AUTH under implicit TLS: see below
            warnings.simplefilter("ignore", UserWarning)
            smtp = self._smtp()
        self._protocols.append(smtp)
        return smtp

    def _smtp(self) -> SMTP:
        return SMTP(
            self.handler,
            hostname="smtp.test",
            tls_context=self._tls() if self.security == "starttls" else None,
            require_starttls=self.security == "starttls",
            authenticator=self._authenticate if self.credentials else None,
            auth_required=self.credentials is not None,
            # Under implicit TLS aiosmtpd does not know the session is encrypted.
            auth_require_tls=self.security == "starttls",
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol,
            sock=self.sock,
            ssl=self._tls() if self.security == "tls" else None,
        )

    async def wait_for(self, count: int, limit_s: float = 20.0) -> list[Received]:
        return await self.received.until(count, limit_s)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for protocol in self._protocols:
                if protocol.transport is not None:
                    protocol.transport.close()
            await self._server.wait_closed()
        else:
            self.sock.close()
