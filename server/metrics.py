"""Prometheus metrics of one node process, served at ``/metrics`` in the text
exposition format (version 0.0.4).

The counters live in one process-wide :data:`METRICS` (as Prometheus client libraries
do): the gateway and the hub update them on the hot path, so an update is one dict
lookup and an add (a histogram observation: a bisect and two adds), with no lock: all
of it runs on the event loop's thread. Gauges that describe the app's state
(connections, outbox backlog, broker lag) are read when scraped, by
:func:`render`'s caller.

Series (all prefixed ``confrere_``):

- ``connections`` (gauge): open WebSocket connections of this node;
- ``connections_opened_total``: WebSocket connections accepted;
- ``frames_in_total{type}`` / ``frames_out_total{type}``: decoded client frames by
  type (``bad`` for undecodable ones), frames written to clients by type (fan-out
  counts one per recipient);
- ``errors_total{code}``: error frames and REST error responses by error code;
- ``closes_total{code}``: WebSocket close codes the server sent (4008: slow consumer);
- ``fanout_seconds``: time to hand one broker publication to every local recipient;
- ``commit_seconds``: duration of one group-commit transaction of messages;
- ``receipts_commit_seconds``: likewise, of read receipts;
- ``broker_lag_seconds`` (gauge): publish-to-receive time of the last broker probe;
- ``outbox_backlog`` (gauge): notifications due and not yet sent;
- ``deliveries_total``: frames the hub handed to local connections;
- ``presence_errors_total``: presence updates or reads that failed (Redis down...): the
  online state of some users may then be wrong until they reconnect.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

__all__ = [
    "METRICS",
    "Counter",
    "Histogram",
    "Metrics",
    "frame_type",
    "render",
    "timed",
]

T = TypeVar("T")
A = TypeVar("A")

# Seconds: from 100 µs (an in-memory fan-out) to 10 s (a stalled database).
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


class Counter:
    """A counter with at most one label; the unlabelled series is the key ``""``."""

    __slots__ = ("help", "label", "name", "values")

    def __init__(self, name: str, help: str, label: str | None = None) -> None:
        self.name = name
        self.help = help
        self.label = label
        self.values: dict[str, float] = {}

    def inc(self, key: str = "", n: float = 1.0) -> None:
        values = self.values
        values[key] = values.get(key, 0.0) + n

    def get(self, key: str = "") -> float:
        return self.values.get(key, 0.0)

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for key, value in sorted(self.values.items()):
            labels = f'{{{self.label}="{_escape(key)}"}}' if self.label else ""
            yield f"{self.name}{labels} {_number(value)}"


class Histogram:
    """Cumulative buckets as Prometheus expects them, kept per bucket and summed when
    rendered, so that an observation touches one slot."""

    __slots__ = ("bounds", "count", "counts", "help", "name", "sum")

    def __init__(self, name: str, help: str, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name = name
        self.help = help
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last slot is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        cumulative = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts, strict=True):
            cumulative += n
            yield f'{self.name}_bucket{{le="{_number(bound)}"}} {cumulative}'
        yield f"{self.name}_sum {_number(self.sum)}"
        yield f"{self.name}_count {self.count}"


class Metrics:
    """The process's series updated by the code; see the module docstring."""

    def __init__(self) -> None:
        self.connections_opened = Counter(
            "confrere_connections_opened_total", "WebSocket connections accepted."
        )
        self.frames_in = Counter(
            "confrere_frames_in_total", "Client frames received, by frame type.", "type"
        )
        self.frames_out = Counter(
            "confrere_frames_out_total", "Frames written to clients, by frame type.", "type"
        )
        self.errors = Counter(
            "confrere_errors_total", "Error frames and REST error responses, by code.", "code"
        )
        self.closes = Counter(
            "confrere_closes_total", "WebSocket close codes sent by the server.", "code"
        )
        self.fanout = Histogram(
            "confrere_fanout_seconds",
            "Time to hand one broker publication to every local recipient.",
        )
        self.commit = Histogram(
            "confrere_commit_seconds", "Duration of one group-commit transaction of messages."
        )
        self.receipts_commit = Histogram(
            "confrere_receipts_commit_seconds",
            "Duration of one group-commit transaction of read receipts.",
        )
        self.presence_errors = Counter(
            "confrere_presence_errors_total", "Presence updates or reads that failed."
        )
        self.broker_lag = math.nan  # seconds; NaN until the first probe came back

    def series(self) -> tuple[Counter | Histogram, ...]:
        return (
            self.connections_opened,
            self.frames_in,
            self.frames_out,
            self.errors,
            self.closes,
            self.presence_errors,
            self.fanout,
            self.commit,
            self.receipts_commit,
        )


METRICS = Metrics()


def _gauge(name: str, help: str, value: float) -> Iterable[str]:
    yield f"# HELP {name} {help}"
    yield f"# TYPE {name} gauge"
    yield f"{name} {'NaN' if math.isnan(value) else _number(value)}"


def render(metrics: Metrics, *, connections: int, outbox_backlog: float, deliveries: int) -> str:
    """The exposition text: the process's series plus the gauges read at scrape time
    (``outbox_backlog`` is NaN when the database did not answer)."""
    lines: list[str] = []
    lines += _gauge("confrere_connections", "Open WebSocket connections.", connections)
    for series in metrics.series():
        lines += series.lines()
    lines += _gauge(
        "confrere_broker_lag_seconds",
        "Publish-to-receive time of the last broker probe.",
        metrics.broker_lag,
    )
    lines += _gauge(
        "confrere_outbox_backlog", "Notifications due and not sent yet.", outbox_backlog
    )
    lines += [
        "# HELP confrere_deliveries_total Frames the hub handed to local connections.",
        "# TYPE confrere_deliveries_total counter",
        f"confrere_deliveries_total {deliveries}",
    ]
    return "\n".join(lines) + "\n"


def frame_type(data: bytes) -> str:
    """The ``t`` of an encoded frame, read from its first bytes without decoding it:
    every frame's ``to_wire`` puts ``t`` first, so the bytes start with a map header,
    the fixstr ``"t"`` and the fixstr type."""
    if len(data) > 4 and data[1:3] == b"\xa1t" and 0xA0 <= data[3] <= 0xBF:
        return data[4 : 4 + data[3] - 0xA0].decode("ascii", "replace")
    return "other"


def timed(histogram: Histogram, fn: Callable[[A], Awaitable[T]]) -> Callable[[A], Awaitable[T]]:
    """``fn`` with each call's duration observed in ``histogram`` (failures too)."""

    async def wrapper(arg: A) -> T:
        start = time.perf_counter()
        try:
            return await fn(arg)
        finally:
            histogram.observe(time.perf_counter() - start)

    return wrapper
