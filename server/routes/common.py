"""Shared pieces of the REST routes: JSON errors, body parsing, bearer authentication."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from protocol.errors import ErrorCode
from protocol.fields import unfit_text
from storage import Store
from storage.types import Session, User

from ..bodies import parse_body
from ..errors import ApiError
from ..handlers import Services
from ..metrics import METRICS
from ..node import node
from ..sessions import authenticate

__all__ = ["bearer", "error_response", "json_body", "read_body", "services"]

MAX_JSON_BODY = 64 * 1024
B = TypeVar("B")


def services(request: Request) -> Services[Store]:
    """The node's services. Each route module narrows this to the store ports it uses
    (``def services(request) -> Services[ItsPorts]``), so mypy holds it to them."""
    return node(request).services


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


async def json_body(request: Request, limit: int = MAX_JSON_BODY) -> dict[str, Any]:
    """The request's JSON object, or a 400/413 naming the problem. ``limit``: bytes
    (64 KiB unless a route says more)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ApiError(ErrorCode.TOO_LARGE, f"request body exceeds {limit} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ApiError(ErrorCode.TOO_LARGE, f"request body exceeds {limit} bytes")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(ErrorCode.BAD_FRAME, "request body must be valid JSON") from None
    except RecursionError:  # "[" x 60,000 fits in 64 KiB
        raise ApiError(ErrorCode.BAD_FRAME, "request body is nested too deeply") from None
    if not isinstance(value, dict):
        raise ApiError(ErrorCode.BAD_FRAME, "request body must be a JSON object")
    _check_text(value)
    return value


async def read_body(request: Request, cls: type[B], limit: int = MAX_JSON_BODY) -> B:
    """The request's JSON body checked into ``cls``, a body declaration
    (:mod:`server.bodies`): the same class gives the route's schema (``schema_of``)."""
    return parse_body(cls, await json_body(request, limit))


def _check_text(body: dict[str, Any]) -> None:
    """The text rule (SPEC.md §1.1) on every string of the body, keys included: no
    control character but TAB, LF and CR, no lone surrogate (``"\\ud800"`` decodes to
    one). Single-line fields refuse TAB, LF and CR too (:func:`.validation.text`)."""
    stack: list[tuple[str, Any]] = [(str(k), v) for k, v in body.items()]
    for key in body:
        if unfit_text(key, multiline=True):
            raise ApiError(ErrorCode.BAD_FRAME, "field names must not contain control characters")
    while stack:
        field, value = stack.pop()
        if isinstance(value, str):
            if unfit_text(value, multiline=True):
                raise ApiError(
                    ErrorCode.BAD_FRAME,
                    f"field '{field[:40]}' must not contain control characters",
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                if unfit_text(key, multiline=True):
                    raise ApiError(
                        ErrorCode.BAD_FRAME, "field names must not contain control characters"
                    )
                stack.append((field, item))
        elif isinstance(value, list):
            stack.extend((field, item) for item in value)


async def bearer(request: Request) -> tuple[Session, User]:
    """Authenticate ``Authorization: Bearer <token>`` (never a token in the URL)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(ErrorCode.UNAUTHENTICATED, "missing 'Authorization: Bearer' header")
    return await authenticate(services(request).store, token.strip())
