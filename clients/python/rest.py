"""REST calls the SDK needs: sign-up and log-in (which yields a device's session token)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import httpx

from protocol.errors import ErrorCode

from .errors import ServerError

__all__ = ["Account", "confirm_email", "log_in", "request", "server_error", "sign_up"]


@dataclass(frozen=True, slots=True)
class Account:
    """A logged-in device: what :class:`~clients.python.client.Client` connects with."""

    base_url: str
    token: str
    user_id: str
    device_id: str
    email: str


async def request(
    base_url: str,
    method: str,
    path: str,
    *,
    json: dict[str, Any] | None = None,
    token: str | None = None,
) -> Any:
    """One REST call; a 4xx/5xx raises :class:`ServerError` with the body's code."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
        response = await http.request(method, path, json=json, headers=headers)
    if response.status_code >= 400:
        raise server_error(response)
    return response.json() if response.content else None


def server_error(response: httpx.Response) -> ServerError:
    """The :class:`ServerError` a 4xx/5xx response's JSON body names (read it first)."""
    code, message = ErrorCode.INTERNAL, f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message", message))
        with contextlib.suppress(ValueError):
            code = ErrorCode(str(body.get("code")))
    return ServerError(code, message)


async def sign_up(base_url: str, **fields: str) -> dict[str, Any]:
    """Create an account (fields as in ``POST /v1/accounts``); returns its profile.

    Signing up records the user's acceptance of the terms and the data-protection
    policy: without ``terms_version``/``privacy_version``, the current versions (from
    ``GET /v1/accounts/form``) are sent, so a caller must have shown them to the user.
    The server then e-mails a code: confirm it with :func:`confirm_email`."""
    payload: dict[str, Any] = dict(fields)
    if "terms_version" not in payload or "privacy_version" not in payload:
        form = await request(base_url, "GET", "/v1/accounts/form")
        payload.setdefault("terms_version", form["terms_version"])
        payload.setdefault("privacy_version", form["privacy_version"])
    body = await request(base_url, "POST", "/v1/accounts", json=payload)
    user: dict[str, Any] = body["user"]
    return user


async def log_in(
    base_url: str,
    email: str,
    password: str,
    *,
    device_name: str | None = None,
    device_id: str | None = None,
) -> Account:
    """Open a session for a new device (``device_name``) or a known one (``device_id``)."""
    payload: dict[str, Any] = {"email": email, "password": password}
    if device_id is not None:
        payload["device_id"] = device_id
    if device_name is not None:
        payload["device_name"] = device_name
    body = await request(base_url, "POST", "/v1/sessions", json=payload)
    return Account(base_url, body["token"], body["user"]["id"], body["device_id"], email)


async def confirm_email(account: Account, code: str) -> dict[str, Any]:
    """Confirm the account's e-mail address with the 6-digit code it received."""
    body = await request(
        account.base_url,
        "POST",
        "/v1/accounts/email/confirm",
        json={"code": code},
        token=account.token,
    )
    user: dict[str, Any] = body["user"]
    return user
