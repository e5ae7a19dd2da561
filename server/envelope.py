"""What nodes publish to each other on the broker: small msgpack maps.

The client frame inside is encoded once, by the node that committed it, and every node
writes those same bytes to its local sockets (encode once, send many).

Kinds, with the channel they travel on:

- ``item`` (room channel): a timeline item, at ``seq``; ``skip`` is the sending device
  (it got an ack), ``join`` the users it adds (they get it on their user channel
  instead), ``leave`` the user it removes (delivered to them too, then detached).
- ``eph`` (room channel): an ephemeral event (typing, receipt); ``skip`` as above.
- ``joined`` (user channel): the user was added to ``room``: attach their connections.
- ``device`` (user channel): a to-device frame for one ``device`` of the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

__all__ = ["Envelope", "decode_envelope"]


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: str
    frame: bytes
    room: str | None = None
    skip: str | None = None
    join: tuple[str, ...] | None = None
    leave: str | None = None
    device: str | None = None
    seq: int | None = None
    again: bool = False  # a retried cid's item, fanned out once more

    def encode(self) -> bytes:
        data: dict[str, Any] = {"k": self.kind, "f": self.frame}
        if self.room is not None:
            data["r"] = self.room
        if self.skip is not None:
            data["s"] = self.skip
        if self.join is not None:
            data["j"] = list(self.join)
        if self.leave is not None:
            data["l"] = self.leave
        if self.device is not None:
            data["d"] = self.device
        if self.seq is not None:
            data["q"] = self.seq
        if self.again:
            data["a"] = True
        return msgpack.packb(data, use_bin_type=True)


def decode_envelope(data: bytes) -> Envelope:
    """Decode a publication from another node (trusted, but checked for shape)."""
    d = msgpack.unpackb(data, raw=False)
    join = d.get("j")
    return Envelope(
        kind=d["k"],
        frame=d["f"],
        room=d.get("r"),
        skip=d.get("s"),
        join=tuple(join) if join is not None else None,
        leave=d.get("l"),
        device=d.get("d"),
        seq=d.get("q"),
        again=bool(d.get("a", False)),
    )
