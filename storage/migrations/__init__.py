"""Versioned schema migrations, one folder per SQL dialect: ``NNNN_name.sql``.

Each adapter applies, in order, the files whose number is above the version recorded in
its ``schema_version`` table, each in its own transaction.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["migration_files"]


def migration_files(dialect: str) -> list[tuple[int, str]]:
    """``(version, sql)`` pairs for ``dialect``, ascending."""
    folder = resources.files(__name__).joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)
