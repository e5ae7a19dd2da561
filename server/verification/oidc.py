"""An OpenID Connect relying party for Pro Santé Connect: authorization-code flow with
PKCE (RFC 7636, S256), ``state`` and ``nonce`` (OpenID Connect Core 1.0 §3.1).

Sans-I/O parts (URL building, PKCE, id_token validation) are plain functions; the
:class:`OidcClient` adds the HTTP calls (httpx) and caches the discovery document and
the JWKS. The JWKS is fetched again once when a token names a key id it does not hold
(the provider rotated its keys); a token whose key is still unknown is refused.

Every failure raises :class:`OidcError` whose ``reason`` is safe to log and to show:
it never contains a token, a code or a claim value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

__all__ = [
    "ALGORITHMS",
    "OidcClient",
    "OidcConfig",
    "OidcError",
    "Identity",
    "ProviderMetadata",
    "authorization_url",
    "browser_binding",
    "pkce_challenge",
    "validate_id_token",
]

ALGORITHMS = ["RS256", "PS256", "ES256"]  # PSC signs with RS256; never "none" or HMAC
CLOCK_SKEW_S = 60
METADATA_TTL_S = 3600.0


class OidcError(Exception):
    """The provider or its answer failed a check. ``reason`` is a short, fixed phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str = "openid scope_all"
    acr_values: str = "eidas1"


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str

    @classmethod
    def parse(cls, doc: Any, expected_issuer: str) -> ProviderMetadata:
        """Check a discovery document (OpenID Connect Discovery 1.0 §4.3: its issuer
        must be exactly the one configured)."""
        if not isinstance(doc, dict):
            raise OidcError("discovery document is not a JSON object")
        values = {}
        for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(name)
            if not isinstance(value, str) or not value:
                raise OidcError(f"discovery document lacks {name}")
            values[name] = value
        if values["issuer"] != expected_issuer:
            raise OidcError("discovery document names another issuer")
        userinfo = doc.get("userinfo_endpoint")
        if not isinstance(userinfo, str) or not userinfo:
            raise OidcError("discovery document lacks userinfo_endpoint")
        return cls(
            values["issuer"],
            values["authorization_endpoint"],
            values["token_endpoint"],
            userinfo,
            values["jwks_uri"],
        )


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, method S256."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def flow_secrets(key: bytes, state: str) -> tuple[str, str]:
    """The (code_verifier, nonce) of the flow named by ``state``, derived from it with a
    server-held key: nothing of them needs storing, and neither can be guessed from the
    state, which travels in URLs. The verifier is 43 characters (RFC 7636 §4.1)."""

    def derive(label: bytes) -> str:
        return _b64url(hmac.new(key, label + state.encode(), hashlib.sha256).digest())

    return derive(b"pkce\n"), derive(b"nonce\n")


def browser_binding(key: bytes, state: str) -> str:
    """The value of the cookie that ties the flow named by ``state`` to the browser
    that started it (RFC 6749 §10.12): without it, someone could start a flow for
    their own account and have a victim's card complete it."""
    mac = hmac.new(key, b"browser\n" + state.encode(), hashlib.sha256).digest()
    return _b64url(mac)


def authorization_url(
    meta: ProviderMetadata, config: OidcConfig, state: str, nonce: str, verifier: str
) -> str:
    query = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": config.redirect_uri,
        "scope": config.scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if config.acr_values:
        query["acr_values"] = config.acr_values
    separator = "&" if "?" in meta.authorization_endpoint else "?"
    return meta.authorization_endpoint + separator + urlencode(query)


