"""Broker lag: every few seconds a node publishes a probe on a channel only it listens
to, and the time until the probe comes back is ``confrere_broker_lag_seconds``.

The probe travels like any publication (same connection, same pipeline), so it waits
behind the node's real traffic: its delay is the lag of fan-out through the broker.
The hub hands envelopes of kind ``probe`` to :func:`probe_received`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import struct
import time

from .broker import Broker, user_channel
from .envelope import Envelope
from .metrics import METRICS

__all__ = ["BrokerProbe", "probe_received"]

log = logging.getLogger("confrere.probe")

_FORMAT = ">8sQ"  # probe id, monotonic send time in ns
_probes: dict[bytes, BrokerProbe] = {}


def probe_received(frame: bytes) -> None:
    try:
        pid, sent = struct.unpack(_FORMAT, frame)
    except struct.error:
        return
    probe = _probes.get(pid)
    if probe is not None:
        probe.lag = (time.monotonic_ns() - sent) / 1e9
        METRICS.broker_lag = probe.lag
        probe.returned.set()


class BrokerProbe:
    def __init__(self, broker: Broker, interval_s: float = 5.0) -> None:
        self.broker = broker
        self.interval_s = interval_s
        self.id = secrets.token_bytes(8)
        # Not a user id (ids are url-safe text): nobody else publishes here.
        self.channel = user_channel("~probe-" + self.id.hex())
        self.lag: float | None = None
        self.returned = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled: publish a probe every ``interval_s`` seconds."""
        _probes[self.id] = self
        try:
            await self.broker.subscribe(self.channel)
            sent = 0
            while True:
                if sent and not self.returned.is_set():  # lost, or later than a period
                    METRICS.broker_lag = (time.monotonic_ns() - sent) / 1e9
                self.returned.clear()
                sent = time.monotonic_ns()
                frame = struct.pack(_FORMAT, self.id, sent)
                try:
                    await self.broker.publish(self.channel, Envelope("probe", frame).encode())
                except Exception as exc:  # the broker is down: /readyz says so
                    log.debug("broker probe not published: %s", exc)
                await asyncio.sleep(self.interval_s)
        finally:
            _probes.pop(self.id, None)
            with contextlib.suppress(Exception):
                await self.broker.unsubscribe(self.channel)
