"""The OpenAPI document, built from the routes themselves.

Every REST route is declared with :func:`api_route`, which returns a plain Starlette
``Route`` carrying its :class:`Operation` (summary, who may call it, JSON Schemas of the
body and the success response, the error statuses it can answer). ``GET /openapi.json``
serves the document; the schemathesis tests check that every response matches it, so a
schema here is a promise, not a comment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = [
    "Auth",
    "Operation",
    "api_route",
    "array",
    "boolean",
    "document",
    "integer",
    "nullable",
    "number",
    "obj",
    "openapi_route",
    "string",
]

Schema = dict[str, Any]
Endpoint = Callable[[Request], Awaitable[Response]]
# Who may call: nobody in particular, any session, a session of a verified practitioner,
# or a session whose user has a platform role ("role:reviewer", "role:regulator"...).
Auth = Literal["none", "session", "verified", "role:reviewer", "role:regulator", "role:admin"]

# -- JSON Schema helpers (keep declarations short and uniform)


def string(
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    enum: Iterable[str] | None = None,
    fmt: str | None = None,
    description: str | None = None,
) -> Schema:
    schema: Schema = {"type": "string"}
    for key, value in (
        ("minLength", min_length),
        ("maxLength", max_length),
        ("pattern", pattern),
        ("format", fmt),
        ("description", description),
    ):
        if value is not None:
            schema[key] = value
    if enum is not None:
        schema["enum"] = list(enum)
    return schema


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def number() -> Schema:
    return {"type": "number"}


def boolean() -> Schema:
    return {"type": "boolean"}


def array(items: Schema, *, max_items: int | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def nullable(schema: Schema) -> Schema:
    """``schema`` or ``null`` (OpenAPI 3.1 style)."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(
    properties: dict[str, Schema], *, required: Iterable[str] | None = None, extra: bool = True
) -> Schema:
    """An object; ``required`` defaults to every property. ``extra`` allows properties
    not listed (responses may grow fields without breaking clients)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": extra,
    }


ERROR_SCHEMA = obj(
    {
        "code": string(),
        "message": string(),
        "field": string(),
        "reason": string(),
        "retry_after": number(),
    },
    required=("code", "message"),
)
_ERROR_TEXT = {
    400: "invalid input (the message names the field)",
    401: "missing, invalid or expired session",
    403: "not allowed for this caller",
    404: "not found",
    409: "conflict",
    411: "length required",
    413: "too large",
    415: "unsupported media type",
    429: "rate limited (retry_after)",
    503: "temporarily unavailable (retry_after)",
}


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    summary: str
    auth: Auth
    body: Schema | None
    response: Schema | None
    status: int
    errors: tuple[int, ...]
    content_type: str
    request_content_type: str
    query: tuple[tuple[str, Schema, bool], ...] = ()


def api_route(
    path: str,
    endpoint: Endpoint,
    method: str = "GET",
    *,
    summary: str,
    auth: Auth = "session",
    body: Schema | None = None,
    response: Schema | None = None,
    status: int = 200,
    errors: Iterable[int] = (),
    content_type: str = "application/json",
    request_content_type: str = "application/json",
    query: dict[str, Schema] | None = None,
    required_query: Iterable[str] = (),
) -> Route:
    """A Starlette route that also describes itself in ``/openapi.json``. Statuses 400
    (bad input), 401 (when ``auth`` is not "none"), 403 (verified and roles), 429 and 503
    are implied. ``query``: the query parameters it reads (optional unless named in
    ``required_query``)."""
    implied = {400, 429, 503}
    required = set(required_query)
    if auth != "none":
        implied.add(401)
    if auth != "none" and auth != "session":
        implied.add(403)
    route = Route(path, endpoint, methods=[method])
    route.openapi = Operation(  # type: ignore[attr-defined]
        method.lower(),
        summary,
        auth,
        body,
        response,
        status,
        tuple(sorted(implied | set(errors))),
        content_type,
        request_content_type,
        tuple((name, schema, name in required) for name, schema in (query or {}).items()),
    )
    return route


def _operation(path: str, op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "x-auth": op.auth}
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_params(path)
    ]
    params += [
        {"name": name, "in": "query", "required": required, "schema": schema}
        for name, schema, required in op.query
    ]
    if params:
        out["parameters"] = params
    if op.auth != "none":
        out["security"] = [{"bearer": []}]
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {op.request_content_type: {"schema": op.body}},
        }
    success: dict[str, Any] = {"description": "success"}
    if op.response is not None:
        success["content"] = {op.content_type: {"schema": op.response}}
    responses: dict[str, Any] = {str(op.status): success}
    for status in op.errors:
        responses[str(status)] = {
            "description": _ERROR_TEXT.get(status, "error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    out["responses"] = responses
    return out


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: Operation | None = getattr(route, "openapi", None)
        if op is None or not isinstance(route, Route):
            continue
        path = "/".join(
            "{" + part[1:-1].split(":")[0] + "}" if part.startswith("{") else part
            for part in route.path.split("/")
        )
        paths.setdefault(path, {})[op.method] = _operation(route.path, op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Confrère API", "version": "1"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_route(routes: list[BaseRoute]) -> Route:
    """``GET /openapi.json`` over ``routes`` (read when first requested, so routes added
    to the list later are included)."""
    cached: dict[str, Any] = {}

    async def serve(request: Request) -> Response:
        if "doc" not in cached:
            cached["doc"] = document(routes)
        return JSONResponse(cached["doc"])

    return Route("/openapi.json", serve, methods=["GET"])
