"""Password rules (NIST SP 800-63B §5.1.1.2): long enough, not absurdly long, not a
well-known or breached password, not built from the account's own name or e-mail,
not one character repeated, and not easy to guess. No composition rules (they make
passwords worse, not stronger); pass phrases are welcome.

The deny list is zxcvbn's (Dropbox's strength estimator, offline: 30,000 passwords of
breach corpora, and the words, names and keyboard patterns attackers try first), with
this module's French favourites added as words to look for; a password it estimates
at fewer than 10^10 guesses (a score below 3) is refused, as ``password_common`` when
it is built on a breached password, else ``password_weak``.

:func:`problem` returns the first rule broken (a reason slug for clients, SPEC.md
§8.1, and a sentence), or ``None``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from zxcvbn import zxcvbn

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "MIN_SCORE", "Problem", "problem"]

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_SCORE = 3  # zxcvbn: 3 = at least 10^10 guesses

# The most used passwords in breach corpora (and their French favourites), as a local
# deny list: checking a remote breach API would send a hash prefix of every password
# to a third party. Compared after normalisation (see :func:`_fold`).
_COMMON_TEXT = """
    123456 123456789 12345678 1234567890 12345 1234567 password password1 qwerty
    azerty azertyuiop qwertyuiop 111111 000000 123123 abc123 iloveyou admin welcome
    letmein monkey dragon football baseball sunshine princess master shadow trustno1
    passw0rd password123 motdepasse motdepasse1 soleil doudou loulou chouchou marseille
    bonjour azerty123 azerty1234 1234567891 0123456789 9876543210 qwerty123 qwerty1234
    123456789a 1q2w3e4r5t 1q2w3e4r5t6y zaq12wsx qazwsxedc azertyuiop1 administrateur
    medecin medecin123 docteur docteur123 sante santé hopital hôpital infirmier
    infirmiere pharmacien doctolib doctolib123 confrere confrère confrere123
    changeme changeme123 motdepasse123 bienvenue bienvenue1 jetaime jetaime123
"""


def _fold(text: str) -> str:
    """Lower-case, accents removed, separators dropped: "Mot-de-Passe" == "motdepasse"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum())


_COMMON = frozenset(_fold(word) for word in _COMMON_TEXT.split())
_COMMON_WORDS = sorted(_COMMON)  # zxcvbn's "user inputs": matched like its dictionaries


@dataclass(frozen=True, slots=True)
class Problem:
    reason: str  # password_short, password_long, password_repeated, password_common...
    text: str


def problem(password: str, *, email: str = "", names: tuple[str, ...] = ()) -> Problem | None:
    """Why ``password`` is refused, or ``None`` if it is acceptable."""
    if len(password) < MIN_LENGTH:
        return Problem("password_short", f"must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        return Problem("password_long", f"must have at most {MAX_LENGTH} characters")
    folded = _fold(password)
    if len(set(password)) < 4:
        return Problem("password_repeated", "must not repeat the same few characters")
    if folded in _COMMON or folded.rstrip("0123456789") in _COMMON:
        return Problem(
            "password_common", "is too common (it appears in lists of breached passwords)"
        )
    if folded.isdigit() and folded in "01234567890123456789" + "98765432109876543210":
        return Problem("password_sequence", "must not be a sequence of digits")
    personal = [email.partition("@")[0], *names]
    for word in personal:
        w = _fold(word)
        if len(w) >= 3 and (folded == w or (w in folded and len(folded) - len(w) < 6)):
            return Problem(
                "password_personal", "must not be built from your name or e-mail address"
            )
    estimate = zxcvbn(password, user_inputs=[*_COMMON_WORDS, *personal])
    if int(estimate["score"]) < MIN_SCORE:
        breached = any(m.get("dictionary_name") == "passwords" for m in estimate["sequence"])
        if breached:
            return Problem(
                "password_common", "is too common (it appears in lists of breached passwords)"
            )
        return Problem("password_weak", "is too easy to guess: add a few words")
    return None
