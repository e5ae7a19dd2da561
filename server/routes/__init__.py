"""REST routes, one module per area."""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import accounts, health

__all__ = ["routes"]

routes: list[BaseRoute] = [*health.routes, *accounts.routes]
