"""Shared pieces of the REST routes: JSON errors, body parsing, bearer authentication."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from protocol.errors import ErrorCode
from storage.types import Session, User

from ..errors import ApiError
from ..handlers import Services
from ..metrics import METRICS
from ..sessions import authenticate

__all__ = ["bearer", "error_response", "json_body", "services"]

MAX_JSON_BODY = 64 * 1024


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def error_response(exc: ApiError) -> JSONResponse:
    METRICS.errors.inc(exc.code)  # confrere_errors_total, as for WebSocket error frames
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(int(exc.retry_after + 0.999))
    body: dict[str, Any] = {"code": exc.code.value, "message": exc.message}
    if exc.field is not None:
        body["field"] = exc.field
    if exc.reason is not None:
        body["reason"] = exc.reason
    if exc.retry_after is not None:
        body["retry_after"] = exc.retry_after
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a 400/413 naming the problem."""
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > MAX_JSON_BODY
    ):
        raise ApiError(ErrorCode.TOO_LARGE, f"request body exceeds {MAX_JSON_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BODY:
            raise ApiError(ErrorCode.TOO_LARGE, f"request body exceeds {MAX_JSON_BODY} bytes")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(ErrorCode.BAD_FRAME, "request body must be valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(ErrorCode.BAD_FRAME, "request body must be a JSON object")
    return value


async def bearer(request: Request) -> tuple[Session, User]:
    """Authenticate ``Authorization: Bearer <token>`` (never a token in the URL)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(ErrorCode.UNAUTHENTICATED, "missing 'Authorization: Bearer' header")
    return await authenticate(services(request).store, token.strip())
