"""The guest parts of protocol v1: room.invite's ``emails``, room.uninvite, and the
``invited`` list of a RoomInfo."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from protocol import BadFrame, decode_client_frame, decode_server_frame, encode
from protocol.errors import ErrorCode
from protocol.frames import Ack, Invitation, RoomInfo, RoomInvite, RoomUninvite
from protocol.limits import MAX_EMAIL, MAX_EMAILS_PER_INVITE


def raw(frame: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(frame, use_bin_type=True)
    return packed


@pytest.mark.parametrize(
    "frame",
    [
        RoomInvite(1, "room", ("u1",)),
        RoomInvite(2, "room", (), ("guest@example.org",)),
        RoomInvite(3, "room", ("u1", "u2"), ("a@example.org", "b@example.org")),
        RoomUninvite(4, "room", "guest@example.org"),
    ],
)
def test_guest_frames_round_trip(frame: Any) -> None:
    assert decode_client_frame(encode(frame)) == frame


def test_invite_needs_users_or_emails() -> None:
    with pytest.raises(BadFrame) as missing:
        decode_client_frame(raw({"t": "room.invite", "id": 7, "room": "r"}))
    assert missing.value.code is ErrorCode.BAD_FRAME and missing.value.re == 7
    assert "'users'" in str(missing.value)
    # The v1 form without emails is unchanged.
    assert decode_client_frame(raw({"t": "room.invite", "id": 8, "room": "r", "users": []})) == (
        RoomInvite(8, "r", ())
    )


def test_invite_email_limits() -> None:
    too_many = [f"g{i}@example.org" for i in range(MAX_EMAILS_PER_INVITE + 1)]
    with pytest.raises(BadFrame) as many:
        decode_client_frame(raw({"t": "room.invite", "id": 1, "room": "r", "emails": too_many}))
    assert many.value.code is ErrorCode.TOO_LARGE
    longest = "a" * (MAX_EMAIL - len("@example.org")) + "@example.org"
    ok = decode_client_frame(raw({"t": "room.invite", "id": 2, "room": "r", "emails": [longest]}))
    assert isinstance(ok, RoomInvite) and ok.emails == (longest,)
    for bad in (["x" + longest], [""], [42], "a@b.fr"):
        with pytest.raises(BadFrame) as refused:
            decode_client_frame(raw({"t": "room.invite", "id": 3, "room": "r", "emails": bad}))
        assert refused.value.code is ErrorCode.BAD_FRAME and "emails" in str(refused.value)


def test_room_info_lists_invitations() -> None:
    invited = (Invitation("guest@example.org", "u1", 10, 20),)
    info = RoomInfo("r", "group", "open", "owner", 3, 3, name=b"\x01sealed", invited=invited)
    ack = decode_server_frame(encode(Ack(5, room=info)))
    assert isinstance(ack, Ack) and ack.room == info
    without = decode_server_frame(
        encode(Ack(6, room=RoomInfo("r", "group", "open", "owner", 3, 3)))
    )
    assert isinstance(without, Ack) and without.room is not None
    assert without.room.invited is None
