"""Observability: Prometheus metrics at /metrics, request ids, and structured JSON logs
that carry no secret and no personal data."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import IO

import httpx
import pytest
from attachment_kit import wait_until
from raw_ws import raw_connection

from clients.python import log_in
from clients.python.errors import ServerError
from harness import PASSWORD, ROOT, ServerUnderTest, connected, practitioner, sealed
from loadtest.server_process import ServerProcess
from protocol.frames import Error, Send
from server.log import JsonFormatter, redact, request_id
from server.metrics import METRICS, Counter, Histogram, frame_type, render

_SAMPLE = re.compile(r'^([a-z_]+)(\{[a-z_]+="[^"\\]*"\})? (-?[0-9.]+(?:e[-+]?[0-9]+)?|NaN|\+Inf)$')


def parse(text: str) -> dict[str, float]:
    """Samples of the text exposition format, checking every line's syntax."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a valid sample line: {line!r}"
        samples[match[1] + (match[2] or "")] = float(match[3])
    return samples


async def scrape(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url) as http:
        reply = await http.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(reply.text)


async def test_metrics_count_connections_frames_errors_and_latencies(
    server: ServerUnderTest,
) -> None:
    before = await scrape(server.url)
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    a, b = await connected(alice), await connected(bob)
    try:
        room = await a.create_room("group", [bob.user_id])
        for i in range(5):
            await a.send(room.id, sealed(b"m%d" % i))
        async with raw_connection(server.url, alice) as raw:
            await raw.send(Send(9, "no-such-room", "cid-x", sealed(b"x")))
            assert isinstance(await raw.reply_to(9), Error)
            during = await scrape(server.url)
    finally:
        await a.close()
        await b.close()

    def grew(name: str, by: float = 1) -> bool:
        return during.get(name, 0) - before.get(name, 0) >= by

    assert during["confrere_connections"] >= 3
    assert grew('confrere_frames_in_total{type="send"}', 6)
    assert grew('confrere_frames_out_total{type="ack"}', 6)
    assert grew('confrere_frames_out_total{type="msg"}', 5)  # fan-out to bob
    assert grew('confrere_errors_total{code="forbidden"}')
    assert grew("confrere_commit_seconds_count", 1)
    assert grew("confrere_fanout_seconds_count", 5)
    assert (
        during['confrere_commit_seconds_bucket{le="+Inf"}']
        == during["confrere_commit_seconds_count"]
    )
    assert during["confrere_outbox_backlog"] >= 0
    assert grew("confrere_deliveries_total", 5)

    async def lag_measured() -> bool:  # the broker probe runs from start-up
        return not math.isnan((await scrape(server.url))["confrere_broker_lag_seconds"])

    await wait_until(lag_measured)
    assert 0 <= (await scrape(server.url))["confrere_broker_lag_seconds"] < 1.0


