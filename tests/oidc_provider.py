"""A real OpenID Connect provider for tests, standing in for Pro Santé Connect.

It serves discovery, JWKS, authorize, token and userinfo over HTTP (uvicorn on a
port-0 socket) and signs id_tokens (RS256) with keys of its own. It checks what a
provider checks: registered client and redirect URI, client secret (HTTP Basic),
PKCE S256, single-use codes, bearer access tokens.

"Who logs in" is :attr:`OidcProvider.card`: the claims of the practitioner whose
CPS/e-CPS the authorize step accepts (the real one asks for the card and its PIN).
:attr:`OidcProvider.misbehave` makes it issue bad id_tokens the relying party must
refuse: "other_key" (same kid, another key), "expired", "nonce", "audience",
"issuer", "forged" (payload altered after signing).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from loadtest.server_process import bind_socket

__all__ = ["OidcProvider", "running_provider"]


def _rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    claims: dict[str, Any]


@dataclass
class OidcProvider:
    issuer: str = ""
    clients: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # id -> secret, uris
    card: dict[str, Any] = field(default_factory=dict)
    misbehave: set[str] = field(default_factory=set)
    key: RSAKey = field(default_factory=lambda: _rsa_key("psc-test-1"))
    codes: dict[str, _Grant] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0

    def register(self, client_id: str, secret: str, redirect_uri: str) -> None:
        self.clients.setdefault(client_id, (secret, set()))[1].add(redirect_uri)

    def rotate_key(self) -> None:
        self.key = _rsa_key(f"psc-test-{secrets.token_hex(4)}")

    # -- endpoints

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        client = self.clients.get(q.get("client_id", ""))
        redirect_uri = q.get("redirect_uri", "")
        if client is None or redirect_uri not in client[1]:
            return JSONResponse({"error": "unauthorized_client"}, status_code=400)
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if "openid" not in q.get("scope", "").split() or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = _Grant(
            q["client_id"], redirect_uri, q["code_challenge"], q.get("nonce", ""), dict(self.card)
        )
        location = redirect_uri + "?" + urlencode({"code": code, "state": q.get("state", "")})
        return RedirectResponse(location, status_code=302)

    def _client_ok(self, request: Request) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        known = self.clients.get(client_id)
        if known is None or not secrets.compare_digest(known[0], secret):
            return None
        return client_id

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        client_id = self._client_ok(request)
        if client_id is None:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        # application/x-www-form-urlencoded (RFC 6749 §4.1.3), parsed without extras.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = self.codes.pop(str(form.get("code", "")), None)  # single use
        if grant is None or grant.client_id != client_id:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = str(form.get("code_verifier", ""))
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access = secrets.token_urlsafe(24)
        self.access_tokens[access] = grant.claims
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 120,
                "id_token": self._id_token(client_id, grant),
            }
        )

    def _id_token(self, client_id: str, grant: _Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer + ("/other" if "issuer" in self.misbehave else ""),
            "sub": grant.claims.get("sub", "unknown"),
            "aud": "another-client" if "audience" in self.misbehave else client_id,
            "iat": now - (7200 if "expired" in self.misbehave else 0),
            "exp": now + (-3600 if "expired" in self.misbehave else 120),
            "auth_time": now,
            "acr": "eidas-weak" if "acr" in self.misbehave else "eidas1",
            "nonce": "not-the-nonce" if "nonce" in self.misbehave else grant.nonce,
        }
        key = self.key
        if "other_key" in self.misbehave:
            key = _rsa_key(str(self.key.kid))
        header = {"alg": "RS256", "kid": str(key.kid)}
        token = jwt.encode(header, claims, key)
        if "forged" in self.misbehave:
            head, _, rest = token.partition(".")
            _, _, signature = rest.partition(".")
            claims["sub"] = "someone-else"
            payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            token = f"{head}.{payload}.{signature}"
        return token

    async def userinfo(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        claims = self.access_tokens.get(token) if scheme.lower() == "bearer" else None
        if claims is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(claims)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
            ]
        )


def card(id_nat: str, family_name: str, given_name: str) -> dict[str, Any]:
    """Userinfo claims as Pro Santé Connect gives them for a practitioner."""
    return {
        "sub": f"f:{id_nat}",
        "SubjectNameID": id_nat,
        "preferred_username": id_nat,
        "family_name": family_name,
        "given_name": given_name,
    }


@contextlib.asynccontextmanager
async def running_provider() -> AsyncIterator[OidcProvider]:
    import asyncio

    provider = OidcProvider()
    sock = bind_socket()
    provider.issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(provider.app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield provider
    finally:
        server.should_exit = True
        await task
        sock.close()
