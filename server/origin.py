"""The WebSocket ``Origin`` check, against cross-site WebSocket hijacking.

A browser sends ``Origin`` with every WebSocket handshake and lets any page open a
socket to any site, so a page of another site could otherwise drive a victim's
browser into our endpoint. Clients that are not browsers send no ``Origin``; they are
let through (they get no ambient credentials: the session token travels in ``hello``).

- ``allowed`` non-empty (``CONFRERE_ALLOWED_ORIGINS``): the origin must be one of them;
- ``allowed`` empty: same origin only: the origin's host and port must be the
  ``Host`` the request was sent to (a reverse proxy must pass ``Host`` through, or the
  deployment lists its public origins).
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["origin_allowed"]

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _netloc(scheme: str, host: str) -> str:
    """``host[:port]`` lower-cased, with the scheme's default port made explicit."""
    host = host.strip().lower()
    if host.endswith("]") or ":" not in host:  # no port (IPv6 literals end with ])
        port = _DEFAULT_PORTS.get(scheme)
        return f"{host}:{port}" if port else host
    return host


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    if origin is None:
        return True
    origin = origin.strip()
    if allowed:
        return origin.rstrip("/").lower() in {o.rstrip("/").lower() for o in allowed}
    if not host or origin == "null":
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return _netloc(parts.scheme, parts.netloc) == _netloc(parts.scheme, host)
