"""Accounts and identity verification: what the store offers, and its rows.

- Sign-up writes the account, its consents, its e-mail code and the code's e-mail
  (outbox) in one transaction; a regulator sign-up also spends its one-time link and
  grants the "regulator" role in it.
- An e-mail code is checked inside the transaction that counts the attempt, so
  concurrent guesses cannot exceed the limit.
- A Pro Santé Connect flow is one row per ``state`` (its hash), taken (deleted) once.
- A manual request (states in :mod:`server.verification.review`) owns the identity
  documents staged by its user at submission; deciding it, verifying the account if
  approved, and the user's notice commit together. Documents are blobs of the blob
  store, encrypted under the server key; their rows go after their blobs (the sweep).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .errors import LinkUnusable, NumberTaken
from .outbox import NewNotification
from .types import NewUser, User

__all__ = [
    "CodeCheck",
    "Consent",
    "EmailCode",
    "MAX_CODE_FAILURES",
    "NumberTaken",
    "IdentityDocument",
    "IdentityRequest",
    "LinkUnusable",
    "RegulatorLink",
    "VerificationStore",
]

CodeCheck = Literal["confirmed", "wrong", "expired", "exhausted", "locked", "none"]
MAX_CODE_FAILURES = 20  # wrong codes in an account's life, across resends: then "locked"


@dataclass(frozen=True, slots=True)
class Consent:
    document: str  # "terms" | "privacy"
    version: str


@dataclass(frozen=True, slots=True)
class EmailCode:
    """``code_hash`` is a MAC of the code (server/verification/codes.py)."""

    email: str
    code_hash: bytes
    expires_at: int


@dataclass(frozen=True, slots=True)
class RegulatorLink:
    id: str
    email: str
    issued_by: str
    created_at: int
    expires_at: int
    used_at: int | None


@dataclass(frozen=True, slots=True)
class IdentityDocument:
    """``id`` is also the blob's name in the blob store."""

    id: str
    user_id: str
    side: str  # "front" | "back" | "selfie"
    content_type: str
    size: int
    key_id: str
    request_id: str | None
    state: str  # "uploading" | "ready"
    created_at: int


@dataclass(frozen=True, slots=True)
class IdentityRequest:
    id: str
    user_id: str
    document: str  # "passport" | "id_card"
    issuing_country: str | None
    state: str  # "pending" | "approved" | "rejected"
    created_at: int
    decided_at: int | None
    decided_by: str | None
    reason: str | None
    documents_deleted_at: int | None


class VerificationStore(Protocol):
    # -- sign-up and e-mail confirmation
    async def create_account(
        self,
        new: NewUser,
        consents: Sequence[Consent],
        code: EmailCode | None,
        notifications: Sequence[NewNotification],
        now: int,
        *,
        regulator_link: str | None = None,
        replace_unconfirmed_before: int | None = None,
    ) -> User:
        """Create the account with its consents, code and notifications. With
        ``regulator_link``, also spend that link (raise :class:`LinkUnusable` if it is
        used or unknown) and grant the "regulator" role. Raise
        :class:`~storage.errors.Conflict` if the e-mail is taken, except by an account
        that never confirmed it and was created before ``replace_unconfirmed_before``:
        that one is set aside in the same transaction (its address becomes
        ``replaced+<id>@invalid``, its sessions and code are deleted), so nobody can
        squat an address by signing up with it. A ``verified`` account with a number
        (Pro Santé Connect sign-up) raises :class:`NumberTaken` if another verified
        account has that number."""

    async def replace_email_code(
        self, user_id: str, code: EmailCode, notifications: Sequence[NewNotification], now: int
    ) -> None:
        """A new code (the old one is void), with its e-mail."""

    async def check_email_code(
        self,
        user_id: str,
        matches: Callable[[EmailCode], bool],
        now: int,
        max_attempts: int,
        max_failures: int = MAX_CODE_FAILURES,
    ) -> CodeCheck:
        """Count one attempt and confirm the address if ``matches`` the stored code,
        unexpired, with attempts left; a confirmed code is deleted (single use). After
        ``max_failures`` wrong codes in the account's life (resends do not reset it),
        every attempt is "locked"."""

    async def consents_of(self, user_id: str) -> list[tuple[Consent, int]]:
        """(consent, accepted_at), oldest first."""

    # -- Pro Santé Connect
    async def create_psc_flow(
        self, state_hash: bytes, user_id: str, now: int, expires_at: int
    ) -> None: ...

    async def take_psc_flow(self, state_hash: bytes, now: int) -> str | None:
        """The flow's user id, deleting the flow; ``None`` if unknown, taken or expired."""

    async def mark_identity_verified(
        self,
        user_id: str,
        number: str | None,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> User:
        """Verify the account; record ``number`` (RPPS/ADELI) if it had none."""

    # -- manual review: documents and requests
    async def create_identity_document(self, doc: IdentityDocument) -> None:
        """A row in state "uploading" (its blob is being written)."""

    async def complete_identity_document(self, doc_id: str, size: int) -> list[str]:
        """Mark the upload "ready"; the user's earlier staged document of the same side
        is unstaged. Return the ids whose blobs are now unused (the replaced ones)."""

    async def delete_identity_document(self, doc_id: str) -> None: ...

    async def staged_documents(self, user_id: str) -> list[IdentityDocument]:
        """The ready documents not yet part of a request, by side."""

    async def submit_identity_request(
        self, request: IdentityRequest, sides: Sequence[str]
    ) -> IdentityRequest:
        """Create a pending request owning the staged documents of ``sides``. Raise
        :class:`~storage.errors.Conflict` if one is pending already or the account is
        verified, :class:`~storage.errors.NotFound` if a side is missing."""

    async def identity_request(self, request_id: str) -> IdentityRequest | None: ...

    async def identity_requests_of(self, user_id: str) -> list[IdentityRequest]:
        """Newest first."""

    async def pending_identity_requests(self, limit: int) -> list[tuple[IdentityRequest, User]]:
        """Oldest first."""

    async def documents_of_request(self, request_id: str) -> list[IdentityDocument]: ...

    async def identity_document(self, doc_id: str) -> IdentityDocument | None: ...

    async def decide_identity_request(
        self,
        request_id: str,
        state: str,
        reviewer_id: str,
        reason: str | None,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> tuple[IdentityRequest, User]:
        """Move a pending request to ``state``; verify the account when "approved".
        Raise NotFound for an unknown request, Conflict if it was decided already."""

    async def expired_identity_documents(
        self, decided_before: int, staged_before: int, limit: int
    ) -> list[str]:
        """Ids of documents to delete, all final (nothing can want them again): of
        requests decided before ``decided_before``; replaced photos; photos staged
        before ``staged_before`` and never submitted (unstaged by this call, so a
        submission racing it fails whole); uploads a dead node left unfinished."""

    async def forget_identity_documents(self, doc_ids: Sequence[str], now: int) -> None:
        """Delete these rows (their blobs are gone); mark requests left without
        documents ``documents_deleted_at``."""

    # -- regulator sign-up links
    async def create_regulator_link(self, link: RegulatorLink) -> None: ...

    async def regulator_link(self, link_id: str) -> RegulatorLink | None: ...
