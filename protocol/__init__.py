"""Confrère wire protocol v1: pure, sans-I/O (bytes in, frames out; frames in, bytes out).

Imports nothing else of the project and does no I/O. See SPEC.md beside this file.
"""

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
from .session import Outcome, ServerSession, State

__all__ = [
    "SUBPROTOCOL",
    "BadFrame",
    "CloseCode",
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
