"""The audit log over REST: administrators query it (newest first, filters, pages);
administrative actions and the queries themselves are recorded; bad parameters are a
400 naming the field."""

from __future__ import annotations

import httpx
import pytest

from clients.python.errors import ServerError
from clients.python.rest import request
from harness import ServerUnderTest, practitioner
from server.audit import record
from storage.audit import AuditQuery


async def test_administrators_query_the_audit_log(server: ServerUnderTest) -> None:
    admin = await practitioner(server.url, server.store)
    await server.store.grant_role(admin.user_id, "admin", 1)
    bob = await practitioner(server.url, server.store)
    for n in range(3):
        await record(server.store, "patient.referral_viewed", bob.user_id, f"ref{n}", n=n)
    await request(
        server.url,
        "PUT",
        f"/v1/admin/users/{bob.user_id}/verified",
        json={"verified": False},
        token=admin.token,
    )

    page = await request(server.url, "GET", "/v1/admin/audit?limit=2", token=admin.token)
    first, second = page["entries"]
    assert first["action"] == "admin.unverified" and first["actor"] == admin.user_id
    assert first["target"] == bob.user_id and second["target"] == "ref2"
    older = await request(
        server.url, "GET", f"/v1/admin/audit?before={second['id']}", token=admin.token
    )
    assert [e["target"] for e in older["entries"]] == ["ref1", "ref0"]
    assert older["entries"][0]["detail"] == {"n": 1}

    patient = await request(server.url, "GET", "/v1/admin/audit?action=patient.", token=admin.token)
    assert len(patient["entries"]) == 3
    by_bob = await request(
        server.url, "GET", f"/v1/admin/audit?actor={bob.user_id}&target=ref0", token=admin.token
    )
    assert [e["detail"] for e in by_bob["entries"]] == [{"n": 0}]
    # Reading the log is itself recorded.
    reads = await request(server.url, "GET", "/v1/admin/audit?action=audit.read", token=admin.token)
    assert len(reads["entries"]) >= 4 and reads["entries"][0]["actor"] == admin.user_id


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("since=-1", "since"),
        ("before=x", "before"),
        ("actor=" + "a" * 65, "actor"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_parameters_are_named(server: ServerUnderTest, query: str, field: str) -> None:
    admin = await practitioner(server.url, server.store)
    await server.store.grant_role(admin.user_id, "admin", 1)
    async with httpx.AsyncClient(base_url=server.url) as http:
        reply = await http.get(
            f"/v1/admin/audit?{query}", headers={"Authorization": f"Bearer {admin.token}"}
        )
    assert reply.status_code == 400 and field in reply.json()["message"]


async def test_only_administrators_read_it(server: ServerUnderTest) -> None:
    reviewer = await practitioner(server.url, server.store)
    await server.store.grant_role(reviewer.user_id, "reviewer", 1)
    with pytest.raises(ServerError) as refused:
        await request(server.url, "GET", "/v1/admin/audit", token=reviewer.token)
    assert refused.value.code == "forbidden"


async def test_reviewers_decisions_and_document_views_are_recorded(
    server: ServerUnderTest,
) -> None:
    from test_verification_manual import _reviewer, _submit_id_card
    from verification_kit import signed_up

    applicant, _ = await signed_up(server)
    reviewer = await _reviewer(server)
    auth = {"Authorization": f"Bearer {reviewer.token}"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        submitted = await _submit_id_card(http, applicant)
        queue = (await http.get("/v1/review/requests", headers=auth)).json()
        [item] = [r for r in queue["requests"] if r["id"] == submitted["id"]]
        document = item["documents"][0]["id"]
        assert (await http.get(f"/v1/review/documents/{document}", headers=auth)).status_code == 200
        decided = await http.post(
            f"/v1/review/requests/{submitted['id']}/decision",
            json={"decision": "approve"},
            headers=auth,
        )
        assert decided.status_code == 200, decided.text
    entries = await server.store.audit_entries(AuditQuery(actor=reviewer.user_id))
    assert [(e.action, e.target) for e in entries] == [
        ("identity.reviewed", applicant.user_id),
        ("identity.document_viewed", applicant.user_id),
    ]
    assert entries[0].detail == {"request": submitted["id"], "state": "approved"}
    assert entries[1].detail == {"document": document}


async def test_reads_of_patient_records_are_recorded(server: ServerUnderTest) -> None:
    from directory_kit import BASE, call, small_directory
    from test_referrals import booking, faure

    await small_directory(server.store)
    doctor = await faure(server)
    me = await practitioner(server.url, server.store)
    booked = await call(me, server, "POST", "/v1/referrals", json=booking())
    appointment = booked.json()["appointment"]["id"]
    assert (await call(me, server, "GET", f"/v1/referrals/{appointment}")).status_code == 200
    assert (await call(me, server, "GET", "/v1/referrals")).status_code == 200
    window = f"from={BASE}&to={BASE + 7 * 86_400_000}"
    assert (await call(doctor, server, "GET", f"/v1/agenda?{window}")).status_code == 200
    reads = await server.store.audit_entries(AuditQuery(action="patient.appointment_read"))
    assert [(e.actor, e.target) for e in reads] == [
        (doctor.user_id, appointment),  # the agenda
        (me.user_id, appointment),  # the list
        (me.user_id, appointment),  # the detail
    ]
