"""REST routes, one module per area."""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import accounts, attachments, health
from .openapi import openapi_route

__all__ = ["routes"]

routes: list[BaseRoute] = [*health.routes, *accounts.routes, *attachments.routes]
routes.append(openapi_route(routes))
