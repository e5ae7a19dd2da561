"""REST: push subscriptions of the caller's device (SPEC.md §9.5).

``GET /v1/push/config`` tells a client what this server can push through (the VAPID
public key browsers subscribe with, or null); ``PUT /v1/push/subscription`` stores the
calling device's subscription (a browser's Web Push endpoint and keys, or a mobile
app's APNs / FCM token), replacing the previous one; ``DELETE`` removes it. A device's
pushes stop when its subscription goes, or when the push service says it is gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from storage.push import PUSH_KINDS, PushStore, PushSubscription

from ..bodies import Choice, Text, schema_of
from ..clock import now_ms
from ..errors import bad_field
from ..handlers import Services
from ..notifications import check_webhook_url
from ..notifications.webpush import check_web_push_keys
from ..openapi import api_route, nullable, obj, string
from .common import bearer, read_body
from .common import services as all_services

__all__ = ["routes"]


def services(request: Request) -> Services[PushStore]:
    return all_services(request)


_TOKEN = re.compile(r"^[A-Za-z0-9:_\-.]{8,4096}$")


async def push_config(request: Request) -> Response:
    await bearer(request)
    notifications = services(request).notifications
    key = notifications.vapid_public_key if notifications is not None else ""
    return JSONResponse({"vapid_public_key": key or None})


@dataclass(frozen=True, slots=True)
class SubscriptionBody:
    """Web Push gives endpoint, p256dh and auth; APNs and FCM a token (checked by
    put_subscription, with each field's own rule)."""

    kind: Annotated[str, Choice(PUSH_KINDS)]
    endpoint: Annotated[str | None, Text(2000)] = None
    p256dh: Annotated[str | None, Text(200)] = None
    auth: Annotated[str | None, Text(100)] = None
    token: Annotated[str | None, Text(4096)] = None


def _given(value: str | None, field: str) -> str:
    if value is None:
        raise bad_field(field, "is required and must be a string")
    return value


async def put_subscription(request: Request) -> Response:
    session, user = await bearer(request)
    body = await read_body(request, SubscriptionBody)
    kind = next(k for k in PUSH_KINDS if k == body.kind)
    p256dh = auth = ""
    if kind == "webpush":
        endpoint = _given(body.endpoint, "endpoint")
        try:
            check_webhook_url(endpoint, "endpoint")
        except ValueError:
            raise bad_field("endpoint", "must be an https URL") from None
        p256dh, auth = _given(body.p256dh, "p256dh"), _given(body.auth, "auth")
        try:
            check_web_push_keys(p256dh, auth)
        except ValueError:
            raise bad_field("p256dh", "and 'auth' must be the subscription's keys") from None
    else:
        endpoint = _given(body.token, "token")
        if not _TOKEN.match(endpoint):
            raise bad_field("token", "must be the device token the push service gave")
    subscription = PushSubscription(
        session.device_id, user.id, kind, endpoint, p256dh, auth, now_ms()
    )
    await services(request).store.put_push_subscription(subscription)
    return Response(status_code=204)


async def delete_subscription(request: Request) -> Response:
    session, _ = await bearer(request)
    await services(request).store.delete_push_subscription(session.device_id)
    return Response(status_code=204)


routes = [
    api_route(
        "/v1/push/config",
        push_config,
        summary="What this server pushes through: the VAPID public key (Web Push) or null",
        response=obj({"vapid_public_key": nullable(string())}),
    ),
    api_route(
        "/v1/push/subscription",
        put_subscription,
        "PUT",
        summary="Store this device's push subscription (Web Push, APNs or FCM)",
        body=schema_of(SubscriptionBody),
        status=204,
        errors=(413,),
    ),
    api_route(
        "/v1/push/subscription",
        delete_subscription,
        "DELETE",
        summary="Stop pushes to this device",
        status=204,
    ),
]
