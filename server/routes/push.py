"""REST: push subscriptions of the caller's device (SPEC.md §9.5).

``GET /v1/push/config`` tells a client what this server can push through (the VAPID
public key browsers subscribe with, or null); ``PUT /v1/push/subscription`` stores the
calling device's subscription (a browser's Web Push endpoint and keys, or a mobile
app's APNs / FCM token), replacing the previous one; ``DELETE`` removes it. A device's
pushes stop when its subscription goes, or when the push service says it is gone.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from storage.push import PUSH_KINDS, PushStore, PushSubscription

from ..clock import now_ms
from ..errors import bad_field
from ..fields import choice, text
from ..handlers import Services
from ..notifications import check_webhook_url
from ..notifications.webpush import check_web_push_keys
from ..openapi import api_route, nullable, obj, string
from .common import bearer, json_body
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


async def put_subscription(request: Request) -> Response:
    session, user = await bearer(request)
    body = await json_body(request)
    kind = next(k for k in PUSH_KINDS if k == choice(body, "kind", PUSH_KINDS))
    p256dh = auth = ""
    if kind == "webpush":
        endpoint = text(body, "endpoint", 2000)
        try:
            check_webhook_url(endpoint, "endpoint")
        except ValueError:
            raise bad_field("endpoint", "must be an https URL") from None
        p256dh = text(body, "p256dh", 200)
        auth = text(body, "auth", 100)
        try:
            check_web_push_keys(p256dh, auth)
        except ValueError:
            raise bad_field("p256dh", "and 'auth' must be the subscription's keys") from None
    else:
        endpoint = text(body, "token", 4096)
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
        body=obj(
            {
                "kind": string(enum=PUSH_KINDS),
                "endpoint": string(max_length=2000),
                "p256dh": string(max_length=200),
                "auth": string(max_length=100),
                "token": string(max_length=4096),
            },
            required=("kind",),
        ),
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
