"""Confrère wire protocol v1: pure, sans-I/O (bytes in, frames out; frames in, bytes out).

Imports nothing else of the project and does no I/O. See SPEC.md beside this file.
Both ends of a connection are state machines here: :class:`ServerSession` (one
connection, as a node sees it) and :class:`ClientSession` (one device's connection,
kept across reconnects); :mod:`protocol.reconnect` is the close-code policy.
"""

from .client_session import ClientSession, ClientStatus, DeviceState
from .codec import decode_client_frame, decode_server_frame, encode, pack
from .errors import (
    BadFrame,
    CloseCode,
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from .limits import SUBPROTOCOL
from .server_session import Outcome, ServerSession, State

__all__ = [
    "SUBPROTOCOL",
    "BadFrame",
    "ClientSession",
    "ClientStatus",
    "CloseCode",
    "DeviceState",
    "ErrorCode",
    "LocalProtocolError",
    "Outcome",
    "ProtocolError",
    "RemoteProtocolError",
    "ServerSession",
    "State",
    "decode_client_frame",
    "decode_server_frame",
    "encode",
    "pack",
]
