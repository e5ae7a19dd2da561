"""A local HTTP/2 server (hypercorn, TLS with ALPN h2) standing in for APNs and FCM,
checking each request as they do.

- APNs: ``POST /3/device/{token}`` over HTTP/2 only; ``authorization: bearer`` an
  ES256 JWT whose ``kid`` is the key id and ``iss`` the team, signed by the team's key
  and at most an hour old; ``apns-topic`` the app; ``apns-push-type: alert``; a JSON
  body with ``aps.alert``. Unregistered tokens answer 410, malformed ones 400
  ``BadDeviceToken``; ``expire_next`` answers 403 ``ExpiredProviderToken`` once.
- FCM: ``POST /token`` (OAuth 2 JWT bearer grant: an RS256 assertion of the service
  account, for this token URI and the messaging scope) issues access tokens;
  ``POST /v1/projects/{project}/messages:send`` needs one of them (401 otherwise) and
  a ``message`` with a ``token``; unregistered tokens answer 404 ``UNREGISTERED``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from hypercorn.asyncio import serve
from hypercorn.config import Config
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from local_http import Arrivals, bound_socket
from smtp_server import self_signed
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY_ID = "ABC123DEFG"
TEAM_ID = "DEF123GHIJ"
TOPIC = "fr.confrere.app"
PROJECT = "confrere-test"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@dataclass(frozen=True, slots=True)
class Received:
    service: str  # "apns" | "fcm"
    token: str
    body: dict[str, Any]
    http_version: str


class MobilePushServer:
    def __init__(self, directory: Path) -> None:
        self.sock = bound_socket()
        self.base_url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.cert_file, self.key_file = self_signed(directory)
        self.apns_key = ECKey.generate_key("P-256")
        self.fcm_key = RSAKey.generate_key(2048)
        self.received = Arrivals[Received]()
        self.refused: list[str] = []
        self.unregistered: set[str] = set()
        self.script: list[int] = []
        self.expire_next = False
        self.provider_tokens: set[str] = set()
        self.access_tokens: set[str] = set()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def service_account(self) -> dict[str, str]:
        """The JSON key file Google gives for a service account (the fields FCM uses)."""
        return {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key": self.fcm_key.as_pem(private=True).decode(),
            "client_email": f"push@{PROJECT}.iam.gserviceaccount.com",
            "token_uri": f"{self.base_url}/token",
        }

    def _refuse(self, why: str, status: int, **body: Any) -> Response:
        self.refused.append(why)
        return JSONResponse(body or {"reason": why}, status_code=status)

    async def _apns(self, request: Request) -> Response:
        version = request.scope.get("http_version", "")
        if version != "2":
            return self._refuse("not HTTP/2", 400)
        raw = await request.body()  # read first: hypercorn's h2 drops streams answered early
        token = request.path_params["token"]
        auth = request.headers.get("authorization", "")
        if not auth.startswith("bearer "):
            return self._refuse("no provider token", 403, reason="MissingProviderToken")
        try:
            decoded = jwt.decode(auth[7:], self.apns_key, algorithms=["ES256"])
        except (JoseError, ValueError):
            return self._refuse("bad provider token", 403, reason="InvalidProviderToken")
        claims = decoded.claims
        if decoded.header.get("kid") != KEY_ID or claims.get("iss") != TEAM_ID:
            return self._refuse("wrong key id or team", 403, reason="InvalidProviderToken")
        if not time.time() - 3600 < int(claims.get("iat", 0)) <= time.time() + 60:
            return self._refuse("stale provider token", 403, reason="ExpiredProviderToken")
        if self.expire_next:
            self.expire_next = False
            return JSONResponse({"reason": "ExpiredProviderToken"}, status_code=403)
        self.provider_tokens.add(auth[7:])
        if request.headers.get("apns-topic") != TOPIC:
            return self._refuse("wrong topic", 400, reason="DeviceTokenNotForTopic")
        if request.headers.get("apns-push-type") != "alert":
            return self._refuse("no push type", 400, reason="InvalidPushType")
        if self.script:
            return JSONResponse({"reason": "scripted"}, status_code=self.script.pop(0))
        if not all(c in "0123456789abcdef" for c in token) or len(token) != 64:
            return JSONResponse({"reason": "BadDeviceToken"}, status_code=400)
        if token in self.unregistered:
            return JSONResponse({"reason": "Unregistered", "timestamp": 1}, status_code=410)
        body = json.loads(raw)
        if not isinstance(body.get("aps", {}).get("alert"), dict):
            return self._refuse("no alert", 400, reason="PayloadEmpty")
        self._record(Received("apns", token, body, version))
        return Response(status_code=200, headers={"apns-id": secrets.token_hex(16)})

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._refuse("wrong grant", 400, error="unsupported_grant_type")
        try:
            decoded = jwt.decode(str(form.get("assertion", "")), self.fcm_key, algorithms=["RS256"])
        except (JoseError, ValueError):
            return self._refuse("bad assertion", 400, error="invalid_grant")
        claims = decoded.claims
        account = self.service_account()
        if (
            claims.get("iss") != account["client_email"]
            or claims.get("aud") != account["token_uri"]
            or claims.get("scope") != FCM_SCOPE
            or not int(claims.get("exp", 0)) > time.time()
        ):
            return self._refuse("wrong assertion claims", 400, error="invalid_grant")
        token = secrets.token_urlsafe(24)
        self.access_tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    async def _fcm(self, request: Request) -> Response:
        raw = await request.body()
        auth = request.headers.get("authorization", "")
        if request.path_params["project"] != PROJECT:
            return self._refuse("wrong project", 404)
        if not auth.startswith("Bearer ") or auth[7:] not in self.access_tokens:
            return self._refuse("no access token", 401, error={"status": "UNAUTHENTICATED"})
        if self.script:
            return JSONResponse({"error": {"code": 503}}, status_code=self.script.pop(0))
        body = json.loads(raw)
        message = body.get("message", {})
        token = message.get("token")
        if not isinstance(token, str) or "notification" not in message:
            return self._refuse("no token", 400, error={"status": "INVALID_ARGUMENT"})
        if token in self.unregistered:
            error = {"status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}
            return JSONResponse({"error": error}, status_code=404)
        self._record(Received("fcm", token, body, request.scope.get("http_version", "")))
        return JSONResponse({"name": f"projects/{PROJECT}/messages/{secrets.token_hex(8)}"})

    def _record(self, received: Received) -> None:
        self.received.append(received)

    def revoke_access_tokens(self) -> None:
        """As if the issued access tokens had expired early."""
        self.access_tokens.clear()

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/3/device/{token}", self._apns, methods=["POST"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", self._fcm, methods=["POST"]),
            ]
        )
        config = Config()
        config.bind = [f"fd://{self.sock.detach()}"]
        config.certfile = str(self.cert_file)
        config.keyfile = str(self.key_file)
        config.loglevel = "WARNING"
        config.accesslog = None
        self._task = asyncio.create_task(
            serve(app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]
        )
        port = int(self.base_url.rsplit(":", 1)[1])
        async with asyncio.timeout(10):
            while True:  # listening once hypercorn has started
                if self._task.done():
                    self._task.result()
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                return

    async def wait_for(self, count: int, limit_s: float = 20.0) -> list[Received]:
        return await self.received.until(count, limit_s)

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        else:
            self.sock.close()
