"""send.att: the optional list of attachment ids a message refers to (SPEC.md 4.2)."""

from __future__ import annotations

import msgpack
import pytest

from harness import sealed
from protocol import BadFrame, decode_client_frame, encode
from protocol.errors import ErrorCode
from protocol.frames import Send

BODY = sealed(b"x")


def frame(**fields: object) -> bytes:
    return msgpack.packb({"t": "send", "id": 1, "room": "r1", "cid": "c1", "body": BODY, **fields})


def test_att_round_trips_and_is_omitted_when_absent() -> None:
    with_att = Send(1, "r1", "c1", BODY, ("AbCdEfGh12345678", "ZyXwVuTs87654321"))
    assert decode_client_frame(encode(with_att)) == with_att
    plain = Send(1, "r1", "c1", BODY)
    assert "att" not in msgpack.unpackb(encode(plain))
    # The byte-exact encoding of SPEC.md appendix A is unchanged.
    assert encode(Send(2, "r1", "c1", b"\x01\x02")).hex() == (
        "85a174a473656e64a2696402a4726f6f6da27231a3636964a26331a4626f6479c4020102"
    )
    assert decode_client_frame(frame(att=[])) == plain  # empty: as if absent


@pytest.mark.parametrize(
    ("att", "code"),
    [
        ([f"att{i:05d}" for i in range(11)], ErrorCode.TOO_LARGE),
        ("AbCdEfGh12345678", ErrorCode.BAD_FRAME),
        ([""], ErrorCode.BAD_FRAME),
        (["x" * 65], ErrorCode.BAD_FRAME),
        ([b"bytes"], ErrorCode.BAD_FRAME),
    ],
)
def test_att_limits(att: object, code: ErrorCode) -> None:
    with pytest.raises(BadFrame) as error:
        decode_client_frame(frame(att=att))
    assert error.value.code == code
