"""The account lifecycle: one's log-in sessions, password change and reset by e-mail
code (what the store offers).

- A password reset keeps one code per account (its keyed hash), written with its
  e-mail (outbox) in one transaction; it is checked inside the transaction that counts
  the attempt, and the one that accepts it also sets the new password and deletes every
  session of the account (a reset means the old password may be known to someone).
- A password change deletes the account's other sessions in its transaction.
- Deleting an account (GDPR erasure) erases in one transaction what identifies the
  practitioner and every way in: the account row keeps its id only (address
  ``deleted+<id>@invalid``, name "Compte supprimé", no password, postcode, city or
  number, unverified), its sessions, device keys, push subscriptions, codes, roles and
  favourites go, and its directory profile is unlinked and hidden. What others' records
  or the law need stays: room memberships and the (end-to-end encrypted) messages,
  appointments and referrals, consents, the audit log.
Deleted sessions' hashes are returned, so that their live connections can be closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .outbox import NewNotification
from .types import Session

__all__ = ["DELETED_FIRST_NAME", "DELETED_LAST_NAME", "AccountStore", "ResetCheck", "SessionRow"]

DELETED_FIRST_NAME = "Compte"
DELETED_LAST_NAME = "supprimé"

ResetCheck = Literal["reset", "wrong", "expired", "exhausted", "none"]


@dataclass(frozen=True, slots=True)
class SessionRow:
    session: Session
    device_name: str


class AccountStore(Protocol):
    async def sessions_of(self, user_id: str, now: int) -> list[SessionRow]:
        """The account's unexpired sessions, oldest first, with their device's name."""

    async def delete_sessions_of(
        self, user_id: str, only: Sequence[bytes] | None = None, keep: bytes | None = None
    ) -> list[bytes]:
        """Delete the account's sessions (only those of ``only`` when given; never
        ``keep``); return the token hashes deleted."""

    async def change_password(self, user_id: str, password_hash: str, keep: bytes) -> list[bytes]:
        """Set the password and delete every other session; return their hashes."""

    async def start_password_reset(
        self,
        user_id: str,
        code_hash: bytes,
        expires_at: int,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> None:
        """Replace the account's reset code (attempts back to 0) and enqueue its e-mail."""

    async def reset_password(
        self,
        user_id: str,
        matches: Callable[[bytes], bool],
        password_hash: str,
        now: int,
        max_attempts: int,
    ) -> tuple[ResetCheck, list[bytes]]:
        """Check a code (``matches`` on its stored hash); if right, set the password, spend
        the code and delete every session of the account (their hashes returned)."""

    async def delete_account(self, user_id: str) -> list[bytes]:
        """Erase the account (see the module doc); return its sessions' hashes."""
