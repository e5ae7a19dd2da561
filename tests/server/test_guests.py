"""Guests invited by e-mail: invitation, promotion on e-mail confirmation (and at
log-in), key forwarding, hooks and signed webhooks, over a real server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from attachment_kit import wait_until
from services_pg import PostgresServer, drop_database, fresh_database
from verification_kit import email_code
from webhook_receiver import WebhookReceiver

from clients.python import Client, Decrypted, EncryptedClient, ServerError, Undecryptable
from clients.python.rest import Account, confirm_email, log_in, sign_up
from harness import (
    PASSWORD,
    ServerUnderTest,
    connected,
    opened,
    practitioner,
    running_server,
    sealed,
    settings_for,
)
from protocol import encode
from protocol.errors import ErrorCode
from protocol.frames import Event, Msg
from server.notifications import SIGNATURE_HEADER, verify
from server.wire import item_frame
from storage.sql.events import event
from storage.types import TimelineItem

SECRET = "a webhook secret shared with the receiver"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def srv(
    request: pytest.FixtureRequest, tmp_path: Path, receiver: WebhookReceiver
) -> AsyncIterator[ServerUnderTest]:
    settings = settings_for(
        tmp_path,
        outbox_log=str(tmp_path / "outbox.jsonl"),
        webhook_urls=(receiver.url,),
        webhook_secret=SECRET,
        outbox_poll_s=0.05,
        outbox_retry_base_ms=50,
        public_url="https://confrere.example.fr",
    )
    if request.param == "sqlite":
        async with running_server(settings) as server:
            yield server
        return
    pg: PostgresServer = request.getfixturevalue("postgres_server")
    url = await fresh_database(pg.url)
    try:
        async with running_server(replace(settings, database_url=url)) as server:
            yield server
    finally:
        await drop_database(pg.url, url)


def sink_lines(srv: ServerUnderTest) -> list[dict[str, Any]]:
    path = Path(srv.settings.outbox_log)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


async def delivered(srv: ServerUnderTest, template: str, recipient: str) -> dict[str, Any]:
    """The first notification of ``template`` to ``recipient`` the log sink received."""
    found: list[dict[str, Any]] = []

    async def arrived() -> bool:
        found[:] = [
            r for r in sink_lines(srv) if r["template"] == template and r["recipient"] == recipient
        ]
        return bool(found)

    await wait_until(arrived, 20.0)
    return found[0]


async def emails(srv: ServerUnderTest, address: str, template: str) -> list[Any]:
    return [n for n in await srv.store.notifications("email", address) if n.template == template]


async def sign_up_as(srv: ServerUnderTest, address: str, *, verified: bool = True) -> Account:
    """Sign up with ``address`` (not confirmed yet), log in; verify the identity
    through the store as an admin would (the messaging needs it)."""
    await sign_up(
        srv.url,
        email=address,
        password=PASSWORD,
        first_name="Inès",
        last_name="Invitée",
        postcode="69003",
        city="Lyon",
        specialty="Médecine générale",
        practice_mode="liberal",
    )
    account = await log_in(srv.url, address, PASSWORD, device_name="guest")
    if verified:
        await srv.store.set_verified(account.user_id, True)
    return account


async def confirm(srv: ServerUnderTest, account: Account) -> None:
    """Confirm the account's address with the code the outbox holds for it."""
    await confirm_email(account, await email_code(srv, account.email.lower()))


async def next_event(client: Client | EncryptedClient, kind: str) -> Event:
    async with asyncio.timeout(20):
        while True:
            item = await client.recv()
            if isinstance(item, Event) and item.kind == kind:
                return item


