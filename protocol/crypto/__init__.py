"""End-to-end encryption primitives (PyNaCl): pure functions and state machines, no I/O."""

from .attachment import AttachmentRef, Decryptor, Encryptor, decrypt, encrypt, new_key
from .errors import (
    BadKey,
    BadSignature,
    BadVersion,
    CryptoError,
    Replayed,
    Tampered,
    TooFarAhead,
    Truncated,
    UnknownSession,
)
from .keys import DeviceKeys, KeyBundle, parse_bundle
from .safety import safety_number
from .sender_keys import InboundSession, OutboundSession, SenderKey, parse_message
from .share import open_sealed, open_sender_key, seal, share_sender_key

# Messaging: keys.py (device keys, signed bundles), identity.py (cross-signing: a
# user's identity key signs their devices), sender_keys.py (per-room sender
# keys), share.py (to-device payloads sealed with Box), safety.py (safety numbers),
# errors.py (the CryptoError tree). Attachments: attachment.py.
__all__ = [
    "AttachmentRef",
    "BadKey",
    "BadSignature",
    "BadVersion",
    "CryptoError",
    "Decryptor",
    "DeviceKeys",
    "Encryptor",
    "InboundSession",
    "KeyBundle",
    "OutboundSession",
    "Replayed",
    "SenderKey",
    "Tampered",
    "TooFarAhead",
    "Truncated",
    "UnknownSession",
    "decrypt",
    "encrypt",
    "new_key",
    "open_sealed",
    "open_sender_key",
    "parse_bundle",
    "parse_message",
    "safety_number",
    "seal",
    "share_sender_key",
]