def test_histogram_and_counter_render_cumulative_buckets() -> None:
    hist = Histogram("x_seconds", "help", bounds=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        hist.observe(value)
    lines = list(hist.lines())
    assert 'x_seconds_bucket{le="0.1"} 2' in lines
    assert 'x_seconds_bucket{le="1"} 3' in lines
    assert 'x_seconds_bucket{le="+Inf"} 4' in lines
    assert "x_seconds_count 4" in lines and "x_seconds_sum 3.65" in lines
    counter = Counter("y_total", "help", "code")
    counter.inc('we"ird\n')
    assert 'y_total{code="we\\"ird\\n"} 1' in list(counter.lines())
    text = render(METRICS, connections=0, outbox_backlog=math.nan, deliveries=0)
    assert "confrere_outbox_backlog NaN" in text and parse(text)


def test_frame_type_reads_the_type_from_the_encoded_frame() -> None:
    from protocol import encode
    from protocol.frames import Ack, Event, Msg

    assert frame_type(encode(Msg("r", 1, "u", "d", "c", 1, b"x"))) == "msg"
    assert frame_type(encode(Event(kind="typing", room="r", user="u", on=True, ts=1))) == "event"
    assert frame_type(encode(Ack(3))) == "ack"
    assert frame_type(b"\x80") == "other"


async def test_every_response_has_a_request_id(server: ServerUnderTest) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        own = await http.get("/healthz")
        given = await http.get("/healthz", headers={"X-Request-Id": "lb-1234abcd"})
        bad = await http.get("/healthz", headers={"X-Request-Id": 'has spaces, quotes"'})
    assert re.fullmatch(r"[0-9a-f]{16}", own.headers["x-request-id"])
    assert given.headers["x-request-id"] == "lb-1234abcd"
    assert bad.headers["x-request-id"] != 'has spaces, quotes"'


def test_redaction_masks_addresses_tokens_and_secrets() -> None:
    token = "Qm9uam91ciBsZSBtb25kZSBldCBsZXMgYXV0cmVzIQ-_x"
    line = redact(
        f"login dr.martin@example.fr with Authorization: Bearer {token} password=hunter22 ok"
    )
    assert "example.fr" not in line and "dr.martin" not in line
    assert token not in line and "hunter22" not in line
    assert "[email]" in line and "Bearer [redacted]" in line
    # Our opaque ids (16 url-safe characters) stay readable.
    assert redact("room AbCdEfGh12345678 closed") == "room AbCdEfGh12345678 closed"


def test_tracebacks_keep_their_source_paths_and_mask_the_messages(tmp_path: Path) -> None:
    # A source file at a path long enough (and of base64-like characters) to have been
    # mistaken for a secret: its traceback lines must stay readable.
    where = tmp_path / ("deployment" * 3) / "confrerePackagesServerRoutesModule"
    where.mkdir(parents=True)
    source = where / "accountsRoutesHandlersVerification.py"
    source.write_text(
        "def _a_function_whose_name_is_long_enough_to_look_like_a_secret(token):\n"
        "    raise ValueError('refused Authorization: Bearer ' + token)\n"
    )
    namespace: dict[str, object] = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    token = "Qm9uam91ciBsZSBtb25kZSBldCBsZXMgYXV0cmVzIQ-_x"
    try:
        namespace["_a_function_whose_name_is_long_enough_to_look_like_a_secret"](token)  # type: ignore[operator]
    except ValueError:
        record = logging.LogRecord(
            "confrere.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    out = json.loads(JsonFormatter().format(record))["exc"]
    assert f'File "{source}", line 2' in out
    assert "in _a_function_whose_name_is_long_enough_to_look_like_a_secret" in out
    assert token not in out and "Bearer [redacted]" in out


def test_json_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("confrere.x", logging.INFO, __file__, 1, "hello %s", ("a",), None)
    reset = request_id.set("rid-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(reset)
    assert line["msg"] == "hello a" and line["request_id"] == "rid-1"
    assert line["level"] == "info" and line["logger"] == "confrere.x"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])


class LoggedNode(ServerProcess):
    """A node whose stderr (its log) goes to a file."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        super().__init__(env)
        self.log = log

    def spawn(self) -> None:
        fd = self.sock.fileno()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "run", "--fd", str(fd)],
            cwd=ROOT,
            env={**__import__("os").environ, **self.extra_env},
            pass_fds=(fd,),
            stderr=self.log,
        )


async def test_a_node_logs_json_lines_without_secrets_or_personal_data(tmp_path: Path) -> None:
    log_path = tmp_path / "node.log"
    db = f"sqlite:///{tmp_path / 'confrere.db'}"
    with log_path.open("wb") as log:
        node = LoggedNode(
            {
                "CONFRERE_DATABASE_URL": db,
                "CONFRERE_BLOB_URL": f"file://{tmp_path / 'blobs'}",
                "CONFRERE_PASSWORD_COST": "min",
                "CONFRERE_LOG_LEVEL": "debug",
            },
            log,
        )
        try:
            await node.start()
            from storage import open_store

            store = await open_store(db)
            try:
                alice = await practitioner(node.url, store)
            finally:
                await store.close()
            await log_in(node.url, alice.email, PASSWORD)
            with pytest.raises(ServerError):
                await log_in(node.url, alice.email, "wrong password " + PASSWORD)
            client = await connected(alice)
            room = await client.create_room("group", [])
            await client.send(room.id, sealed(b"secret ciphertext"))
            await client.close()
        finally:
            node.close()
    lines = log_path.read_text("utf-8").splitlines()
    assert lines, "the node logged nothing at debug level"
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= e.keys() for e in entries)
    text = log_path.read_text("utf-8")
    for secret in (alice.email, alice.token, PASSWORD, "Prénom", "secret ciphertext"):
        assert secret not in text, f"{secret!r} appears in the log"
