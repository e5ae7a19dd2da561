"""Helpers for the account and identity verification tests: sign up over HTTP, read the
e-mail code from the outbox (what the mail provider would deliver), run a node wired to
the test Pro Santé Connect provider."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from oidc_provider import OidcProvider, running_provider

from clients.python import Account, log_in
from harness import PASSWORD, ServerUnderTest, running_server, settings_for
from server.notifications import outbox_log_path

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "JPEG",
    "PNG",
    "email_code",
    "form",
    "node_with_psc",
    "outbox_mails",
    "psc_callback",
    "signed_up",
]

CLIENT_ID = "confrere-test"
CLIENT_SECRET = "test-secret-0123456789"
_n = itertools.count(1)


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = _png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64


def form(**overrides: Any) -> dict[str, Any]:
    """A valid sign-up body for a new address."""
    n = next(_n)
    body: dict[str, Any] = {
        "email": f"medecin{n}-{os.getpid()}@example.org",
        "password": PASSWORD,
        "first_name": "Hélène",
        "last_name": "Lefèvre-Durand",
        "postcode": "69003",
        "city": "Lyon",
        "specialty": "Cardiologie et maladies vasculaires",
        "practice_mode": "liberal",
        "rpps": "10003456786",
        "terms_version": "2025-01",
        "privacy_version": "2025-01",
    }
    body.update(overrides)
    return body


async def outbox_mails(srv: ServerUnderTest, address: str, template: str) -> list[dict[str, Any]]:
    """The data of the e-mails of ``template`` queued for ``address``, newest first. A
    row's secrets are blanked once it is sent: those come from the log sink, written
    before the row is marked sent."""
    rows = await srv.store.notifications(channel="email", recipient=address)
    sink = outbox_log_path(srv.settings)
    lines = sink.read_text("utf-8").splitlines() if sink.exists() else []
    sunk = {
        r["id"]: r["data"]
        for r in map(json.loads, lines)
        if r["recipient"] == address and r["template"] == template
    }
    return [
        n.data if n.state == "pending" else sunk.get(n.id, n.data)
        for n in rows
        if n.template == template
    ]


async def email_code(srv: ServerUnderTest, address: str, template: str = "email_code") -> str:
    """The latest code of ``template`` (the sign-up's, or ``password_reset``) sent to
    ``address``."""
    mails = await outbox_mails(srv, address, template)
    assert mails, f"no {template} code queued for {address}"
    code = mails[0]["code"]
    assert isinstance(code, str)
    return code


async def signed_up(
    srv: ServerUnderTest, *, confirm: bool = True, **overrides: Any
) -> tuple[Account, dict[str, Any]]:
    """Sign up over HTTP (the body of :func:`form`), log in, and confirm the e-mail."""
    body = form(**overrides)
    async with httpx.AsyncClient(base_url=srv.url) as http:
        created = await http.post("/v1/accounts", json=body)
        assert created.status_code == 201, created.text
        account = await log_in(srv.url, body["email"], body["password"], device_name="test")
        if confirm:
            code = await email_code(srv, body["email"])
            confirmed = await http.post(
                "/v1/accounts/email/confirm",
                json={"code": code},
                headers={"Authorization": f"Bearer {account.token}"},
            )
            assert confirmed.status_code == 200, confirmed.text
    return account, body


PUBLIC_URL = "http://confrere.test"  # of nodes under test with PSC; never the Host header


@contextlib.asynccontextmanager
async def node_with_psc(
    tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[ServerUnderTest, OidcProvider]]:
    """The test provider, and a node configured as its client."""
    async with running_provider() as provider:
        settings = settings_for(
            tmp_path,
            psc_issuer=provider.issuer,
            psc_client_id=CLIENT_ID,
            psc_client_secret=CLIENT_SECRET,
            **{"public_url": PUBLIC_URL, **overrides},
        )
        async with running_server(settings) as srv:
            # The provider knows the public address; a proxy there would reach this node.
            redirect = settings.public_url + "/v1/verification/psc/callback"
            provider.register(CLIENT_ID, CLIENT_SECRET, redirect)
            yield srv, provider


async def psc_callback(http: httpx.AsyncClient, account: Account | None = None) -> str:
    """Start Pro Santé Connect with ``http`` (a browser: it keeps the flow's cookie) for
    ``account``'s verification, or for a sign-up without one; the card is accepted at
    the provider. Returns the callback URL the provider sends the browser to."""
    if account is None:
        started = await http.post("/v1/accounts/psc/start")
    else:
        auth = {"Authorization": f"Bearer {account.token}"}
        started = await http.post("/v1/verification/psc/start", headers=auth)
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient() as at_provider:
        answer = await at_provider.get(started.json()["authorization_url"])
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["location"]
    return location
