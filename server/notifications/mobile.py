"""Push to the mobile apps: APNs (Apple, HTTP/2, token-based authentication) and FCM
(Google, HTTP v1 API, OAuth 2 service account), one request per device token.

Content-free: the visible text is "Confrère" / "Nouveau message" (Apple's and Google's
servers read it in clear, so not even a group's name), and the room's id rides as data
for the app to open the conversation. The push services' answers:

- APNs (``POST {base}/3/device/{token}``; ``authorization: bearer <ES256 JWT {iss:
  team, iat} with kid>`` renewed every 50 minutes, ``apns-topic`` the app's bundle id,
  ``apns-push-type: alert``, ``apns-priority: 10``): 200 sent; 410 ``Unregistered`` and
  400 ``BadDeviceToken`` mean the token is gone (pruned); 403 (the provider token) is
  retried with a new one; 429 and 5xx retried; other refusals final.
- FCM (``POST {base}/v1/projects/{project}/messages:send`` with an OAuth 2 access token
  got from the service account's ``token_uri`` by an RS256 JWT assertion, cached until
  a minute before it expires): 200 sent; 404 ``UNREGISTERED`` gone (pruned); 401
  retried with a new token; 429 and 5xx retried; other refusals final.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from storage.push import PushSubscription

from .providers import DeliveryFailed
from .webpush import Sent

__all__ = ["Apns", "ApnsSettings", "Fcm", "FcmSettings", "PUSH_BODY", "PUSH_TITLE"]

PUSH_TITLE = "Confrère"
PUSH_BODY = "Nouveau message"
_APNS_TOKEN_TTL_S = 50 * 60  # Apple: renew at most every 20 min, at least every 60
_FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
Verify = ssl.SSLContext | bool


@dataclass(frozen=True, slots=True)
class ApnsSettings:
    key: str = field(repr=False)  # the .p8 signing key (PEM)
    key_id: str
    team_id: str
    topic: str  # the app's bundle id
    base_url: str = "https://api.push.apple.com"
    timeout_s: float = 10.0


class Apns:
    def __init__(self, settings: ApnsSettings, *, verify: Verify = True) -> None:
        try:
            self._key = ECKey.import_key(settings.key)
        except Exception as exc:  # joserfc raises several kinds
            raise ValueError("CONFRERE_APNS_KEY_FILE does not hold a P-256 key (.p8)") from exc
        for value, name in (
            (settings.key_id, "CONFRERE_APNS_KEY_ID"),
            (settings.team_id, "CONFRERE_APNS_TEAM_ID"),
            (settings.topic, "CONFRERE_APNS_TOPIC"),
        ):
            if not value:
                raise ValueError(f"APNs needs {name}")
        self.settings = settings
        self._token: tuple[str, float] | None = None
        self._http = httpx.AsyncClient(
            http1=False, http2=True, timeout=settings.timeout_s, verify=verify
        )

    def provider_token(self, *, renew: bool = False) -> str:
        now = time.time()
        if renew or self._token is None or now - self._token[1] > _APNS_TOKEN_TTL_S:
            s = self.settings
            token = jwt.encode(
                {"alg": "ES256", "kid": s.key_id}, {"iss": s.team_id, "iat": int(now)}, self._key
            )
            self._token = (token, now)
        return self._token[0]

    async def send(self, subscription: PushSubscription, title: str, room: str) -> Sent:
        body = json.dumps(
            {
                "aps": {"alert": {"title": PUSH_TITLE, "body": PUSH_BODY}, "sound": "default"},
                "room": room,
            },
            ensure_ascii=False,
        ).encode()
        url = f"{self.settings.base_url.rstrip('/')}/3/device/{subscription.endpoint}"
        for attempt in (1, 2):
            headers = {
                "authorization": f"bearer {self.provider_token(renew=attempt == 2)}",
                "apns-topic": self.settings.topic,
                "apns-push-type": "alert",
                "apns-priority": "10",
                "apns-expiration": str(int(time.time()) + 86_400),
                "content-type": "application/json",
            }
            try:
                response = await self._http.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise DeliveryFailed(f"APNs unreachable: {type(exc).__name__}") from exc
            status = response.status_code
            if status == 200:
                return "sent"
            reason = _reason(response, "reason")
            if status == 410 or (
                status == 400 and reason in ("BadDeviceToken", "DeviceTokenNotForTopic")
            ):
                return "gone"
            if status == 403 and reason in ("ExpiredProviderToken", "InvalidProviderToken"):
                if attempt == 1:
                    continue  # a new provider token, once
                raise DeliveryFailed(f"APNs refused the provider token: {reason}")
            if status == 429 or status >= 500:
                raise DeliveryFailed(f"APNs answered HTTP {status}")
            raise DeliveryFailed(f"APNs refused: HTTP {status} {reason}", permanent=True)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._http.aclose()


def _reason(response: httpx.Response, key: str) -> str:
    try:
        value = response.json().get(key, "")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) and value.isascii() and len(value) < 64 else ""


@dataclass(frozen=True, slots=True)
class FcmSettings:
    service_account: dict[str, Any] = field(repr=False)  # Google's JSON key file
    base_url: str = "https://fcm.googleapis.com"
    timeout_s: float = 10.0


class Fcm:
    def __init__(self, settings: FcmSettings, *, verify: Verify = True) -> None:
        account = settings.service_account
        try:
            self._key = RSAKey.import_key(account["private_key"])
            self.project = str(account["project_id"])
            self._email = str(account["client_email"])
            self._token_uri = str(account["token_uri"])
        except Exception as exc:
            raise ValueError(
                "CONFRERE_FCM_SERVICE_ACCOUNT_FILE is not a service account key file"
            ) from exc
        self.settings = settings
        self._access: tuple[str, float] | None = None
        self._lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=settings.timeout_s, verify=verify)

    async def access_token(self, *, renew: bool = False) -> str:
        async with self._lock:
            now = time.time()
            if not renew and self._access is not None and now < self._access[1]:
                return self._access[0]
            assertion = jwt.encode(
                {"alg": "RS256", "typ": "JWT"},
                {
                    "iss": self._email,
                    "scope": _FCM_SCOPE,
                    "aud": self._token_uri,
                    "iat": int(now),
                    "exp": int(now) + 3600,
                },
                self._key,
            )
            try:
                response = await self._http.post(
                    self._token_uri,
                    data={
                        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                        "assertion": assertion,
                    },
                )
            except httpx.HTTPError as exc:
                raise DeliveryFailed(
                    f"FCM token endpoint unreachable: {type(exc).__name__}"
                ) from exc
            if response.status_code != 200:
                raise DeliveryFailed(f"FCM token endpoint answered HTTP {response.status_code}")
            answer = response.json()
            token = str(answer["access_token"])
            self._access = (token, now + int(answer.get("expires_in", 3600)) - 60)
            return token

    async def send(self, subscription: PushSubscription, title: str, room: str) -> Sent:
        message = {
            "message": {
                "token": subscription.endpoint,
                "notification": {"title": PUSH_TITLE, "body": PUSH_BODY},
                "data": {"room": room},
                "android": {"priority": "high"},
            }
        }
        url = f"{self.settings.base_url.rstrip('/')}/v1/projects/{self.project}/messages:send"
        for attempt in (1, 2):
            token = await self.access_token(renew=attempt == 2)
            try:
                response = await self._http.post(
                    url, json=message, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.HTTPError as exc:
                raise DeliveryFailed(f"FCM unreachable: {type(exc).__name__}") from exc
            status = response.status_code
            if status == 200:
                return "sent"
            if status == 404:
                return "gone"
            if status == 401 and attempt == 1:
                continue  # a new access token, once
            if status in (401, 429) or status >= 500:
                raise DeliveryFailed(f"FCM answered HTTP {status}")
            raise DeliveryFailed(f"FCM refused: HTTP {status}", permanent=True)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._http.aclose()
