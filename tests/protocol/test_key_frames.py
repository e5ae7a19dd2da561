"""The key-directory frames on the wire: keys.upload, keys.query, keys.report, ack.keys."""

from __future__ import annotations

import msgpack
import pytest

from protocol import BadFrame, decode_client_frame, decode_server_frame, encode
from protocol.errors import ErrorCode
from protocol.frames import Ack, KeysQuery, KeysReport, KeysUpload


@pytest.mark.parametrize(
    "frame",
    [
        KeysUpload(1, b"\x01" + b"b" * 200),
        KeysQuery(2, ("u1", "u2")),
        KeysReport(3, "room", "dev", "unknown_session", b"s" * 16),
        KeysReport(4, "room", "dev", "bad_signature"),
    ],
)
def test_client_frames_round_trip(frame: object) -> None:
    assert decode_client_frame(encode(frame)) == frame  # type: ignore[arg-type]


def test_ack_with_keys_round_trips() -> None:
    ack = Ack(7, keys=(b"one", b"two"))
    assert decode_server_frame(encode(ack)) == ack
    empty = Ack(8, keys=())
    assert decode_server_frame(encode(empty)) == empty


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        ({"t": "keys.upload", "id": 1, "bundle": b"x" * 1025}, ErrorCode.TOO_LARGE),
        ({"t": "keys.upload", "id": 1, "bundle": "text"}, ErrorCode.BAD_FRAME),
        ({"t": "keys.upload", "id": 1}, ErrorCode.BAD_FRAME),
        ({"t": "keys.query", "id": 1, "users": ["u"] * 501}, ErrorCode.TOO_LARGE),
        ({"t": "keys.query", "id": 1, "users": [""]}, ErrorCode.BAD_FRAME),
        (
            {"t": "keys.report", "id": 1, "room": "r", "device": "d", "reason": "x"},
            ErrorCode.BAD_FRAME,
        ),
        (
            {
                "t": "keys.report",
                "id": 1,
                "room": "r",
                "device": "d",
                "reason": "replayed",
                "session": b"s" * 17,
            },
            ErrorCode.TOO_LARGE,
        ),
        ({"t": "keys.query", "id": 1, "users": ["u"], "extra": 1}, ErrorCode.BAD_FRAME),
    ],
)
def test_bad_key_frames_are_refused(wire: dict[str, object], code: ErrorCode) -> None:
    with pytest.raises(BadFrame) as err:
        decode_client_frame(msgpack.packb(wire, use_bin_type=True))
    assert err.value.code == code and err.value.re == 1
