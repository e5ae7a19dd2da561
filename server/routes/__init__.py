"""REST routes, one module per area."""

from __future__ import annotations

from starlette.routing import BaseRoute

from ..openapi import openapi_route
from . import (
    account_lifecycle,
    accounts,
    admin,
    attachments,
    backup,
    devices,
    directory,
    health,
    profiles,
    push,
    referrals,
    review,
    sas,
    verification,
)

__all__ = ["routes"]

routes: list[BaseRoute] = [*health.routes, *accounts.routes, *attachments.routes]
routes += [*account_lifecycle.routes, *devices.routes, *push.routes, *backup.routes]
routes += [*verification.routes, *review.routes]
routes += admin.routes
routes += [*directory.routes, *profiles.routes, *referrals.routes, *sas.routes]
routes.append(openapi_route(routes))
