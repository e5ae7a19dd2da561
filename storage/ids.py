"""Identifiers: random, url-safe, unguessable, generated without coordination."""

from __future__ import annotations

import secrets

__all__ = ["new_id"]


def new_id() -> str:
    """16 url-safe characters (96 random bits)."""
    return secrets.token_urlsafe(12)
