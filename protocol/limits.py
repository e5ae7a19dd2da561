"""Numeric limits of protocol v1. SPEC.md quotes these; change both together."""

from __future__ import annotations

__all__ = [
    "HELLO_TIMEOUT_S",
    "EDIT_WINDOW_MS",
    "DELETE_WINDOW_MS",
    "MAX_ACK_TIDS",
    "MAX_ATTACHMENT",
    "MAX_ATTACHMENTS_PER_MESSAGE",
    "MAX_BAD_FRAMES",
    "MAX_BODY",
    "MAX_BUNDLE",
    "MAX_IDENTITY",
    "MAX_CID",
    "MAX_EMAIL",
    "MAX_EMAILS_PER_INVITE",
    "MAX_FRAME",
    "MAX_HEADER",
    "MAX_ID",
    "MAX_MEMBERS_PER_REQUEST",
    "MAX_MENTIONS",
    "MAX_NAME",
    "MAX_NAME_CHARS",
    "MAX_REQUEST_ID",
    "MAX_SYNC_LIMIT",
    "MAX_TOKEN",
    "SUBPROTOCOL",
]

SUBPROTOCOL = "confrere.v1"

MAX_FRAME = 256 * 1024  # bytes of one client frame, before decoding
MAX_BODY = 64 * 1024  # ciphertext of one message or to-device payload
MAX_HEADER = 16 * 1024  # encrypted patient-case header
MAX_BUNDLE = 1024  # a device's signed public key bundle (keys.upload, keys.query)
# An identity record or a device signature (cross-signing: keys.upload, keys.sign).
MAX_IDENTITY = 512
MAX_NAME = 2 * 1024  # bytes of an encrypted room name (its plaintext: 200 characters)
MAX_NAME_CHARS = 200  # characters of a room name, checked by clients before encrypting
MAX_ID = 64  # characters of a user, device or room id
MAX_CID = 64  # characters of a client message id
MAX_TOKEN = 256  # characters of a session token
MAX_MEMBERS_PER_REQUEST = 500  # users named in one room.create / room.invite
MAX_SYNC_LIMIT = 500  # items in one batch
MAX_MENTIONS = 50  # members one message mentions (send.mentions, SPEC.md §4.2)
MAX_EMAIL = 254  # characters of an e-mail address (RFC 5321 path limit)
MAX_EMAILS_PER_INVITE = 50  # addresses invited by one room.invite (each gets an e-mail)
MAX_ACK_TIDS = 1000  # to-device ids acknowledged by one to_device.ack
MAX_ATTACHMENT = 50 * 1024 * 1024  # bytes of plaintext of one attachment (50 MiB)
MAX_ATTACHMENTS_PER_MESSAGE = 10  # attachment ids referenced by one send (send.att)
MAX_REQUEST_ID = 2**53 - 1  # fits a JavaScript number
HELLO_TIMEOUT_S = 5.0  # seconds to send a valid hello before close 4401
MAX_BAD_FRAMES = 20  # bad frames tolerated on one connection before close 4400
# How long after sending its author may change a message (SPEC.md §4.20, §4.2 `edits`);
# a room's owner and admins delete any message of a group or case at any time.
EDIT_WINDOW_MS = 48 * 3600 * 1000
DELETE_WINDOW_MS = 48 * 3600 * 1000
