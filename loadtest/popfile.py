"""The population file that ``populate`` writes and the other subcommands read.

One msgpack map: the database URL, each practitioner's (user id, device id, session
token) and each room's (id, kind, member numbers). The tokens are bearer credentials
of load-test accounts: the file is created with mode 0600.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgpack

__all__ = ["Population", "load_population", "save_population"]


@dataclass(slots=True)
class Population:
    database_url: str
    users: list[tuple[str, str, str]]  # (user id, device id, token)
    rooms: list[tuple[str, str, list[int]]]  # (room id, kind, member numbers)

    def rooms_by_user(self) -> list[list[int]]:
        """For each practitioner number, the indexes (in ``rooms``) of their rooms."""
        mine: list[list[int]] = [[] for _ in self.users]
        for r, (_, _, members) in enumerate(self.rooms):
            for m in members:
                mine[m].append(r)
        return mine


def save_population(path: Path, population: Population) -> None:
    data = msgpack.packb(
        {
            "database_url": population.database_url,
            "users": [list(u) for u in population.users],
            "rooms": [[r, k, m] for r, k, m in population.rooms],
        },
        use_bin_type=True,
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load_population(path: Path) -> Population:
    d = msgpack.unpackb(path.read_bytes(), raw=False)
    return Population(
        d["database_url"],
        [(u, dev, tok) for u, dev, tok in d["users"]],
        [(r, k, list(m)) for r, k, m in d["rooms"]],
    )
