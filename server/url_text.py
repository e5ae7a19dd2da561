"""The text rule (SPEC.md §1.1) on URLs: a request whose path or query string holds a
control character (``%00``, ``%0A``...) gets a 400 before any route sees it, so no
such string reaches a query (PostgreSQL cannot even store U+0000) or a log line.
JSON bodies are checked by :func:`server.routes.common.json_body`, frames by the
protocol's field reader.
"""

from __future__ import annotations

from urllib.parse import unquote

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
            query = unquote(scope.get("query_string", b"").decode("latin-1"), errors="replace")
            if unfit_text(scope.get("path", "")) or unfit_text(query.replace("+", " ")):
                response = JSONResponse(
                    {
                        "code": ErrorCode.BAD_FRAME.value,
                        "message": "the URL must not contain control characters",
                    },
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
