"""The text rule (SPEC.md §1.1) on URLs: a request whose path or query string holds a
control character (``%00``, ``%0A``...) gets a 400 before any route sees it, so no
such string reaches a query (PostgreSQL cannot even store U+0000) or a log line.
JSON bodies are checked by :func:`server.routes.common.json_body`, frames by the
protocol's field reader.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from protocol.errors import ErrorCode
from protocol.fields import unfit_text

__all__ = ["UrlTextRule"]


class UrlTextRule:
    """ASGI middleware: 400 ``bad_frame`` for control characters in the URL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _problem(scope)
            if problem is not None:
                body = {"code": ErrorCode.BAD_FRAME.value, "message": problem}
                await JSONResponse(body, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _problem(scope: Scope) -> str | None:
    """What breaks the rule, naming the query parameter (as Starlette will parse it)."""
    if unfit_text(scope.get("path", "")):
        return "the path must not contain control characters"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if unfit_text(name):
            return "query parameter names must not contain control characters"
        if unfit_text(value):
            return f"field '{name[:40]}' must not contain control characters"
    return None
