"""The floor: the least a WebSocket broadcast server can do over the same rooms.

Plain ``websockets`` (its own asyncio server, no ASGI), no authentication, no
persistence, no membership check: a client names its rooms in its ``hello``; a
``send`` gets the room's next seq from a counter in memory, is encoded once and
written to every other connection of the room (``websockets.broadcast``), then acked.
It answers the load generator's frames in Confrère's shapes, so the same generator
measures both. What Confrère does beyond this (durable commit, authentication, checks,
the ASGI stack) is what the ratio to the floor prices.

    python -m loadtest.floor --fd N      (or --port P)
"""

from __future__ import annotations

import argparse
import itertools
import socket
from http import HTTPStatus
from typing import Any

import msgpack
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["main"]

_pack = msgpack.Packer(use_bin_type=True).pack


class Floor:
    def __init__(self) -> None:
        self.rooms: dict[str, set[ServerConnection]] = {}
        self.seqs: dict[str, int] = {}
        self.ids = itertools.count(1)

    async def handle(self, ws: ServerConnection) -> None:
        rooms: list[str] = []
        device = f"d{next(self.ids)}"
        try:
            async for data in ws:
                if not isinstance(data, bytes):
                    continue
                f: dict[str, Any] = msgpack.unpackb(data)
                t = f.get("t")
                if t == "send":
                    room = f["room"]
                    if room not in rooms:
                        continue
                    seq = self.seqs[room] = self.seqs.get(room, 0) + 1
                    frame = _pack(
                        {"t": "msg", "room": room, "seq": seq, "device": device, "body": f["body"]}
                    )
                    broadcast((c for c in self.rooms[room] if c is not ws), frame)
                    await ws.send(_pack({"t": "ack", "re": f["id"], "seq": seq}))
                elif t == "hello":
                    rooms = [r for r in f.get("rooms", ()) if isinstance(r, str)]
                    for room in rooms:
                        self.rooms.setdefault(room, set()).add(ws)
                    infos = [{"id": r, "last_seq": self.seqs.get(r, 0)} for r in rooms]
                    await ws.send(_pack({"t": "welcome", "re": f["id"], "rooms": infos}))
                elif t == "sync":
                    reply = {"t": "batch", "re": f["id"], "room": f["room"], "items": []}
                    await ws.send(_pack({**reply, "more": False}))
                else:  # read, typing
                    await ws.send(_pack({"t": "ack", "re": f["id"]}))
        except ConnectionClosed:
            pass
        finally:
            for room in rooms:
                members = self.rooms.get(room)
                if members is not None:
                    members.discard(ws)
                    if not members:
                        del self.rooms[room]


def _health(connection: ServerConnection, request: Request) -> Response | None:
    if request.path in ("/readyz", "/healthz"):
        return connection.respond(HTTPStatus.OK, "ok\n")
    return None


async def _serve(sock: socket.socket) -> None:
    floor = Floor()
    async with serve(
        floor.handle,
        sock=sock,
        compression=None,
        subprotocols=["confrere.v1"],  # type: ignore[list-item]
        process_request=_health,
        ping_interval=20,
        ping_timeout=20,
        max_size=1 << 20,
    ) as server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.floor", description=__doc__)
    parser.add_argument("--fd", type=int)
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server(("127.0.0.1", args.port), reuse_port=True)
    try:
        import uvloop

        uvloop.run(_serve(sock))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
