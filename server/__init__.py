"""Confrère server: Starlette app, WebSocket gateway, hub, brokers, REST, CLI."""

from .app import create_app
from .config import Settings

__all__ = ["Settings", "create_app"]
