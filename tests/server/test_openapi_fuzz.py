"""Schemathesis against a live node: every operation of ``/openapi.json``, with valid
and invalid inputs, anonymous and as a verified practitioner. No 5xx, and every
response matches the document (status code, content type, body schema).

The node is a real ``python -m server run`` process (the generated requests are
synchronous, so the server cannot share the test's event loop).
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oidc_provider import running_provider
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from verification_kit import CLIENT_ID, CLIENT_SECRET

from clients.python import Account
from harness import PASSWORD, practitioner
from loadtest.server_process import ServerProcess
from server.openapi import document
from server.routes import routes
from storage import open_store

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "40"))

DOCUMENT = document(routes)
OPERATIONS = [(path, method) for path, methods in DOCUMENT["paths"].items() for method in methods]


class Node:
    def __init__(self, proc: ServerProcess, account: Account) -> None:
        self.proc = proc
        self.url = proc.url
        self.account = account


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The tests' OpenID provider as the node's Pro Santé Connect (so that its routes
    answer as configured), served from a thread of its own: these tests are
    synchronous. Yields its issuer URL."""
    started: queue.Queue[str] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        async with running_provider() as found:
            found.register(
                CLIENT_ID, CLIENT_SECRET, "http://127.0.0.1/v1/verification/psc/callback"
            )
            started.put(found.issuer)
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        yield started.get(timeout=30)
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, provider: str) -> Iterator[Node]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    env = {
        "CONFRERE_DATABASE_URL": f"sqlite:///{tmp / 'confrere.db'}",
        "CONFRERE_BLOB_URL": f"file://{tmp / 'blobs'}",
        "CONFRERE_PASSWORD_COST": "min",
        "CONFRERE_LOG_LEVEL": "warning",
        # Generous: the fuzzer is one client sending hundreds of requests a second.
        "CONFRERE_LIMIT_UPLOADS_PER_S": "1000",
        "CONFRERE_PSC_ISSUER": provider,
        "CONFRERE_PSC_CLIENT_ID": CLIENT_ID,
        "CONFRERE_PSC_CLIENT_SECRET": CLIENT_SECRET,
    }
    proc = ServerProcess(env)
    asyncio.run(proc.start())
    try:
        account = asyncio.run(_verified_account(proc.url, env["CONFRERE_DATABASE_URL"]))
        yield Node(proc, account)
    finally:
        proc.close()


async def _verified_account(url: str, database_url: str) -> Account:
    """A verified practitioner, made the way every test makes one (the node's database
    is opened beside it to mark the identity verified)."""
    store = await open_store(database_url)
    try:
        return await practitioner(url, store)
    finally:
        await store.close()


def _log_in(http: httpx.Client, email: str) -> str:
    reply = http.post("/v1/sessions", json={"email": email, "password": PASSWORD})
    assert reply.status_code == 201, reply.text
    token: str = reply.json()["token"]
    return token


def test_the_served_document_is_the_routes_document(node: Node) -> None:
    served = httpx.get(node.url + "/openapi.json").json()
    assert served == DOCUMENT
    # Every REST route is declared (the WebSocket and static web routes are not REST).
    assert {("/healthz", "get"), ("/metrics", "get"), ("/v1/sessions", "post")} <= set(OPERATIONS)


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "verified"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_operation_never_fails_and_matches_its_schema(
    node: Node, path: str, method: str, authenticated: bool
) -> None:
    schema = schemathesis.openapi.from_url(node.url + "/openapi.json")
    operation = schema[path][method]
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    revokes_token = (path, method) == ("/v1/sessions/current", "delete")
    http = httpx.Client(base_url=node.url, timeout=30)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        headers: dict[str, str] = {}
        if authenticated:
            token = _log_in(http, node.account.email) if revokes_token else node.account.token
            headers["Authorization"] = f"Bearer {token}"
        case.call_and_validate(base_url=node.url, headers=headers, checks=CHECKS)

    try:
        run()
    finally:
        http.close()
