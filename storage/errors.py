"""Exceptions of the storage layer.

StorageError            root
├── NotFound            the row named does not exist
├── Conflict            a uniqueness rule refused the write (e.g. e-mail taken)
└── Unavailable         the database could not be reached or the commit failed
"""

from __future__ import annotations

__all__ = ["Conflict", "NotFound", "StorageError", "Unavailable"]


class StorageError(Exception):
    """Root of the exceptions raised by :mod:`storage`."""


class NotFound(StorageError):
    pass


class Conflict(StorageError):
    pass


class Unavailable(StorageError):
    pass
