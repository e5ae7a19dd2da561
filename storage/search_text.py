"""Text normalisation shared by the directory's indexes and its queries (pure).

The same function must fold the text that is indexed and the text that is searched,
so both storage adapters index :func:`normalise`'d columns and the server folds the
query with it: case- and accent-insensitive matching without database extensions
(and without ``unaccent``'s immutability trap in index expressions).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["deletes", "edit_distance_at_most_1", "normalise", "tokens"]

_NOT_WORD = re.compile(r"[^a-z0-9]+")
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "Œ": "oe", "Æ": "ae"})


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, words separated by one space:
    ``"Lefèvre-Saint Œuvre"`` → ``"lefevre saint oeuvre"``."""
    folded = unicodedata.normalize("NFKD", text.translate(_LIGATURES).lower())
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c))
    return _NOT_WORD.sub(" ", ascii_only).strip()


def tokens(text: str, max_tokens: int = 8) -> list[str]:
    """The distinct words of ``normalise(text)``, in order, at most ``max_tokens``."""
    return list(dict.fromkeys(normalise(text).split()))[:max_tokens]


def deletes(term: str) -> set[str]:
    """Every string made by deleting one character of ``term`` (SymSpell keys): two
    words within one edit (insertion, deletion, substitution, transposition) share
    one of these keys, or one word is a key of the other."""
    return {term[:i] + term[i + 1 :] for i in range(len(term))}


def edit_distance_at_most_1(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one insertion, deletion,
    substitution or transposition of adjacent characters."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True  # substitution
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    if la > lb:
        return a[i + 1 :] == b[i:]
    return a[i:] == b[i + 1 :]