def validate_id_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    acr_values: str = "",
) -> dict[str, Any]:
    """The claims of a signed id_token that passes OpenID Connect Core §3.1.3.7: a
    signature by one of ``keys`` with an allowed algorithm, ``iss`` the issuer, ``aud``
    holding our client id (and ``azp`` ours when there are several audiences), ``exp``
    in the future, ``iat`` not in the future, ``nonce`` the one we sent, a ``sub``, and
    when ``acr_values`` is set an ``acr`` among them (the authentication level asked
    for: a provider may otherwise answer with a weaker one)."""
    try:
        decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
    except JoseError as exc:
        raise OidcError(f"id_token rejected ({type(exc).__name__})") from None
    claims = decoded.claims
    registry = jwt.JWTClaimsRegistry(
        now=int(now),
        leeway=CLOCK_SKEW_S,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise OidcError("id_token expired") from None
    except JoseError as exc:
        raise OidcError(f"id_token claims rejected ({type(exc).__name__})") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OidcError("id_token authorised party is not this client")
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
        raise OidcError("id_token nonce does not match this flow")
    if acr_values and claims.get("acr") not in acr_values.split():
        raise OidcError("id_token acr is not the authentication level asked for")
    return dict(claims)


@dataclass(frozen=True, slots=True)
class Identity:
    """What the provider said about the user: id_token claims and userinfo."""

    id_claims: Mapping[str, Any]
    userinfo: Mapping[str, Any]


class OidcClient:
    """One provider. Safe to share between requests (its caches are replaced whole)."""

    def __init__(self, config: OidcConfig, *, timeout_s: float = 10.0) -> None:
        self.config = config
        self._timeout = timeout_s
        self._meta: tuple[float, ProviderMetadata] | None = None
        self._keys: KeySet | None = None

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)

    async def _get_json(self, url: str, what: str, **kwargs: Any) -> Any:
        try:
            async with self._http() as http:
                response = await http.get(url, **kwargs)
        except httpx.HTTPError:
            raise OidcError(f"{what} unreachable") from None
        if response.status_code != 200:
            raise OidcError(f"{what} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise OidcError(f"{what} is not JSON") from None

    async def metadata(self) -> ProviderMetadata:
        if self._meta is not None and time.monotonic() - self._meta[0] < METADATA_TTL_S:
            return self._meta[1]
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        meta = ProviderMetadata.parse(await self._get_json(url, "discovery"), self.config.issuer)
        self._meta = (time.monotonic(), meta)
        return meta

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            doc = await self._get_json(meta.jwks_uri, "JWKS")
            try:
                self._keys = KeySet.import_key_set(doc)
            except (JoseError, KeyError, TypeError, ValueError):
                raise OidcError("JWKS holds no usable key") from None
        return self._keys

    async def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        return authorization_url(await self.metadata(), self.config, state, nonce, verifier)

    async def exchange(self, code: str, verifier: str, nonce: str) -> Identity:
        """Redeem ``code`` at the token endpoint (client_secret_basic, with the PKCE
        verifier), validate the id_token, and fetch userinfo for the same subject."""
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": verifier,
        }
        try:
            async with self._http() as http:
                response = await http.post(
                    meta.token_endpoint,
                    data=form,
                    auth=(self.config.client_id, self.config.client_secret),
                    headers={"Accept": "application/json"},
                )
        except httpx.HTTPError:
            raise OidcError("token endpoint unreachable") from None
        if response.status_code != 200:
            raise OidcError(f"token endpoint refused the code (HTTP {response.status_code})")
        try:
            tokens = response.json()
        except ValueError:
            raise OidcError("token endpoint answer is not JSON") from None
        id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
        access_token = tokens.get("access_token") if isinstance(tokens, dict) else None
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise OidcError("token endpoint answer lacks id_token or access_token")
        claims = await self._validated(id_token, nonce)
        userinfo = await self._get_json(
            meta.userinfo_endpoint,
            "userinfo",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        if not isinstance(userinfo, dict):
            raise OidcError("userinfo is not a JSON object")
        # OpenID Connect Core §5.3.2: the userinfo must be about the id_token's subject.
        if userinfo.get("sub") != claims["sub"]:
            raise OidcError("userinfo is about another subject than the id_token")
        return Identity(claims, userinfo)

    async def _validated(self, id_token: str, nonce: str) -> dict[str, Any]:
        check = {
            "issuer": self.config.issuer,
            "client_id": self.config.client_id,
            "nonce": nonce,
            "acr_values": self.config.acr_values,
        }
        try:
            return validate_id_token(id_token, await self._key_set(), now=time.time(), **check)
        except OidcError as first:
            if "InvalidKeyIdError" not in first.reason:
                raise
        # An unknown key id: the provider may have rotated its keys since we fetched.
        keys = await self._key_set(refresh=True)
        return validate_id_token(id_token, keys, now=time.time(), **check)
