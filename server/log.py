"""Structured logs: one JSON object per line, with the request id of the HTTP request
or WebSocket connection that caused it, and personal data and secrets masked.

- :func:`configure_logging` installs the formatter on the root logger (``python -m
  server run`` calls it; uvicorn's loggers propagate to it).
- :class:`RequestIdMiddleware` gives every HTTP request and WebSocket connection an id
  (the client's ``X-Request-Id`` when it is a short token, else a random one), keeps it
  in a context variable for every log line written on its behalf (tasks started from
  it inherit it), and returns it in the ``X-Request-Id`` response header.
- :func:`redact` is the last line of defence, applied to every formatted line:
  log calls are written to carry only opaque ids, but an e-mail address, a bearer
  token or a long secret-looking string that slips into a message or an exception is
  masked before it reaches the log.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "JsonFormatter",
    "RequestIdMiddleware",
    "configure_logging",
    "redact",
    "redact_traceback",
    "request_id",
]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "confrere_request_id", default=None
)

_CLIENT_ID = re.compile(rb"[A-Za-z0-9._-]{8,64}")
_EMAIL = re.compile(r"[^\s@\"'<>(),;:]{1,64}@[^\s@\"'<>(),;:]+\.[A-Za-z]{2,}")
_BEARER = re.compile(r"(?i)bearer\s+\S+")
# Session tokens are 43 url-safe characters, server keys 44 of base64: anything that
# long is masked. Our ids are 16 characters and stay readable, and so do file paths
# (a slash only counts inside a run of base64 that long).
_SECRETISH = re.compile(r"[A-Za-z0-9_-]{32,}|(?<![\w+/=])[A-Za-z0-9+/]{40,}={0,2}")
_PASSWORD = re.compile(r"(?i)(password|passwd|token|secret)([\"']?\s*[=:]\s*[\"']?)[^\s\"',]+")


# A traceback's location lines and the source lines under them come from our code,
# never from a peer: they are kept as they are (a long path or function name is no
# secret, and masking it made tracebacks unreadable).
_TRACE_LOCATION = re.compile(r'\s*File "[^"\n]*", line \d+(, in \S+)?\Z')


def redact(text: str) -> str:
    """Mask e-mail addresses, bearer tokens, ``password=...``-like pairs and long
    secret-looking strings."""
    text = _BEARER.sub("Bearer [redacted]", text)
    text = _PASSWORD.sub(r"\1\2[redacted]", text)
    text = _EMAIL.sub("[email]", text)
    return _SECRETISH.sub("[redacted]", text)


def redact_traceback(text: str) -> str:
    """:func:`redact` a formatted traceback, except its ``File "...", line N, in f``
    lines and the source line each is followed by: the exception messages, where a
    peer's data could appear, are masked."""
    out: list[str] = []
    source_next = False
    for line in text.split("\n"):
        if _TRACE_LOCATION.match(line):
            out.append(line)
            source_next = True
        elif source_next and line.startswith("    "):  # the source, its carets
            out.append(line)
        else:
            out.append(redact(line))
            source_next = False
    return "\n".join(out)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id"?, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        rid = request_id.get()
        if rid is not None:
            out["request_id"] = rid
        if record.exc_info:
            out["exc"] = redact_traceback(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = request_id.get()
        message = redact(record.getMessage())
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {message}"
        if rid:
            line += f" [{rid}]"
        if record.exc_info:
            line += "\n" + redact_traceback(self.formatException(record.exc_info))
        return line


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route every logger to stderr through the JSON (or text) formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


class RequestIdMiddleware:
    """Sets :data:`request_id` for each HTTP request and WebSocket connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(b"x-request-id", b"")
        rid = given.decode() if _CLIENT_ID.fullmatch(given) else secrets.token_hex(8)
        # Each request runs in its own task (a copy of the context): no reset needed,
        # and the exception handlers outside this middleware still see the id.
        request_id.set(rid)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
