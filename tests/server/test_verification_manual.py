"""Manual identity verification over HTTP: photos in (JPEG/PNG by magic bytes, size
limit, encrypted at rest), the reviewer's queue (oldest first, overdue flag), documents,
decisions with the user notified through the outbox, documents deleted after the
retention, and the messaging gate lifted on a live connection without reconnecting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from attachment_kit import raw_request, wait_until
from verification_kit import JPEG, PNG, outbox_mails, signed_up

from clients.python import Account, ServerError
from harness import (
    ServerUnderTest,
    connected,
    next_of,
    opened,
    practitioner,
    running_server,
    sealed,
    settings_for,
)
from protocol.errors import ErrorCode
from protocol.frames import Msg
from server.clock import now_ms
from server.verification.review import MAX_DOCUMENT_BYTES, OVERDUE_MS
from storage.verification import IdentityRequest


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ServerUnderTest]:
    # Documents are kept 1 s after the decision here, swept every 0.2 s.
    settings = settings_for(tmp_path, identity_retention_s=1, identity_sweep_interval_s=0.2)
    async with running_server(settings) as srv:
        yield srv


async def _put(
    http: httpx.AsyncClient, account: Account, side: str, data: bytes, ctype: str
) -> httpx.Response:
    return await http.put(
        f"/v1/verification/documents/{side}",
        content=data,
        headers={**_auth(account), "Content-Type": ctype},
    )


async def _reviewer(srv: ServerUnderTest) -> Account:
    reviewer, _ = await signed_up(srv)
    await srv.store.grant_role(reviewer.user_id, "reviewer", now_ms())
    return reviewer


async def _submit_id_card(http: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    for side, data, ctype in (
        ("front", JPEG, "image/jpeg"),
        ("back", PNG, "image/png"),
        ("selfie", JPEG, "image/jpeg"),
    ):
        assert (await _put(http, account, side, data, ctype)).status_code == 201
    submitted = await http.post(
        "/v1/verification/manual",
        json={"document": "id_card", "issuing_country": "fr"},
        headers=_auth(account),
    )
    assert submitted.status_code == 201, submitted.text
    request: dict[str, Any] = submitted.json()["request"]
    assert request["state"] == "pending" and request["issuing_country"] == "FR"
    return request


async def test_approval_verifies_and_lifts_the_gate_live(node: ServerUnderTest) -> None:
    srv = node
    peer = await connected(await practitioner(srv.url, srv.store))
    account, body = await signed_up(srv)
    live = await connected(account)
    reviewer = await _reviewer(srv)
    try:
        room = await peer.create_room("direct", [account.user_id])
        await peer.send(room.id, sealed(b"un patient pour vous"))
        for attempt in (live.send(room.id, sealed(b"hi")), live.sync(room.id, 0)):
            with pytest.raises(ServerError) as info:
                await attempt
            assert info.value.code == ErrorCode.IDENTITY_UNVERIFIED
        async with httpx.AsyncClient(base_url=srv.url) as http:
            rooms = await http.get("/v1/rooms", headers=_auth(account))
            assert rooms.status_code == 200  # listed, not readable: sync was refused above
            request = await _submit_id_card(http, account)
            again = await http.post(
                "/v1/verification/manual", json={"document": "passport"}, headers=_auth(account)
            )
            assert again.status_code in (400, 409)  # photos consumed, or one pending

            queue = (await http.get("/v1/review/requests", headers=_auth(reviewer))).json()
            mine = next(r for r in queue["requests"] if r["id"] == request["id"])
            assert mine["overdue"] is False and mine["user"]["id"] == account.user_id
            assert sorted(d["side"] for d in mine["documents"]) == ["back", "front", "selfie"]
            for doc in mine["documents"]:
                got = await http.get(f"/v1/review/documents/{doc['id']}", headers=_auth(reviewer))
                assert got.status_code == 200
                assert got.content == (PNG if doc["side"] == "back" else JPEG)
                assert got.headers["content-type"] == doc["content_type"]
                # At rest the blob is ciphertext, not the photo.
                stored = b"".join([c async for c in await srv.services.blobs.open(doc["id"])])
                assert JPEG[:64] not in stored and PNG[:16] not in stored

            decided = await http.post(
                f"/v1/review/requests/{request['id']}/decision",
                json={"decision": "approve"},
                headers=_auth(reviewer),
            )
            assert decided.status_code == 200 and decided.json()["request"]["state"] == "approved"
            twice = await http.post(
                f"/v1/review/requests/{request['id']}/decision",
                json={"decision": "reject", "reason": "x"},
                headers=_auth(reviewer),
            )
            assert twice.status_code == 409
            me = (await http.get("/v1/me", headers=_auth(account))).json()["user"]
            assert me["verified"] is True
        assert await outbox_mails(srv, body["email"], "identity_approved")

        # The same connection now sends and reads.
        seq = await live.send(room.id, sealed(b"je le vois demain"))
        assert (
            opened((await next_of(peer, Msg, room=room.id, seq=seq)).body) == b"je le vois demain"
        )
        assert (
            opened((await next_of(live, Msg, room=room.id, seq=2)).body) == b"un patient pour vous"
        )

        # After the retention, the documents are gone: blobs and rows.
        doc_ids = [d["id"] for d in mine["documents"]]

        async def swept() -> bool:
            decided_req = await srv.store.identity_request(request["id"])
            return decided_req is not None and decided_req.documents_deleted_at is not None

        await wait_until(swept)
        for doc_id in doc_ids:
            assert await srv.store.identity_document(doc_id) is None
            assert not await srv.services.blobs.exists(doc_id)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            gone = await http.get(f"/v1/review/documents/{doc_ids[0]}", headers=_auth(reviewer))
            assert gone.status_code == 404
    finally:
        await live.close()
        await peer.close()


async def test_rejection_with_reason_and_retry(node: ServerUnderTest) -> None:
    srv = node
    account, body = await signed_up(srv)
    reviewer = await _reviewer(srv)
    async with httpx.AsyncClient(base_url=srv.url) as http:
        request = await _submit_id_card(http, account)
        url = f"/v1/review/requests/{request['id']}/decision"
        no_reason = await http.post(url, json={"decision": "reject"}, headers=_auth(reviewer))
        assert no_reason.status_code == 400 and "'reason'" in no_reason.json()["message"]
        bad = await http.post(url, json={"decision": "maybe"}, headers=_auth(reviewer))
        assert bad.status_code == 400 and "'decision'" in bad.json()["message"]
        rejected = await http.post(
            url,
            json={"decision": "reject", "reason": "Photo floue, recto illisible"},
            headers=_auth(reviewer),
        )
        assert rejected.status_code == 200
        assert rejected.json()["request"]["reason"] == "Photo floue, recto illisible"
        mails = await outbox_mails(srv, body["email"], "identity_rejected")
        assert mails == [{"reason": "Photo floue, recto illisible"}]
        status = (await http.get("/v1/verification", headers=_auth(account))).json()
        assert status["manual"]["state"] == "rejected" and status["user"]["verified"] is False
        assert status["ecps_identifier"] == "810003456786"  # the e-CPS log-in: 8 + RPPS
        # A rejected user may try again, with new photos (passport: no back, no country).
        for side in ("front", "selfie"):
            assert (await _put(http, account, side, PNG, "image/png")).status_code == 201
        retry = await http.post(
            "/v1/verification/manual", json={"document": "passport"}, headers=_auth(account)
        )
        assert retry.status_code == 201


async def test_queue_is_oldest_first_and_flags_overdue(node: ServerUnderTest) -> None:
    srv = node
    reviewer = await _reviewer(srv)
    accounts = [(await signed_up(srv))[0] for _ in range(3)]
    old = now_ms() - OVERDUE_MS - 60_000
    # Requests as the submit route writes them, two of them made earlier (no waiting).
    for i, (account, created_at) in enumerate(
        zip(accounts, (now_ms(), old, old + 1000), strict=True)
    ):
        async with httpx.AsyncClient(base_url=srv.url) as http:
            for side in ("front", "selfie"):
                assert (await _put(http, account, side, JPEG, "image/jpeg")).status_code == 201
        await srv.store.submit_identity_request(
            IdentityRequest(
                f"req-{i}",
                account.user_id,
                "passport",
                None,
                "pending",
                created_at,
                None,
                None,
                None,
                None,
            ),
            ("front", "selfie"),
        )
    async with httpx.AsyncClient(base_url=srv.url) as http:
        queue = (await http.get("/v1/review/requests", headers=_auth(reviewer))).json()
    assert [r["id"] for r in queue["requests"]] == ["req-1", "req-2", "req-0"]
    assert [r["overdue"] for r in queue["requests"]] == [True, True, False]


async def test_only_reviewers_see_the_queue(node: ServerUnderTest) -> None:
    srv = node
    account, _ = await signed_up(srv)
    async with httpx.AsyncClient(base_url=srv.url) as http:
        await _submit_id_card(http, account)
        for method, url in (
            ("GET", "/v1/review/requests"),
            ("GET", "/v1/review/documents/idv-whatever00"),
            ("POST", "/v1/review/requests/x/decision"),
        ):
            r = await http.request(method, url, headers=_auth(account), json={})
            assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert (await http.get("/v1/review/requests")).status_code == 401


@pytest.mark.parametrize(
    ("data", "ctype", "status", "words"),
    [
        (b"%PDF-1.7\n" + b"0" * 100, "image/jpeg", 400, "a PDF"),  # a PDF sent as a selfie
        (b"%PDF-1.7\n" + b"0" * 100, "application/pdf", 400, "JPEG or PNG"),
        (PNG, "image/jpeg", 400, "not a JPEG"),
        (b"GIF89a" + b"0" * 100, "image/png", 400, "not a PDF, JPEG or PNG"),
    ],
)
async def test_bad_photos_are_refused(
    node: ServerUnderTest, data: bytes, ctype: str, status: int, words: str
) -> None:
    account, _ = await signed_up(node)
    async with httpx.AsyncClient(base_url=node.url) as http:
        r = await _put(http, account, "selfie", data, ctype)
        assert r.status_code == status and words in r.json()["message"], r.text
        state = (await http.get("/v1/verification", headers=_auth(account))).json()
    assert state["staged_documents"] == []  # nothing kept


async def test_oversized_photo_is_refused_before_its_body(node: ServerUnderTest) -> None:
    account, _ = await signed_up(node)
    headers = {
        **_auth(account),
        "Content-Type": "image/jpeg",
        "Content-Length": str(60 * 1024 * 1024),
        "Expect": "100-continue",
    }
    raw = await raw_request(node.url, "PUT", "/v1/verification/documents/front", headers)
    assert raw.status == 413
    assert json.loads(raw.body)["code"] == "too_large"
    assert str(MAX_DOCUMENT_BYTES) in json.loads(raw.body)["message"]


async def test_manual_needs_its_photos_and_a_country(node: ServerUnderTest) -> None:
    account, _ = await signed_up(node)
    unconfirmed, _ = await signed_up(node, confirm=False)
    async with httpx.AsyncClient(base_url=node.url) as http:
        r = await http.post(
            "/v1/verification/manual", json={"document": "passport"}, headers=_auth(account)
        )
        assert r.status_code == 400 and "front" in r.json()["message"]
        for side in ("front", "selfie"):
            assert (await _put(http, account, side, JPEG, "image/jpeg")).status_code == 201
        for payload, field in (
            ({"document": "id_card"}, "issuing_country"),
            ({"document": "id_card", "issuing_country": "France"}, "issuing_country"),
            ({"document": "permis"}, "document"),
            ({"document": []}, "document"),  # unhashable: was a 500
            ({"document": {"a": 1}}, "document"),
            ({"document": "id_card", "issuing_country": ["FR"]}, "issuing_country"),
        ):
            r = await http.post("/v1/verification/manual", json=payload, headers=_auth(account))
            assert r.status_code == 400 and f"'{field}'" in r.json()["message"]
        bad_side = await _put(http, account, "profile", JPEG, "image/jpeg")
        assert bad_side.status_code == 400
        r = await _put(http, unconfirmed, "front", JPEG, "image/jpeg")
        assert r.status_code == 403 and "e-mail" in r.json()["message"]


async def test_reviewer_cannot_decide_their_own_request(node: ServerUnderTest) -> None:
    reviewer = await _reviewer(node)
    async with httpx.AsyncClient(base_url=node.url) as http:
        request = await _submit_id_card(http, reviewer)
        r = await http.post(
            f"/v1/review/requests/{request['id']}/decision",
            json={"decision": "approve"},
            headers=_auth(reviewer),
        )
        assert r.status_code == 403
        me = (await http.get("/v1/me", headers=_auth(reviewer))).json()["user"]
        assert me["verified"] is False


async def test_routes_are_in_the_openapi_document(node: ServerUnderTest) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    for path in (
        "/v1/accounts",
        "/v1/accounts/email/confirm",
        "/v1/accounts/email/resend",
        "/v1/verification/psc/start",
        "/v1/verification/psc/callback",
        "/v1/verification/documents/{side}",
        "/v1/verification/manual",
        "/v1/review/requests",
        "/v1/review/documents/{id}",
        "/v1/review/requests/{id}/decision",
        "/v1/regulator-links",
    ):
        assert path in paths, path


async def test_review_on_postgres(tmp_path: Path, postgres_database: str) -> None:
    """The same path on the PostgreSQL adapter: submit, review, approve, retention."""
    settings = settings_for(
        tmp_path,
        database_url=postgres_database,
        identity_retention_s=0,
        identity_sweep_interval_s=0.2,
    )
    async with running_server(settings) as srv:
        account, body = await signed_up(srv)
        reviewer = await _reviewer(srv)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            request = await _submit_id_card(http, account)
            queue = (await http.get("/v1/review/requests", headers=_auth(reviewer))).json()
            assert [r["id"] for r in queue["requests"]] == [request["id"]]
            decided = await http.post(
                f"/v1/review/requests/{request['id']}/decision",
                json={"decision": "approve"},
                headers=_auth(reviewer),
            )
            assert decided.status_code == 200
            rooms = await http.get("/v1/rooms", headers=_auth(account))
            assert rooms.status_code == 200
        assert await outbox_mails(srv, body["email"], "identity_approved")

        async def swept() -> bool:
            done = await srv.store.identity_request(request["id"])
            return done is not None and done.documents_deleted_at is not None

        await wait_until(swept)
