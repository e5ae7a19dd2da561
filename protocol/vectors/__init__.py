"""Test vectors of :mod:`protocol.crypto` for clients in other languages.

The JSON files beside this module hold inputs (seeds, nonces, plaintexts; bytes in
lower-case hex, text as UTF-8 strings) and the exact outputs (keys, bundles,
ciphertexts) an interoperable implementation must produce byte for byte. Regenerate
with ``python -m protocol.vectors.generate`` (deterministic: fixed seeds).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["NAMES", "load"]

NAMES = ("keys", "sender_keys", "share", "safety", "identity", "backup")


def load(name: str) -> Any:
    """The parsed content of ``protocol/vectors/<name>.json``."""
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text("utf-8"))