async def test_guest_is_promoted_and_reads_what_was_sent_before(
    srv: ServerUnderTest, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    alice_account = await practitioner(srv.url, srv.store)
    alice = EncryptedClient(alice_account, tmp_path / "alice.key")
    await alice.connect()
    try:
        room = await alice.create_room("group", [])
        await alice.invite(room.id, emails=["guest@example.org"])
        info = await alice.client.room(room.id)
        assert [i.email for i in info.invited or ()] == ["guest@example.org"]
        assert (info.invited or ())[0].by == alice_account.user_id
        await alice.send_text(room.id, "Bonjour, pouvez-vous voir ce patient ?")
        await alice.send_text(room.id, "Le bilan est en pièce jointe demain.")

        # The invitation e-mail went out through the outbox to the log sink.
        mail = await delivered(srv, "guest_invitation", "guest@example.org")
        assert mail["channel"] == "email"
        assert mail["data"]["signup_url"] == (
            "https://confrere.example.fr/inscription?invitation=1&email=guest%40example.org"
        )
        assert mail["data"]["inviter"].startswith("Prénom")
        assert "Staff cardio" not in json.dumps(mail)  # nothing of the room's content

        guest_account = await sign_up_as(srv, "guest@example.org")
        guest = EncryptedClient(guest_account, tmp_path / "guest.key")
        await guest.connect()  # publishes the device's keys: forwarding can reach it
        try:
            assert guest.client.rooms == {}  # a guest is not a member yet
            await confirm(srv, guest_account)

            # Alice's client sees the promotion and forwards its sender key.
            promoted = await next_event(alice, "member.promoted")
            assert (promoted.user, promoted.by) == (guest_account.user_id, alice_account.user_id)
            # The new member gets the event, syncs the room from its start, decrypts.
            texts: list[str] = []
            promotions: list[Event] = []
            async with asyncio.timeout(30):
                while len(texts) < 2 or not promotions:
                    item = await guest.recv()
                    assert not isinstance(item, Undecryptable), item
                    if isinstance(item, Decrypted):
                        texts.append(item.text)
                    elif isinstance(item, Event) and item.kind == "member.promoted":
                        promotions.append(item)
            assert texts == [
                "Bonjour, pouvez-vous voir ce patient ?",
                "Le bilan est en pièce jointe demain.",
            ]
            assert [p.user for p in promotions] == [guest_account.user_id]
            members = {m.user: m.role for m in (await guest.client.room(room.id)).members or ()}
            assert members == {alice_account.user_id: "owner", guest_account.user_id: "member"}
            assert (await alice.client.room(room.id)).invited is None  # no longer a guest
        finally:
            await guest.close()
    finally:
        await alice.close()

    # A real HTTP receiver got one correctly signed promotion event.
    [hook] = await receiver.wait_for(1)
    assert verify(
        SECRET.encode(), hook.headers[SIGNATURE_HEADER.lower()], hook.body, int(time.time())
    )
    event = json.loads(hook.body)
    assert event["type"] == "guest.promoted" == hook.headers["confrere-event"]
    assert event["data"]["user"] == guest_account.user_id
    assert event["data"]["email"] == "guest@example.org"
    assert [r["room"] for r in event["data"]["rooms"]] == [room.id]


async def test_revoked_invitation_is_not_promoted(srv: ServerUnderTest) -> None:
    alice_account = await practitioner(srv.url, srv.store)
    alice = await connected(alice_account)
    try:
        room = await alice.create_room("group", [])
        await alice.invite(room.id, emails=["revoked@example.org"])
        await alice.uninvite(room.id, "Revoked@Example.org")
        assert (await alice.room(room.id)).invited is None
        with pytest.raises(ServerError) as again:
            await alice.uninvite(room.id, "revoked@example.org")
        assert again.value.code is ErrorCode.NOT_FOUND
        guest = await sign_up_as(srv, "revoked@example.org")
        await confirm(srv, guest)
        assert await srv.store.rooms_of(guest.user_id) == []
        kinds = [i.kind for i in await srv.store.timeline(room.id, 0, 10)]
        assert kinds == ["member.joined", "guest.invited"]  # never promoted
    finally:
        await alice.close()


async def test_a_second_invitation_sends_no_second_email(srv: ServerUnderTest) -> None:
    alice = await connected(await practitioner(srv.url, srv.store))
    try:
        room = await alice.create_room("group", [])
        other = await alice.create_room("patient_case", [])
        seq = await alice.invite(room.id, emails=["twice@example.org"])
        assert seq == 2  # the guest.invited event (no address in it)
        [_opened, event] = await srv.store.timeline(room.id, 0, 10)
        assert (event.kind, event.seq) == ("guest.invited", seq)
        assert "twice" not in json.dumps(event.meta)
        again = await alice.invite(room.id, emails=["twice@example.org", "TWICE@example.org"])
        assert again == seq  # still pending: no second event
        assert len(await emails(srv, "twice@example.org", "guest_invitation")) == 1
        assert len((await alice.room(room.id)).invited or ()) == 1
        # Another room is another invitation, with its own e-mail.
        await alice.invite(other.id, emails=["twice@example.org"])
        assert len(await emails(srv, "twice@example.org", "guest_invitation")) == 2
        guest = await sign_up_as(srv, "twice@example.org")
        await confirm(srv, guest)
        rooms = {r.id for r, _ in await srv.store.rooms_of(guest.user_id)}
        assert rooms == {room.id, other.id}
    finally:
        await alice.close()


async def test_addresses_match_whatever_their_case(srv: ServerUnderTest) -> None:
    alice = await connected(await practitioner(srv.url, srv.store))
    try:
        room = await alice.create_room("group", [])
        await alice.invite(room.id, emails=["  Dr.Casse@Example.ORG "])
        [invited] = (await alice.room(room.id)).invited or ()
        assert invited.email == "dr.casse@example.org"
        guest = await sign_up_as(srv, "DR.CASSE@example.org")
        await confirm(srv, guest)
        assert await srv.store.membership(room.id, guest.user_id) is not None
    finally:
        await alice.close()


async def test_invitations_refused(srv: ServerUnderTest) -> None:
    alice_account = await practitioner(srv.url, srv.store)
    bob_account = await practitioner(srv.url, srv.store)
    alice, bob = await connected(alice_account), await connected(bob_account)
    try:
        direct = await alice.create_room("direct", [bob_account.user_id])
        group = await alice.create_room("group", [bob_account.user_id])
        refusals = [
            (alice, direct.id, ["x@example.org"], ErrorCode.FORBIDDEN),  # direct room
            (bob, group.id, ["x@example.org"], ErrorCode.FORBIDDEN),  # plain member
            (alice, group.id, ["not an address"], ErrorCode.BAD_FRAME),
            (alice, "no-such-room", ["x@example.org"], ErrorCode.FORBIDDEN),
        ]
        for client, room_id, addresses, code in refusals:
            with pytest.raises(ServerError) as refused:
                await client.invite(room_id, emails=addresses)
            assert refused.value.code is code, (room_id, addresses)
        assert "emails" in str(refused.value) or code is not ErrorCode.BAD_FRAME
        assert await srv.store.notifications("email", "x@example.org") == []
    finally:
        await alice.close()
        await bob.close()


async def test_promotion_happens_at_log_in_if_it_did_not_at_confirmation(
    srv: ServerUnderTest,
) -> None:
    """A crash between the confirmation's commit and the promotion loses nothing."""
    alice = await connected(await practitioner(srv.url, srv.store))
    try:
        room = await alice.create_room("group", [])
        guest = await sign_up_as(srv, "crash@example.org")
        await alice.invite(room.id, emails=["crash@example.org"])  # not confirmed: a guest
        # The code is accepted, but the process "dies" before the hook runs.
        outcome = await srv.store.check_email_code(
            guest.user_id, lambda _: True, int(time.time() * 1000), 5
        )
        assert outcome == "confirmed"
        assert await srv.store.membership(room.id, guest.user_id) is None
        await log_in(srv.url, "crash@example.org", PASSWORD, device_name="again")
        assert await srv.store.membership(room.id, guest.user_id) is not None
        await log_in(srv.url, "crash@example.org", PASSWORD, device_name="and again")
        kinds = [i.kind for i in await srv.store.timeline(room.id, 0, 10)]
        assert kinds == ["member.joined", "guest.invited", "member.promoted"]  # promoted once
    finally:
        await alice.close()


async def test_a_confirmed_account_invited_by_email_joins_at_once(srv: ServerUnderTest) -> None:
    alice = await connected(await practitioner(srv.url, srv.store))
    try:
        member = await sign_up_as(srv, "known@example.org")
        await confirm(srv, member)
        room = await alice.create_room("group", [])
        seq = await alice.invite(room.id, emails=["Known@example.org"])
        [_opened, joined] = await srv.store.timeline(room.id, 0, 10)
        assert joined.seq == seq and joined.kind == "member.joined"
        assert joined.meta["users"] == [member.user_id]
        assert await emails(srv, "known@example.org", "guest_invitation") == []
        assert await srv.store.guests_by_email("known@example.org") == []
    finally:
        await alice.close()


async def test_a_guest_whose_device_comes_later_gets_the_keys_on_request(
    srv: ServerUnderTest, tmp_path: Path
) -> None:
    """At promotion the new member has no published device yet, so there is nothing to
    forward to; when its device shows up and cannot read the history, it asks, and a
    member's client answers because that user was promoted in the room."""
    alice_account = await practitioner(srv.url, srv.store)
    alice = EncryptedClient(alice_account, tmp_path / "alice.key")
    await alice.connect()
    pump: asyncio.Task[None] | None = None
    try:
        room = await alice.create_room("group", [])
        await alice.invite(room.id, emails=["later@example.org"])
        await alice.send_text(room.id, "avant la promotion")
        guest_account = await sign_up_as(srv, "later@example.org")
        await confirm(srv, guest_account)
        await next_event(alice, "member.promoted")
        assert await alice.forward_keys(room.id, guest_account.user_id) == 0  # no device yet

        async def keep_reading() -> None:  # Alice's app, reading: answers key requests
            while True:
                await alice.recv()

        pump = asyncio.create_task(keep_reading())
        guest = EncryptedClient(guest_account, tmp_path / "later.key", key_wait=8.0)
        await guest.connect()
        try:
            async with asyncio.timeout(30):
                while True:
                    item = await guest.recv()
                    assert not isinstance(item, Undecryptable), item
                    if isinstance(item, Decrypted):
                        break
            assert item.text == "avant la promotion"
        finally:
            await guest.close()
    finally:
        if pump is not None:
            pump.cancel()
        await alice.close()


async def test_invitation_emails_are_rate_limited_per_inviter(srv: ServerUnderTest) -> None:
    alice = await connected(await practitioner(srv.url, srv.store))
    try:
        room = await alice.create_room("group", [])
        for batch in range(2):  # 100 e-mails: the burst
            await alice.invite(room.id, emails=[f"g{batch}-{i}@example.org" for i in range(50)])
        with pytest.raises(ServerError) as refused:
            await alice.invite(room.id, emails=["one.more@example.org"])
        assert refused.value.code is ErrorCode.RATE_LIMITED and refused.value.retry_after
        assert await srv.store.guests_by_email("one.more@example.org") == []
        # An invitation by user id sends no e-mail: it goes through.
        bob = await practitioner(srv.url, srv.store)
        assert await alice.invite(room.id, [bob.user_id]) > 1
    finally:
        await alice.close()


async def test_promotion_reaches_members_on_other_nodes(
    tmp_path: Path, redis_url: str, postgres_database: str
) -> None:
    """Two nodes on one Redis and one PostgreSQL: the guest confirms on one node, the
    inviter, connected to the other, receives member.promoted through the broker."""
    settings = settings_for(
        tmp_path,
        database_url=postgres_database,
        broker_url=redis_url,
        server_key=base64.b64encode(os.urandom(32)).decode(),
        outbox_log=str(tmp_path / "outbox.jsonl"),
    )
    async with running_server(settings) as one, running_server(settings) as two:
        alice = await connected(await practitioner(one.url, one.store))
        try:
            room = await alice.create_room("group", [])
            await alice.invite(room.id, emails=["far@example.org"])
            guest_account = await sign_up_as(two, "far@example.org")
            guest = await connected(guest_account)  # on node two
            try:
                await confirm(two, guest_account)
                seen = await next_event(alice, "member.promoted")
                assert seen.user == guest_account.user_id
                mine = await next_event(guest, "member.promoted")  # attached on node two
                assert mine.seq == seen.seq
                await alice.send(room.id, sealed(b"ciphertext"))
                async with asyncio.timeout(20):
                    while not isinstance(item := await guest.recv(), Msg):
                        pass
                assert opened(item.body) == b"ciphertext"
            finally:
                await guest.close()
        finally:
            await alice.close()


async def test_a_promoted_guest_cannot_read_what_was_sent_before_the_invitation(
    srv: ServerUnderTest, tmp_path: Path
) -> None:
    """The invitation is a timeline event on which members start a new sender key;
    the promotion names it (``upto``), and only keys made after it are forwarded, even
    on request."""
    alice_account = await practitioner(srv.url, srv.store)
    alice = EncryptedClient(alice_account, tmp_path / "alice.key")
    await alice.connect()
    pump: asyncio.Task[None] | None = None
    try:
        room = await alice.create_room("group", [])
        before = await alice.send_text(room.id, "avant l'invitation")
        invited_seq = await alice.invite(room.id, emails=["after@example.org"])
        after = await alice.send_text(room.id, "après l'invitation")
        guest_account = await sign_up_as(srv, "after@example.org")
        guest = EncryptedClient(guest_account, tmp_path / "after.key", key_wait=3.0)
        await guest.connect()
        try:
            await confirm(srv, guest_account)
            promoted = await next_event(alice, "member.promoted")
            assert promoted.upto == invited_seq

            async def keep_reading() -> None:  # answers key requests, as an app would
                while True:
                    await alice.recv()

            pump = asyncio.create_task(keep_reading())
            seen: dict[int, Decrypted | Undecryptable] = {}
            async with asyncio.timeout(30):
                while len(seen) < 2:
                    item = await guest.recv()
                    if isinstance(item, Decrypted | Undecryptable):
                        seen[item.seq] = item
            assert isinstance(seen[after], Decrypted) and seen[after].text == "après l'invitation"
            assert isinstance(seen[before], Undecryptable)
        finally:
            await guest.close()
    finally:
        if pump is not None:
            pump.cancel()
        await alice.close()


async def test_a_promotion_without_an_invitation_is_ignored(
    srv: ServerUnderTest, tmp_path: Path
) -> None:
    """A server forging ``member.promoted`` for an account of its own (no
    ``guest.invited`` event before it) gets no sender key."""
    alice_account = await practitioner(srv.url, srv.store)
    mallory_account = await practitioner(srv.url, srv.store)
    alice = EncryptedClient(alice_account, tmp_path / "alice.key")
    mallory = EncryptedClient(mallory_account, tmp_path / "mallory.key", key_wait=2.0)
    await alice.connect()
    await mallory.connect()
    try:
        room = await alice.create_room("group", [])
        await alice.send_text(room.id, "secret")
        # The forgery: a membership and a promotion event, straight into the store.
        item = await srv.store.add_members(
            room.id, [mallory_account.user_id], alice_account.user_id, int(time.time() * 1000)
        )
        assert item is not None
        hub = srv.services.hub
        await hub.publish_item(
            room.id, encode(item_frame(item)), item.seq, join=(mallory_account.user_id,)
        )
        promoted = await _forge_promotion(srv, room.id, mallory_account.user_id, item.seq)
        await srv.services.hub.publish_item(room.id, encode(item_frame(promoted)), promoted.seq)
        seen = await next_event(alice, "member.promoted")
        assert seen.user == mallory_account.user_id
        assert await alice.forward_keys(room.id, mallory_account.user_id) == 0
        async with asyncio.timeout(20):
            while True:
                got = await mallory.recv()
                if isinstance(got, Decrypted | Undecryptable):
                    break
        assert isinstance(got, Undecryptable)  # the message before: no key came
    finally:
        await mallory.close()
        await alice.close()


async def _forge_promotion(
    srv: ServerUnderTest, room_id: str, user_id: str, upto: int
) -> TimelineItem:
    """A ``member.promoted`` event naming a seq that is no invitation."""
    now = int(time.time() * 1000)
    store: Any = srv.store

    async def tx(c: Any) -> TimelineItem:
        return await event(c, room_id, "member.promoted", user_id, now, user=user_id, upto=upto)

    return cast(TimelineItem, await store.db.run("forge", tx, "transaction"))


async def test_an_invitation_by_a_demoted_admin_is_not_promoted(srv: ServerUnderTest) -> None:
    alice_account = await practitioner(srv.url, srv.store)
    bob_account = await practitioner(srv.url, srv.store)
    alice = await connected(alice_account)
    bob = await connected(bob_account)
    try:
        room = await alice.create_room("group", [bob_account.user_id])
        await alice.set_role(room.id, bob_account.user_id, "admin")
        await bob.invite(room.id, emails=["demoted@example.org"])
        await alice.set_role(room.id, bob_account.user_id, "member")
        guest = await sign_up_as(srv, "demoted@example.org")
        await confirm(srv, guest)
        assert await srv.store.membership(room.id, guest.user_id) is None
        [invitation] = await srv.store.guests_by_email("demoted@example.org")
        assert invitation.state == "revoked"
    finally:
        await alice.close()
        await bob.close()
