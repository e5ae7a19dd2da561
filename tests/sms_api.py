"""A local HTTP server speaking OVHcloud's SMS API for tests: ``POST
/1.0/sms/{service}/jobs``, checking the application key, the consumer key, the
timestamp and the ``$1$`` signature (a wrong one: 403 as OVHcloud answers), and
answering ``{"ids", "validReceivers", "invalidReceivers", "totalCreditsRemoved"}``.

``script`` holds statuses to answer instead (popped one per request, 200 meaning
normal handling); ``invalid`` numbers come back in ``invalidReceivers``; ``hang``
makes it never answer (a timeout). Bound at construction, listening from
:meth:`start` (refused until then).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from local_http import Arrivals, LocalHttpServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from server.notifications.sms import ovh_signature

APPLICATION_KEY = "test-application-key"
APPLICATION_SECRET = "test-application-secret"
CONSUMER_KEY = "test-consumer-key"
SERVICE = "sms-ab12345-1"


@dataclass(frozen=True, slots=True)
class Sent:
    receivers: list[str]
    message: str
    body: dict[str, Any]


class OvhSmsApi(LocalHttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.base_url = f"{self.origin}/1.0"
        self.sent = Arrivals[Sent]()
        self.requests = 0
        self.script: list[int] = []
        self.invalid: set[str] = set()
        self.hang = False

    def routes(self) -> list[BaseRoute]:
        return [Route("/1.0/sms/{service}/jobs", self._jobs, methods=["POST"])]

    async def _jobs(self, request: Request) -> Response:
        self.requests += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.script:
            status = self.script.pop(0)
            if status != 200:
                return JSONResponse({"message": f"scripted {status}"}, status_code=status)
        if request.path_params["service"] != SERVICE:
            return JSONResponse({"message": "This service does not exist"}, status_code=404)
        raw = (await request.body()).decode("utf-8")
        headers = request.headers
        if (
            headers.get("x-ovh-application") != APPLICATION_KEY
            or headers.get("x-ovh-consumer") != CONSUMER_KEY
        ):
            return JSONResponse({"message": "Invalid application key"}, status_code=403)
        stamp = int(headers.get("x-ovh-timestamp", "0"))
        expected = ovh_signature(
            APPLICATION_SECRET, CONSUMER_KEY, "POST", str(request.url), raw, stamp
        )
        if headers.get("x-ovh-signature") != expected or abs(time.time() - stamp) > 180:
            return JSONResponse({"message": "Invalid signature"}, status_code=403)
        body = json.loads(raw)
        if not isinstance(body.get("message"), str) or not body.get("receivers"):
            return JSONResponse({"message": "Invalid body"}, status_code=400)
        receivers = [r for r in body["receivers"] if r not in self.invalid]
        invalid = [r for r in body["receivers"] if r in self.invalid]
        if receivers:
            self.sent.append(Sent(receivers, body["message"], body))
        return JSONResponse(
            {
                "ids": list(range(len(receivers))),
                "validReceivers": receivers,
                "invalidReceivers": invalid,
                "totalCreditsRemoved": len(receivers),
                "tag": "",
            }
        )

    async def wait_for(self, count: int, limit_s: float = 20.0) -> list[Sent]:
        return await self.sent.until(count, limit_s)
