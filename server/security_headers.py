"""Security headers on every HTTP response (the web client's and the API's).

A browser app handling health data: a strict Content-Security-Policy (no inline code
but the page's import map, by hash; no eval), no framing, no MIME sniffing, no
Referer, no powerful browser features, process isolation from other origins, and HSTS
when the request came over TLS (directly, or through a proxy uvicorn trusts, which
then sets the scheme). Headers a route set itself are kept. WebSocket and lifespan
scopes pass through untouched.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .routes.web import content_security_policy

__all__ = ["HSTS", "SecurityHeaders", "security_headers"]

HSTS = "max-age=63072000; includeSubDomains"


def security_headers(tls: bool) -> dict[str, str]:
    """The headers every response carries (``tls``: the request came over HTTPS)."""
    headers = {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": (
            "camera=(), microphone=(), geolocation=(self), payment=(), usb=(), "
            "serial=(), bluetooth=(), browsing-topics=()"
        ),
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if tls:
        headers["Strict-Transport-Security"] = HSTS
    return headers


class SecurityHeaders:
    """ASGI middleware adding :func:`security_headers` to HTTP responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope.get("scheme") == "https")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
