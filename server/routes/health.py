"""Liveness and readiness probes, and the Prometheus metrics of the node."""

from __future__ import annotations

import math
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from storage.outbox import OutboxStore

from ..clock import now_ms
from ..handlers import Services
from ..live import LiveConnections
from ..metrics import METRICS, render
from ..node import node
from ..openapi import api_route, obj, string
from .common import services as all_services

__all__ = ["routes"]


class HealthPorts(OutboxStore, Protocol):
    """What health uses of the store: the outbox's backlog, and a ping."""

    async def ping(self) -> None: ...


def services(request: Request) -> Services[HealthPorts]:
    return all_services(request)


_STATUS = obj({"status": string(enum=("ok",))})


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
        return JSONResponse(
            {
                "code": "unavailable",
                "message": f"not ready: {', '.join(problems)} not answering",
                "status": "unavailable",
                "failing": problems,
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    """Prometheus text format. Expose it to the monitoring network only (it names no
    user, but tells the load of the node)."""
    svc = services(request)
    live: LiveConnections = node(request).live
    try:
        backlog: float = await svc.store.outbox_backlog(now_ms())
    except Exception:  # the database is down: /readyz tells; the metrics still answer
        backlog = math.nan
    text = render(
        METRICS, connections=len(live), outbox_backlog=backlog, deliveries=svc.hub.deliveries
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [
    api_route(
        "/healthz", healthz, summary="Liveness: the process serves", auth="none", response=_STATUS
    ),
    api_route(
        "/readyz",
        readyz,
        summary="Readiness: database, broker and blob store answer",
        auth="none",
        response=_STATUS,
        errors=(503,),
    ),
    api_route(
        "/metrics",
        metrics,
        summary="Prometheus metrics of this node (text exposition format 0.0.4)",
        auth="none",
        response=string(),
        content_type="text/plain",
    ),
]
