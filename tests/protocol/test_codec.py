"""Frames round-trip, and every decoder turns any input into a frame or a BadFrame."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import sealed
from protocol import BadFrame, decode_client_frame, decode_server_frame, encode
from protocol.crypto.envelope import wrap_header
from protocol.errors import ErrorCode
from protocol.frames import (
    Ack,
    Batch,
    Error,
    Event,
    Hello,
    Member,
    Msg,
    MsgDelete,
    Ping,
    Pong,
    Read,
    RoomCreate,
    RoomGet,
    RoomInfo,
    RoomInvite,
    RoomLeave,
    RoomRemove,
    RoomRole,
    RoomSettings,
    RoomUpdate,
    Send,
    Sync,
    ToDevice,
    ToDeviceAck,
    ToDeviceMsg,
    Typing,
    Welcome,
)
from protocol.limits import MAX_BODY, MAX_MEMBERS_PER_REQUEST

CLIENT_EXAMPLES = [
    Hello(1, "tok", "dev"),
    Send(2, "room", "cid", sealed(b"\x00cipher")),
    Send(2, "room", "cid", sealed(b"\x00cipher"), edits=12),
    MsgDelete(17, "room", 12),
    RoomSettings(18, "room", notify="mentions", pinned=True),
    Send(19, "room", "cid", sealed(b"\x00cipher"), mentions=("u1", "u2")),
    Sync(3, "room", 10, 50),
    Read(4, "room", 7),
    Typing(5, "room", True),
    ToDevice(6, "user", "dev", b"\x01" + bytes(24) + b"key" + bytes(16)),
    ToDeviceAck(7, (1, 2, 3)),
    RoomCreate(8, "group", ("u1", "u2")),
    RoomCreate(9, "patient_case", ("u1",)),
    RoomGet(10, "room"),
    RoomInvite(11, "room", ("u3",)),
    RoomLeave(12, "room"),
    RoomRemove(13, "room", "u3"),
    RoomUpdate(14, "room", name=wrap_header("dev", sealed(b"New")), status="closed"),
    RoomRole(15, "room", "u2", "admin"),
    Ping(16),
]

ROOM = RoomInfo("r", "group", "open", "owner", 5, 2, b"\x01sealed", None, (Member("u1", "owner"),))
SERVER_EXAMPLES = [
    Welcome(1, "u", "d", True, (ROOM,)),
    Ack(2, seq=5, ts=123),
    Ack(3, room=ROOM),
    Msg("r", 5, "u", "d", "cid", 123, b"body"),
    Msg("r", 6, "u", "d", "cid2", 124, b"body", edits=5),
    Msg("r", 5, "u", "d", "cid", 123, None, deleted_by="u", deleted_at=130),
    Event("msg.deleted", "r", 7, 130, by="u", target=5),
    Event("room.settings", "r", ts=131, notify="none", archived=True, pinned=False, unread=True),
    Ack(8, room=RoomInfo("r", "group", "open", "member", 5, 2, notify="mentions", pinned=True)),
    Batch(
        4,
        "r",
        (
            Msg("r", 1, "u", "d", "c", 1, b"x"),
            Event("member.joined", "r", 2, 3, users=("u",), by="u"),
        ),
        True,
    ),
    Event("typing", "r", user="u", on=True),
    ToDeviceMsg(9, "u", "d", 5, b"k"),
    Error(ErrorCode.FORBIDDEN, "no", 5, 1.5),
    Pong(6),
]


@pytest.mark.parametrize("frame", CLIENT_EXAMPLES, ids=lambda f: type(f).__name__)
def test_client_frames_round_trip(frame: Any) -> None:
    assert decode_client_frame(encode(frame)) == frame


@pytest.mark.parametrize("frame", SERVER_EXAMPLES, ids=lambda f: type(f).__name__)
def test_server_frames_round_trip(frame: Any) -> None:
    assert decode_server_frame(encode(frame)) == frame


def packed(**fields: Any) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("data", "code", "fragment"),
    [
        (b"", ErrorCode.BAD_FRAME, "msgpack"),
        (b"\xc1", ErrorCode.BAD_FRAME, "msgpack"),
        (packed(t="ping", id=1) + b"\x01", ErrorCode.BAD_FRAME, "trailing"),
        (msgpack.packb([1, 2]), ErrorCode.BAD_FRAME, "map"),
        (packed(id=1), ErrorCode.BAD_FRAME, "'t'"),
        (packed(t="teleport", id=1), ErrorCode.BAD_FRAME, "unknown frame type"),
        (packed(t="ping"), ErrorCode.BAD_FRAME, "'id'"),
        (packed(t="ping", id=-1), ErrorCode.BAD_FRAME, "'id'"),
        (packed(t="ping", id=1, x=1), ErrorCode.BAD_FRAME, "unknown field(s): x"),
        (packed(t="send", id=1, room="r", cid="c"), ErrorCode.BAD_FRAME, "missing field 'body'"),
        (
            packed(t="send", id=1, room="", cid="c", body=b""),
            ErrorCode.BAD_FRAME,
            "'room' must not be empty",
        ),
        (
            packed(t="send", id=1, room="r" * 65, cid="c", body=b""),
            ErrorCode.BAD_FRAME,
            "longer than 64",
        ),
        (
            packed(t="send", id=1, room="r", cid="c", body=b"x" * (MAX_BODY + 1)),
            ErrorCode.TOO_LARGE,
            "'body'",
        ),
        (
            packed(t="sync", id=1, room="r", after=True),
            ErrorCode.BAD_FRAME,
            "'after' must be an integer",
        ),
        (packed(t="sync", id=1, room="r", after=0, limit=501), ErrorCode.BAD_FRAME, "'limit'"),
        (packed(t="typing", id=1, room="r", on=1), ErrorCode.BAD_FRAME, "'on' must be a boolean"),
        (packed(t="room.create", id=1, kind="chat", members=[]), ErrorCode.BAD_FRAME, "'kind'"),
        (
            packed(
                t="room.create", id=1, kind="group", members=["u"] * (MAX_MEMBERS_PER_REQUEST + 1)
            ),
            ErrorCode.TOO_LARGE,
            "'members'",
        ),
        (
            packed(t="room.create", id=1, kind="group", members=[1]),
            ErrorCode.BAD_FRAME,
            "'members'",
        ),
        (packed(t="to_device.ack", id=1, tids=[]), ErrorCode.BAD_FRAME, "'tids'"),
        (packed(t="msg.delete", id=1, room="r"), ErrorCode.BAD_FRAME, "missing field 'seq'"),
        (packed(t="msg.delete", id=1, room="r", seq=0), ErrorCode.BAD_FRAME, "'seq'"),
        (packed(t="room.settings", id=1, room="r"), ErrorCode.BAD_FRAME, "nothing to change"),
        (packed(t="room.settings", id=1, room="r", notify="loud"), ErrorCode.BAD_FRAME, "'notify'"),
        (packed(t="room.settings", id=1, room="r", pinned=1), ErrorCode.BAD_FRAME, "'pinned'"),
        (
            packed(t="send", id=1, room="r", cid="c", body=sealed(b"x"), mentions=["u"] * 51),
            ErrorCode.TOO_LARGE,
            "'mentions'",
        ),
        (
            packed(t="send", id=1, room="r", cid="c", body=sealed(b"x"), edits=0),
            ErrorCode.BAD_FRAME,
            "'edits'",
        ),
        (
            packed(t="send", id=1, room="r", cid="c", body=sealed(b"x"), edits="2"),
            ErrorCode.BAD_FRAME,
            "'edits' must be an integer",
        ),
        (packed(t="to_device.ack", id=1, tids=[0]), ErrorCode.BAD_FRAME, "'tids'"),
        (
            packed(t="room.role", id=1, room="r", user="u", role="king"),
            ErrorCode.BAD_FRAME,
            "'role'",
        ),
        (msgpack.packb({1: 2, "t": "ping", "id": 1}), ErrorCode.BAD_FRAME, "msgpack"),  # int key
    ],
)
def test_bad_client_frames_are_rejected_precisely(
    data: bytes, code: ErrorCode, fragment: str
) -> None:
    with pytest.raises(BadFrame) as info:
        decode_client_frame(data)
    assert info.value.code == code
    assert fragment in info.value.message


def test_error_names_the_request_it_answers() -> None:
    with pytest.raises(BadFrame) as info:
        decode_client_frame(packed(t="send", id=42, room="r"))
    assert info.value.re == 42


def test_ext_types_are_rejected() -> None:
    data = msgpack.packb({"t": "ping", "id": msgpack.ExtType(5, b"abc")})
    with pytest.raises(BadFrame):
        decode_client_frame(data)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=20,
)
frame_like = st.fixed_dictionaries(
    {
        "t": st.sampled_from(
            [
                "hello",
                "send",
                "sync",
                "read",
                "typing",
                "to_device",
                "to_device.ack",
                "room.create",
                "room.get",
                "room.invite",
                "room.leave",
                "room.remove",
                "room.update",
                "room.role",
                "ping",
                "x",
            ]
        )
    },
    optional={
        "id": st.integers(-5, 2**64 - 1) | st.text(max_size=3),
        "room": msgpack_values,
        "cid": msgpack_values,
        "body": msgpack_values,
        "members": msgpack_values,
        "kind": msgpack_values,
        "after": msgpack_values,
        "tids": msgpack_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_bad_frame(data: bytes) -> None:
    with contextlib.suppress(BadFrame):
        decode_client_frame(data)


@settings(max_examples=600, deadline=None)
@given(st.one_of(msgpack_values, frame_like))
def test_arbitrary_msgpack_values_never_raise_anything_but_bad_frame(value: Any) -> None:
    try:
        data = msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError):
        return
    try:
        frame = decode_client_frame(data)
    except BadFrame:
        return
    assert decode_client_frame(encode(frame)) == frame  # whatever parses re-encodes


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | msgpack_values.map(lambda v: msgpack.packb(v, use_bin_type=True)))
def test_server_frame_decoder_never_raises_anything_but_bad_frame(data: bytes) -> None:
    with contextlib.suppress(BadFrame):
        decode_server_frame(data)


def test_request_id_0_is_refused_it_is_the_unsolicited_welcomes() -> None:
    with pytest.raises(BadFrame) as refused:
        decode_client_frame(msgpack.packb({"t": "ping", "id": 0}))
    assert refused.value.re is None and "between 1 and" in refused.value.message
    assert decode_client_frame(msgpack.packb({"t": "ping", "id": 1})) == Ping(1)


@pytest.mark.parametrize("text", ["a\x00b", "\x1b[0m", "tab\there", "\x85", "\x7f"])
def test_text_fields_refuse_control_characters(text: str) -> None:
    frame = {"t": "typing", "id": 3, "room": text, "on": True}
    with pytest.raises(BadFrame) as refused:
        decode_client_frame(msgpack.packb(frame))
    assert refused.value.re == 3 and "'room' must not contain control" in refused.value.message
    invite = {"t": "room.invite", "id": 4, "room": "r", "users": [text]}
    with pytest.raises(BadFrame):
        decode_client_frame(msgpack.packb(invite))
