"""REST: who is who, ``GET /v1/profiles?users=ID,ID…`` (SPEC.md §9 "Profiles").

Clients resolve the user ids of senders, members and guests into names, in batches,
and cache the answer. Each card is filtered by :func:`~server.directory.cards.card_for`:
ids the caller may not see are left out of the answer, never an error, so the reply
does not tell whether an id exists.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol.errors import ErrorCode

from ..directory.cards import CARD, CardPorts, card_for
from ..directory.query import is_id
from ..errors import ApiError
from ..handlers import Services
from ..openapi import api_route, array, obj, string
from .common import bearer
from .common import services as all_services

__all__ = ["MAX_USERS", "routes"]


def services(request: Request) -> Services[CardPorts]:
    return all_services(request)


MAX_USERS = 100  # ids per request


async def profiles(request: Request) -> Response:
    _, caller = await bearer(request)
    raw = request.query_params.get("users", "")
    ids = list(dict.fromkeys(part for part in raw.split(",") if part))
    if not ids or len(ids) > MAX_USERS or not all(is_id(i) for i in ids):
        raise ApiError(
            ErrorCode.BAD_FRAME,
            f"field 'users' must list 1 to {MAX_USERS} user ids, separated by commas",
        )
    store = services(request).store
    cards = [await card_for(store, caller, user_id) for user_id in ids]
    return JSONResponse({"profiles": [c for c in cards if c is not None]})


routes = [
    api_route(
        "/v1/profiles",
        profiles,
        summary="Who is who: the public cards of users by id (those the caller may see)",
        query={"users": string(pattern=r"^[A-Za-z0-9_,-]{1,6600}$")},
        required_query=("users",),
        response=obj({"profiles": array(CARD)}),
    ),
]
