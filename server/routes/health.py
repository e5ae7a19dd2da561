"""Liveness and readiness probes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import services

__all__ = ["routes"]


async def healthz(request: Request) -> Response:
    """The process is up and serving."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The database, the broker and the blob store answer: the node can take traffic."""
    svc = services(request)
    problems = []
    try:
        await svc.store.ping()
    except Exception:
        problems.append("database")
    try:
        await svc.hub.broker.ping()
    except Exception:
        problems.append("broker")
    try:
        await svc.blobs.ping()
    except Exception:
        problems.append("blobs")
    if problems:
        return JSONResponse({"status": "unavailable", "failing": problems}, status_code=503)
    return JSONResponse({"status": "ok"})


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
