"""An attachment DELETE whose blob store fails midway (S3 unreachable after the claim)
is finished later, never forgotten: the uploader gets 204 and everyone a 404 at once,
the node retries in the background, and the claimed row is one the orphan sweep would
finish if the node died first. On both storage adapters (the claim is theirs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from attachment_kit import FAR_FUTURE, sample, wait_until
from blob_backends import BlobBackend
from relay import Relay
from services_s3 import S3Server, bucket_client, fresh_bucket

from clients.python.attachments import upload_file
from harness import ServerUnderTest, connected, practitioner, sealed, server_on


@pytest.fixture(params=["sqlite", "postgres"])
async def node_and_relay(
    request: pytest.FixtureRequest, tmp_path: Path, s3_server: S3Server
) -> AsyncIterator[tuple[ServerUnderTest, Relay, BlobBackend]]:
    endpoint = urlparse(s3_server.endpoint)
    assert endpoint.hostname is not None and endpoint.port is not None
    relay = await Relay(endpoint.hostname, endpoint.port).start()
    try:
        async with bucket_client(s3_server) as s3, fresh_bucket(s3_server, s3) as bucket:
            url = s3_server.url(bucket).replace(
                f"{endpoint.hostname}:{endpoint.port}", f"127.0.0.1:{relay.port}"
            )
            assert str(relay.port) in url
            backend = BlobBackend("s3", url, s3=s3_server, bucket=bucket, client=s3)
            async with server_on(request.param, request, tmp_path, blob_url=url) as srv:
                yield srv, relay, backend
    finally:
        await relay.close()


async def test_a_delete_that_fails_midway_on_s3_is_finished(
    node_and_relay: tuple[ServerUnderTest, Relay, BlobBackend],
) -> None:
    srv, relay, backend = node_and_relay
    alice = await practitioner(srv.url, srv.store)
    a = await connected(alice)
    try:
        room = await a.create_room("group", [])
        ref = await upload_file(alice, room.id, sample("application/pdf", 5000))
        await a.send(room.id, sealed(b"ciphertext"), att=[ref.id])  # referenced by a message
    finally:
        await a.close()
    assert await backend.objects() == [ref.id]
    auth = {"Authorization": f"Bearer {alice.token}"}

    relay.set_cut(True)  # the blob store is unreachable once the row is claimed
    async with httpx.AsyncClient(base_url=srv.url, headers=auth, timeout=60) as http:
        deleted = await http.delete(f"/v1/attachments/{ref.id}")
        assert deleted.status_code == 204, deleted.text
        assert (await http.get(f"/v1/attachments/{ref.id}")).status_code == 404
    assert await backend.objects() == [ref.id]  # not removed yet...
    # ...but never forgotten: should this node die now, the orphan sweep finishes it.
    swept = await srv.store.unreferenced_attachments(FAR_FUTURE, 1000)
    assert [a.id for a in swept] == [ref.id] and swept[0].state == "deleting"

    relay.set_cut(False)

    async def finished() -> bool:
        return not await backend.objects() and await srv.store.attachment(ref.id) is None

    await wait_until(finished, limit_s=30)
