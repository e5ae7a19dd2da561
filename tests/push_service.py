"""A local Web Push service for tests (RFC 8030), standing in for the browsers' push
services: ``subscribe()`` makes a subscription as a browser would (an endpoint here, a
P-256 key pair and an auth secret), and each ``POST /push/{id}`` is checked as a push
service checks it (the VAPID ``Authorization``, RFC 8292: an ES256 JWT signed by the key
it names, for this origin, not expired, with a contact; ``Content-Encoding: aes128gcm``
and a ``TTL``), then decrypted with the subscription's keys (RFC 8291) the way the
browser would. ``gone`` subscriptions answer 410; ``script`` statuses are answered
instead of accepting, one per request.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from local_http import Arrivals, LocalHttpServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class Pushed:
    subscription: str
    payload: dict[str, Any]
    headers: dict[str, str]


def check_vapid(header: str, audience: str, server_key: str | None) -> str | None:
    """Why a VAPID ``Authorization`` is refused, or None."""
    scheme, _, params = header.partition(" ")
    fields = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
    if scheme != "vapid" or "t" not in fields or "k" not in fields:
        return "not a vapid authorization"
    if server_key is not None and fields["k"] != server_key:
        return "signed by another key"
    head, claims_part, signature = fields["t"].split(".")
    if json.loads(unb64url(head)) != {"typ": "JWT", "alg": "ES256"}:
        return "not an ES256 JWT"
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{head}.{claims_part}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "bad signature"
    claims = json.loads(unb64url(claims_part))
    if claims.get("aud") != audience:
        return "wrong audience"
    if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
        return "expired or too long"
    if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
        return "no contact"
    return None


class PushService(LocalHttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.browsers: dict[str, Browser] = {}
        self.pushed = Arrivals[Pushed]()
        self.refused: list[str] = []
        self.gone: set[str] = set()
        self.script: list[int] = []
        self.server_key: str | None = None  # the VAPID public key to expect, if known

    def routes(self) -> list[BaseRoute]:
        return [Route("/push/{sid}", self._push, methods=["POST"])]

    def subscribe(self) -> Browser:
        sid = b64url(os.urandom(12))
        key = ec.generate_private_key(ec.SECP256R1())
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        browser = Browser(
            sid, f"{self.origin}/push/{sid}", key, b64url(point), b64url(os.urandom(16))
        )
        self.browsers[sid] = browser
        return browser

    async def _push(self, request: Request) -> Response:
        sid = request.path_params["sid"]
        browser = self.browsers.get(sid)
        if browser is None or sid in self.gone:
            return Response(status_code=410)
        if self.script:
            return Response(status_code=self.script.pop(0))
        why = check_vapid(request.headers.get("authorization", ""), self.origin, self.server_key)
        if why is None and request.headers.get("content-encoding") != "aes128gcm":
            why = "not aes128gcm"
        if why is None and not request.headers.get("ttl", "").isdigit():
            why = "no TTL"
        if why is not None:
            self.refused.append(why)
            return JSONResponse({"reason": why}, status_code=401 if "vapid" in why else 400)
        plain = http_ece.decrypt(
            await request.body(),
            private_key=browser.private_key,
            auth_secret=unb64url(browser.auth),
            version="aes128gcm",
        )
        self.pushed.append(Pushed(sid, json.loads(plain), dict(request.headers)))
        return Response(status_code=201, headers={"Location": f"/message/{len(self.pushed)}"})

    async def wait_for(self, count: int, limit_s: float = 20.0) -> list[Pushed]:
        return await self.pushed.until(count, limit_s)
