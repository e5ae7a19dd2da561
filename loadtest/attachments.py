"""``python -m loadtest attachments``: upload and download throughput of a large file,
and the server's memory while it streams, on each blob adapter.

For each adapter (local disk; S3, on the server ``--blob-url s3://...`` names or on a
moto server this benchmark starts in a process of its own) it starts a node (SQLite in
a temporary directory), signs up two practitioners in one room, and moves a file of
``--size-mb`` MiB (50 by default: the limit) through the SDK, as a client would:

- chat file: encrypted by the SDK while it is read from disk and streamed up; then
  downloaded by the other member, decrypted and checked (type, size, SHA-256) while it
  streams down to disk;
- document: sent in clear, checked by magic bytes and encrypted at rest by the
  server; downloaded decrypted by the server.

Throughput is MB/s (10^6 bytes) of plaintext, end to end (client encryption included).
Memory: the node's peak resident set during each transfer minus its resident set just
before (Linux ``/proc/PID/status``: ``VmHWM`` after resetting it through
``/proc/PID/clear_refs``), which must stay far below the file's size: the run fails if
it reaches a quarter of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from clients.python import Account, Client
from clients.python.attachments import (
    download_document,
    download_file,
    upload_document,
    upload_file,
)
from storage.blobs.s3 import open_s3

from .population import verified_accounts
from .server_process import ROOT, ServerProcess

__all__ = ["add_arguments", "run"]

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
MiB = 1024 * 1024
T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size-mb", type=int, default=50, help="MiB of plaintext (max 50)")
    parser.add_argument(
        "--blob-url",
        action="append",
        default=[],
        help="blob store(s) to measure (repeatable); default: local disk and a moto S3",
    )
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")


def _reset_peak(pid: int) -> None:
    """Reset the process's VmHWM to its current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) * 1024
    return found


async def _peak_growth(pid: int, work: Awaitable[T]) -> tuple[T, float, int]:
    """Run ``work``; return its result, seconds, and the process's peak RSS growth."""
    _reset_peak(pid)
    before = _memory(pid)["VmRSS"]
    sampled = before
    done = asyncio.Event()

    async def sample() -> None:  # a second opinion, in case the reset is not supported
        nonlocal sampled
        while not done.is_set():
            sampled = max(sampled, _memory(pid)["VmRSS"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.005)

    sampler = asyncio.create_task(sample())
    start = time.perf_counter()
    try:
        result = await work
    finally:
        elapsed = time.perf_counter() - start
        done.set()
        await sampler
    peak = max(_memory(pid)["VmHWM"], sampled)
    return result, elapsed, peak - before


@contextlib.asynccontextmanager
async def _moto() -> AsyncIterator[str]:
    """A moto S3 server in a child process, with one bucket; yields its blob URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loadtest.s3_server",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        port = int(await proc.stdout.readline())
        yield f"s3://bench:bench@bench-{uuid.uuid4().hex[:12]}?endpoint=http://127.0.0.1:{port}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)


async def _ensure_bucket(url: str) -> None:
    store = await open_s3(url)
    try:
        await store.client.head_bucket(Bucket=store.options.bucket)
    except ClientError:
        await store.client.create_bucket(Bucket=store.options.bucket)
    finally:
        await store.close()


async def _practitioners(url: str, database_url: str) -> tuple[Account, Account]:
    a, b = await verified_accounts(url, database_url, 2, specialty="Radiologie")
    return a, b


def _figures(size: int, seconds: float, growth: int) -> dict[str, float]:
    return {
        "seconds": round(seconds, 3),
        "mb_per_s": round(size / 1e6 / seconds, 1),
        "rss_growth_mb": round(growth / 1e6, 1),
    }


async def _adapter(blob_url: str, source: Path, size: int, workdir: Path) -> dict[str, Any]:
    database_url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
    node = ServerProcess(
        {
            "CONFRERE_DATABASE_URL": database_url,
            "CONFRERE_BLOB_URL": blob_url,
            "CONFRERE_PASSWORD_COST": "min",
            "CONFRERE_LOG_LEVEL": "warning",
        }
    )
    await node.start()
    try:
        alice, bob = await _practitioners(node.url, database_url)
        client = Client(alice)
        await client.connect()
        try:
            room = await client.create_room("group", [bob.user_id])
        finally:
            await client.close()
        out: dict[str, Any] = {}

        async def measure(label: str, work: Callable[[], Awaitable[T]]) -> T:
            result, seconds, growth = await _peak_growth(node.pid, work())
            out[label] = _figures(size, seconds, growth)
            return result

        ref = await measure("chat_upload", lambda: upload_file(alice, room.id, source))
        received = workdir / "received.png"
        await measure("chat_download", lambda: download_file(bob, ref, received))
        await asyncio.to_thread(received.unlink)
        doc = await measure("document_upload", lambda: upload_document(alice, source, room=room.id))
        await measure("document_download", lambda: download_document(bob, doc["id"], received))
        return out
    finally:
        node.close()


def _write_source(path: Path, size: int) -> None:
    """A "PNG" of random bytes, written in pieces."""
    with path.open("wb") as file:
        file.write(PNG)
        left = size - len(PNG)
        while left:
            piece = os.urandom(min(left, 4 * MiB))
            file.write(piece)
            left -= len(piece)


async def _bench(args: argparse.Namespace, source: Path, size: int) -> dict[str, Any]:
    workdir = source.parent
    report: dict[str, Any] = {"file_bytes": size, "adapters": {}}
    urls = args.blob_url or [f"file://{workdir / 'blobs'}", "s3+moto"]
    for url in urls:
        if url == "s3+moto":
            async with _moto() as moto_url:
                await _ensure_bucket(moto_url)
                report["adapters"]["s3 (moto)"] = await _adapter(moto_url, source, size, workdir)
            continue
        if url.startswith("s3://"):
            await _ensure_bucket(url)
        report["adapters"][url.split("://")[0]] = await _adapter(url, source, size, workdir)
    return report


def run(args: argparse.Namespace) -> int:
    size = min(args.size_mb, 50) * MiB
    with tempfile.TemporaryDirectory(prefix="confrere-bench-") as workdir:
        source = Path(workdir) / "scan.png"
        _write_source(source, size)
        report = asyncio.run(_bench(args, source, size))
    size = report["file_bytes"]
    print(f"attachments: a file of {size / MiB:.0f} MiB ({size} bytes), one node, via the SDK")
    ok = True
    for adapter, figures in report["adapters"].items():
        print(f"  {adapter}")
        for label, f in figures.items():
            print(
                f"    {label:<18} {f['mb_per_s']:>7} MB/s  ({f['seconds']} s)"
                f"   server peak RSS growth {f['rss_growth_mb']} MB"
            )
            ok = ok and f["rss_growth_mb"] * 1e6 < size / 4
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    if not ok:
        print("FAILED: the server's memory grew by a quarter of the file's size or more")
    return 0 if ok else 1
