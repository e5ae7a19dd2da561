"""Search in one's messages (issue 19), for the SDK: :class:`MessageIndex`.

The index holds the text (and file names) of the messages this device decrypted, in a
local file encrypted at rest: an append-only log of records, each sealed with
``SecretBox`` under a key derived from this device's private keys (the key file), so the
index file alone reads as nothing. Queries run here; the server sees neither the query
nor the index. Matching ignores case and accents and takes word prefixes (``"reunion"``
finds ``"Réunion"``, ``"cardio"`` finds ``"cardiologue"``). An edit replaces its
original's text; a deletion for everyone removes the entry (a ``del`` record; the file
is rewritten without the dead records when it holds more of them than live ones).

The web client keeps the same index in IndexedDB (clients/web/app/search.js).
"""

from __future__ import annotations

import os
import re
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
from nacl.encoding import RawEncoder
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.hash import blake2b
from nacl.secret import SecretBox

__all__ = ["MessageIndex", "SearchHit", "fold", "index_key"]

_WORD = re.compile(r"[^\W_]+")
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae"})
_LENGTH = struct.Struct(">I")
MAX_HITS = 50


def fold(text: str) -> str:
    """Lower case, accents and ligatures removed: ``"Œdème Réunion"`` → ``"oedeme reunion"``."""
    decomposed = unicodedata.normalize("NFD", text.translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


def index_key(device_secret: bytes) -> bytes:
    """The index's 32-byte key, derived from this device's key file (its X25519 secret)."""
    return blake2b(
        b"message-index", key=device_secret, person=b"confrere-search", encoder=RawEncoder
    )


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message found: where, who, when, its text, and where the first word found is
    in it (``start``, ``end``) for an excerpt."""

    room: str
    seq: int
    sender: str
    ts: int
    text: str
    start: int
    end: int


class MessageIndex:
    """This device's search index, kept in ``path`` (created 0600)."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._box = SecretBox(key)
        self._entries: dict[tuple[str, int], dict[str, Any]] = {}
        self._dead = 0
        self._load()

    def __len__(self) -> int:
        return len(self._entries)

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        at = 0
        while at + _LENGTH.size <= len(data):
            (n,) = _LENGTH.unpack_from(data, at)
            sealed = data[at + _LENGTH.size : at + _LENGTH.size + n]
            at += _LENGTH.size + n
            try:
                record = msgpack.unpackb(self._box.decrypt(sealed))
            except (NaclCryptoError, ValueError):
                break  # a torn last write (or another key): what follows is not ours
            self._apply(record)

    def _apply(self, record: dict[str, Any]) -> None:
        key = (str(record["room"]), int(record["seq"]))
        if record.get("del"):
            if self._entries.pop(key, None) is not None:
                self._dead += 2
        else:
            if key in self._entries:
                self._dead += 1
            self._entries[key] = record

    def _seal(self, record: dict[str, Any]) -> bytes:
        sealed = self._box.encrypt(msgpack.packb(record))
        return _LENGTH.pack(len(sealed)) + sealed

    def _append(self, record: dict[str, Any]) -> None:
        self._apply(record)
        if self._dead > max(64, len(self._entries)):
            self._rewrite()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as f:
            f.write(self._seal(record))

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(self._seal(r) for r in self._entries.values()))
        os.replace(tmp, self.path)
        self._dead = 0

    def add(
        self,
        room: str,
        seq: int,
        sender: str,
        ts: int,
        text: str,
        edits: int | None = None,
    ) -> None:
        """A decrypted message; for an edit (``edits``: its original's seq), the
        original's entry takes the new text (an edit by someone else is ignored)."""
        if edits is not None:
            entry = self._entries.get((room, edits))
            if entry is None or entry["sender"] != sender or entry.get("edit", 0) >= seq:
                return
            self._append({**entry, "text": text, "edit": seq})
            return
        entry = self._entries.get((room, seq))
        if entry is not None and (entry.get("edit") or entry["text"] == text):
            return  # known already (history read again), or edited since
        self._append({"room": room, "seq": seq, "sender": sender, "ts": ts, "text": text})

    def remove(self, room: str, seq: int) -> None:
        """A message deleted for everyone: out of the index."""
        if (room, seq) in self._entries:
            self._append({"room": room, "seq": seq, "del": True})

    def search(self, query: str, limit: int = MAX_HITS) -> list[SearchHit]:
        """Messages in which each word of ``query`` starts a word, newest first."""
        wanted = [fold(m.group()) for m in _words(query)]
        if not wanted:
            return []
        hits: list[SearchHit] = []
        for entry in self._entries.values():
            text = str(entry["text"])
            found = [(fold(m.group()), m) for m in _words(text)]
            first: re.Match[str] | None = None
            for q in wanted:
                match = next((m for w, m in found if w.startswith(q)), None)
                if match is None:
                    break
                if first is None or match.start() < first.start():
                    first = match
            else:
                assert first is not None
                hits.append(
                    SearchHit(
                        str(entry["room"]),
                        int(entry["seq"]),
                        str(entry["sender"]),
                        int(entry["ts"]),
                        text,
                        first.start(),
                        first.end(),
                    )
                )
        hits.sort(key=lambda h: (h.ts, h.seq), reverse=True)
        return hits[:limit]
