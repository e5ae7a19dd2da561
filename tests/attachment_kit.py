"""Helpers of the attachment tests: sample files, raw HTTP over a socket (for what a
well-behaved client library will not do), and what a server left in its stores."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from blob_backends import BlobBackend

from harness import ServerUnderTest

__all__ = [
    "MAGIC",
    "Raw",
    "files_in",
    "leftovers",
    "raw_request",
    "sample",
    "send_raw",
    "wait_until",
]

MAGIC = {
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
}
FAR_FUTURE = 2**62


def sample(content_type: str, size: int) -> bytes:
    """``size`` bytes that start like a file of ``content_type`` (random after that)."""
    head = MAGIC[content_type]
    return (head + os.urandom(max(0, size - len(head))))[:size]


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes


async def _read_response(reader: asyncio.StreamReader) -> Raw:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return Raw(status, headers, await reader.readexactly(length))


async def send_raw(
    url: str, head: bytes, body_parts: list[bytes] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and write a request head (and body parts) as given."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(head)
    for part in body_parts or []:
        writer.write(part)
        await writer.drain()
    await writer.drain()
    return reader, writer


async def raw_request(
    url: str,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes = b"",
) -> Raw:
    """One request exactly as written (no header fixed up), and its response."""
    lines = [
        f"{method} {target} HTTP/1.1",
        "Host: test",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    reader, writer = await send_raw(url, head, [body] if body else None)
    try:
        async with asyncio.timeout(10):
            return await _read_response(reader)
    finally:
        writer.close()


async def leftovers(
    server: ServerUnderTest, backend: BlobBackend
) -> tuple[int, list[str], list[str]]:
    """(attachment rows, finished blobs, partial writes) the server holds."""
    rows = await server.store.unreferenced_attachments(FAR_FUTURE, 1000)
    return len(rows), await backend.objects(), await backend.pending()


async def wait_until(check: Callable[[], Awaitable[bool]], limit_s: float = 10.0) -> None:
    """Poll an async predicate until it holds (the server reacts to a socket event on
    its own schedule); fail after ``limit_s`` seconds."""
    for _ in range(int(limit_s / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{check.__qualname__} still false after {limit_s} s")


def files_in(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def pdf_with_text(text: str) -> bytes:
    """A small valid PDF (one page showing ``text``), with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
