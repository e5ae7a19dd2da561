"""Versioned schema migrations, one folder per SQL dialect: ``NNNN_name.sql``.

Each adapter applies, in order, every file whose number its ``schema_version`` table does
not record yet (a file merged with a lower number than one already applied still runs),
each in its own transaction. Two files may not share a number: the second would be
recorded as applied without ever running.
"""

from __future__ import annotations

import itertools
from importlib import resources

__all__ = ["migration_files"]


def migration_files(dialect: str) -> list[tuple[int, str]]:
    """``(version, sql)`` pairs for ``dialect``, ascending."""
    folder = resources.files(__name__).joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text("utf-8")))
    found.sort()
    for (version, first, _), (same, second, _) in itertools.pairwise(found):
        if version == same:
            raise RuntimeError(f"migrations {first} and {second} share the number {version}")
    return [(version, sql) for version, _, sql in found]
