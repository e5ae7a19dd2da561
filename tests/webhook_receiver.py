"""A real HTTP webhook receiver for tests (see local_http: refused until started)."""

from __future__ import annotations

from dataclasses import dataclass

from local_http import Arrivals, LocalHttpServer
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route


@dataclass(frozen=True, slots=True)
class Received:
    headers: dict[str, str]
    body: bytes


class WebhookReceiver(LocalHttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.url = f"{self.origin}/hook"
        self.received = Arrivals[Received]()

    def routes(self) -> list[BaseRoute]:
        return [Route("/hook", self._hook, methods=["POST"])]

    async def _hook(self, request: Request) -> Response:
        self.received.append(Received(dict(request.headers), await request.body()))
        return Response(status_code=204)

    async def wait_for(self, count: int, limit_s: float = 20.0) -> list[Received]:
        """The requests received, once there are at least ``count``."""
        return await self.received.until(count, limit_s)
