"""The verification part of the store contract (storage/verification.py), run against
every adapter: one-transaction sign-up, code attempts, single-use PSC flows, requests
owning their documents, decisions once, the retention queries."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from storage import Conflict, NotFound, Store
from storage.outbox import NewNotification
from storage.types import NewUser
from storage.verification import (
    Consent,
    EmailCode,
    IdentityDocument,
    IdentityRequest,
    LinkUnusable,
    NumberTaken,
    RegulatorLink,
)

_n = itertools.count(1)
CONSENTS = [Consent("terms", "v1"), Consent("privacy", "v1")]


def new_user(email: str | None = None, **kw: object) -> NewUser:
    n = next(_n)
    return NewUser(
        email or f"v{n}@example.org",
        "hash",
        "Jeanne",
        f"Nom{n}",
        "69001",
        "Lyon",
        "Cardiologie",
        "salarie",
        **kw,  # type: ignore[arg-type]
    )


def mail(to: str) -> NewNotification:
    return NewNotification("email", to, "email_code", {"code": "123456"})


async def test_create_account_is_one_transaction(store: Store) -> None:
    new = new_user()
    code = EmailCode(new.email, b"h" * 32, 10_000)
    user = await store.create_account(new, CONSENTS, code, [mail(new.email)], 1000)
    assert (await store.user_by_id(user.id)) == user
    assert user.email_confirmed is False and user.profession == "practitioner"
    assert [c for c, _ in await store.consents_of(user.id)] == sorted(
        CONSENTS, key=lambda c: c.document
    )
    assert len(await store.notifications(recipient=new.email)) == 1
    # The same e-mail again: refused, and nothing of it written (no second mail).
    with pytest.raises(Conflict):
        await store.create_account(new_user(new.email), CONSENTS, code, [mail(new.email)], 1000)
    assert len(await store.notifications(recipient=new.email)) == 1


async def test_email_code_attempts_and_single_use(store: Store) -> None:
    new = new_user()
    user = await store.create_account(new, CONSENTS, EmailCode(new.email, b"right", 5000), [], 1000)

    def is_right(c: EmailCode) -> bool:
        return c.code_hash == b"right"

    assert await store.check_email_code(user.id, lambda c: False, 1000, 2) == "wrong"
    assert await store.check_email_code(user.id, is_right, 6000, 2) == "expired"
    assert await store.check_email_code(user.id, is_right, 1000, 2) == "confirmed"
    assert await store.check_email_code(user.id, is_right, 1000, 2) == "none"
    confirmed = await store.user_by_id(user.id)
    assert confirmed is not None and confirmed.email_confirmed

    other = new_user()
    u2 = await store.create_account(other, CONSENTS, EmailCode(other.email, b"x", 5000), [], 1)
    results = await asyncio.gather(
        *(store.check_email_code(u2.id, lambda c: False, 1000, 3) for _ in range(6))
    )
    assert results.count("wrong") == 3 and results.count("exhausted") == 3
    await store.replace_email_code(u2.id, EmailCode(other.email, b"y", 5000), [mail("a@b.c")], 2)
    assert await store.check_email_code(u2.id, lambda c: c.code_hash == b"y", 1000, 3) == (
        "confirmed"
    )


async def test_wrong_codes_lock_the_account_for_its_life(store: Store) -> None:
    """A resend resets the attempts of one code, not the lifetime count of failures."""
    new = new_user()
    user = await store.create_account(new, CONSENTS, EmailCode(new.email, b"c0", 9000), [], 1)
    for n in range(4):
        code = EmailCode(new.email, f"c{n}".encode(), 9000)
        await store.replace_email_code(user.id, code, [], 2)
        for _ in range(3):
            outcome = await store.check_email_code(user.id, lambda c: False, 1000, 3, 10)
            assert outcome == ("wrong" if n * 3 + _ < 10 else "locked")
    right = EmailCode(new.email, b"right", 9000)
    await store.replace_email_code(user.id, right, [], 3)
    is_right = lambda c: c.code_hash == b"right"  # noqa: E731
    assert await store.check_email_code(user.id, is_right, 1000, 3, 10) == "locked"
    confirmed = await store.user_by_id(user.id)
    assert confirmed is not None and not confirmed.email_confirmed


async def test_a_new_sign_up_replaces_an_old_unconfirmed_account(store: Store) -> None:
    squat = new_user()
    old = await store.create_account(squat, CONSENTS, EmailCode(squat.email, b"s", 9000), [], 1000)
    again = new_user(squat.email)
    code = EmailCode(squat.email, b"n", 90_000)
    with pytest.raises(Conflict):  # not old enough yet
        await store.create_account(again, CONSENTS, code, [], 2000, replace_unconfirmed_before=1000)
    user = await store.create_account(
        again, CONSENTS, code, [], 5000, replace_unconfirmed_before=1001
    )
    assert (await store.user_by_email(squat.email)) == user
    set_aside = await store.user_by_id(old.id)
    assert set_aside is not None and set_aside.email == f"replaced+{old.id}@invalid"
    assert await store.check_email_code(old.id, lambda c: True, 3000, 3) == "none"
    # A confirmed account is never replaced.
    assert await store.check_email_code(user.id, lambda c: True, 6000, 3) == "confirmed"
    with pytest.raises(Conflict):
        await store.create_account(
            new_user(squat.email), CONSENTS, code, [], 99_000, replace_unconfirmed_before=98_000
        )


async def test_regulator_link_is_spent_once(store: Store) -> None:
    link = RegulatorLink("link-1", "reg@example.org", "admin", 1, 10_000, None)
    await store.create_regulator_link(link)
    assert await store.regulator_link("link-1") == link
    reg = new_user("reg@example.org", profession="regulator", verified=True)
    user = await store.create_account(reg, CONSENTS, None, [], 100, regulator_link="link-1")
    assert user.verified and "regulator" in await store.roles_of(user.id)
    spent = await store.regulator_link("link-1")
    assert spent is not None and spent.used_at == 100
    with pytest.raises(LinkUnusable):
        await store.create_account(
            new_user("reg2@example.org"), CONSENTS, None, [], 100, regulator_link="link-1"
        )
    assert await store.user_by_email("reg2@example.org") is None


async def test_psc_flow_is_taken_once(store: Store) -> None:
    user = await store.create_account(new_user(), CONSENTS, None, [], 1)
    await store.create_psc_flow(b"s" * 32, user.id, 1000, 2000)
    assert await store.take_psc_flow(b"s" * 32, 1500) == user.id
    assert await store.take_psc_flow(b"s" * 32, 1500) is None
    await store.create_psc_flow(b"t" * 32, user.id, 1000, 2000)
    assert await store.take_psc_flow(b"t" * 32, 2000) is None  # expired
    verified = await store.mark_identity_verified(user.id, "10003456786", [], 3000)
    assert verified.verified and verified.rpps == "10003456786"


def doc(user_id: str, side: str, doc_id: str, at: int = 1000) -> IdentityDocument:
    return IdentityDocument(doc_id, user_id, side, "image/png", 0, "key", None, "uploading", at)


def request(user_id: str, rid: str, at: int = 2000) -> IdentityRequest:
    return IdentityRequest(rid, user_id, "passport", None, "pending", at, None, None, None, None)


async def test_request_lifecycle_and_retention(store: Store) -> None:
    user = await store.create_account(new_user(), CONSENTS, None, [], 1)
    for side, doc_id in (("front", "doc-front-1"), ("selfie", "doc-selfie-1")):
        await store.create_identity_document(doc(user.id, side, doc_id))
        assert await store.complete_identity_document(doc_id, 10) == []
    await store.create_identity_document(doc(user.id, "front", "doc-front-2"))
    assert await store.complete_identity_document("doc-front-2", 11) == ["doc-front-1"]
    assert {d.id for d in await store.staged_documents(user.id)} == {
        "doc-front-2",
        "doc-selfie-1",
    }
    with pytest.raises(NotFound):
        await store.submit_identity_request(request(user.id, "r-0"), ("front", "back", "selfie"))
    assert await store.identity_request("r-0") is None  # rolled back whole

    await store.submit_identity_request(request(user.id, "r-1"), ("front", "selfie"))
    with pytest.raises(Conflict):
        await store.submit_identity_request(request(user.id, "r-2"), ())
    assert [r.id for r, _ in await store.pending_identity_requests(10)] == ["r-1"]
    assert {d.id for d in await store.documents_of_request("r-1")} == {
        "doc-front-2",
        "doc-selfie-1",
    }
    # The replaced photo is due for deletion at once; the request's are not yet.
    assert await store.expired_identity_documents(0, 0, 10) == ["doc-front-1"]
    await store.forget_identity_documents(["doc-front-1"], 3000)

    decided, owner = await store.decide_identity_request(
        "r-1", "approved", "reviewer", None, [mail(user.email)], 5000
    )
    assert decided.state == "approved" and decided.decided_at == 5000 and owner.verified
    with pytest.raises(Conflict):
        await store.decide_identity_request("r-1", "rejected", "reviewer", "x", [], 5001)
    with pytest.raises(NotFound):
        await store.decide_identity_request("nope", "rejected", "reviewer", "x", [], 5001)
    assert await store.expired_identity_documents(5000, 0, 10) == []
    due = sorted(await store.expired_identity_documents(5001, 0, 10))
    assert due == ["doc-front-2", "doc-selfie-1"]
    await store.forget_identity_documents(due, 6000)
    done = await store.identity_request("r-1")
    assert done is not None and done.documents_deleted_at == 6000
    assert await store.identity_requests_of(user.id) == [done]


async def test_sweep_never_takes_a_document_still_wanted(store: Store) -> None:
    user = await store.create_account(new_user(), CONSENTS, None, [], 1)
    await store.create_identity_document(doc(user.id, "front", "doc-up-1", at=1000))
    await store.create_identity_document(doc(user.id, "selfie", "doc-ok-1", at=1000))
    await store.complete_identity_document("doc-ok-1", 5)
    # An upload in progress and a fresh staged photo are not due.
    assert await store.expired_identity_documents(0, 500, 10) == []
    # A day later: the unfinished upload (a dead node's) and the never-submitted photo
    # are due, and the photo is unstaged, so a submission racing the sweep fails whole.
    assert sorted(await store.expired_identity_documents(0, 2000, 10)) == [
        "doc-ok-1",
        "doc-up-1",
    ]
    assert await store.staged_documents(user.id) == []
    with pytest.raises(NotFound):
        await store.submit_identity_request(request(user.id, "r-late"), ("selfie",))


async def test_one_number_verifies_one_account(store: Store) -> None:
    number = "10000000009"
    first = await store.create_account(new_user(rpps=number), CONSENTS, None, [], 1)
    second = await store.create_account(new_user(rpps=number), CONSENTS, None, [], 1)
    bare = await store.create_account(new_user(), CONSENTS, None, [], 1)  # no number
    await store.mark_identity_verified(first.id, None, [], 2)
    with pytest.raises(NumberTaken):
        await store.mark_identity_verified(second.id, None, [], 3)
    with pytest.raises(NumberTaken):  # the card's number, for an account without one
        await store.mark_identity_verified(bare.id, number, [], 3)
    # A reviewer's approval is refused the same way, and nothing of it is kept.
    for side, doc_id in (("front", "n-front"), ("selfie", "n-selfie")):
        await store.create_identity_document(doc(second.id, side, doc_id))
        await store.complete_identity_document(doc_id, 10)
    await store.submit_identity_request(request(second.id, "r-n"), ("front", "selfie"))
    with pytest.raises(NumberTaken):
        await store.decide_identity_request("r-n", "approved", "reviewer", None, [], 5000)
    pending = await store.identity_request("r-n")
    assert pending is not None and pending.state == "pending"
    for user_id in (second.id, bare.id):
        user = await store.user_by_id(user_id)
        assert user is not None and not user.verified
