"""Blob storage: the :class:`BlobStore` interface and its adapters, chosen by URL scheme.

``file://relative/dir`` or ``file:///absolute/dir``: local disk (embedded default,
``file://var/blobs``, i.e. ``./var/blobs`` beside ``./var/confrere.db``; a relative
path is relative to the working directory, as the SQLite default is).
``s3://[KEY:SECRET@]BUCKET[/PREFIX]?endpoint=URL&region=R&part_size=N``: S3 or any
S3-compatible server (see :mod:`storage.blobs.s3`). Drivers are imported only when
their scheme is used.
"""

from __future__ import annotations

from .base import BlobStore, check_key

__all__ = ["BlobStore", "check_key", "open_blobs"]


async def open_blobs(url: str) -> BlobStore:
    """Open the blob store named by ``url``."""
    scheme, _, rest = url.partition("://")
    if scheme == "file":
        from .local import open_local

        if not rest:
            raise ValueError("a file:// blob URL names a directory: file://var/blobs")
        return await open_local(rest)
    if scheme == "s3":
        from .s3 import open_s3

        return await open_s3(url)
    raise ValueError(f"unsupported blob URL scheme {scheme!r} (expected file or s3)")
