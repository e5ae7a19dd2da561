"""The callers of the authorization matrix, on a live node, around one room.

Caller kinds (``KINDS``): anonymous (no session), unverified (a session, identity not
verified), guest (an address invited to the room that signed up and has not confirmed
it: not a member yet), member, room_admin (the room's owner), non_member (verified, not
in the room), and the platform roles reviewer, regulator and admin (verified, not in the
room: a role gives no access to rooms).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import httpx
from raw_ws import raw_connection
from verification_kit import email_code

from clients.python import Account
from harness import ServerUnderTest, practitioner, sealed
from protocol.frames import Ack, RoomCreate, RoomInvite, Send

KINDS = (
    "anonymous",
    "unverified",
    "guest",
    "member",
    "room_admin",
    "non_member",
    "reviewer",
    "regulator",
    "admin",
)
_requests = itertools.count(100)


@dataclass
class World:
    server: ServerUnderTest
    accounts: dict[str, Account]  # every kind but anonymous
    bystander: Account  # a second plain member: the target of remove/role
    outsider: Account  # verified, in no room: the target of invite
    room: str = ""
    message: int = 0  # the seq of the bystander's message in the room

    def account(self, kind: str) -> Account | None:
        return self.accounts.get(kind)

    async def fresh_room(self) -> str:
        """A new group: room_admin owns it, member and bystander are members, guest's
        address is invited, and the bystander has sent a message."""
        owner = self.accounts["room_admin"]
        members = (self.accounts["member"].user_id, self.bystander.user_id)
        async with raw_connection(self.server.url, owner) as ws:
            rid = next(_requests)
            await ws.send(RoomCreate(rid, "group", members))
            ack = await ws.reply_to(rid)
            assert isinstance(ack, Ack) and ack.room is not None, ack
            rid = next(_requests)
            guest = self.accounts["guest"].email
            await ws.send(RoomInvite(rid, ack.room.id, (), (guest,)))
            invited = await ws.reply_to(rid)
            assert isinstance(invited, Ack), invited
        async with raw_connection(self.server.url, self.bystander) as ws:
            rid = next(_requests)
            await ws.send(Send(rid, ack.room.id, f"authz-{rid}", sealed(b"hello")))
            sent = await ws.reply_to(rid)
            assert isinstance(sent, Ack) and sent.seq is not None, sent
        self.room, self.message = ack.room.id, sent.seq
        return self.room


async def _confirm_email(server: ServerUnderTest, account: Account) -> None:
    code = await email_code(server, account.email)
    async with httpx.AsyncClient(base_url=server.url) as http:
        confirmed = await http.post(
            "/v1/accounts/email/confirm",
            json={"code": code},
            headers={"Authorization": f"Bearer {account.token}"},
        )
    assert confirmed.status_code == 200, confirmed.text


async def make_world(server: ServerUnderTest) -> World:
    store = server.store
    accounts: dict[str, Account] = {}
    for kind in KINDS[1:]:
        verified = kind not in ("unverified", "guest")
        accounts[kind] = account = await practitioner(server.url, store, verified=verified)
        if kind != "guest":  # a guest has not confirmed its address (not promoted yet)
            await _confirm_email(server, account)
    for role in ("reviewer", "regulator", "admin"):
        await store.grant_role(accounts[role].user_id, role, 1)
    bystander = await practitioner(server.url, store)
    outsider = await practitioner(server.url, store)
    return World(server, accounts, bystander, outsider)
