"""The SQL store's part of :class:`storage.verification.VerificationStore`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import astuple, fields
from typing import Any

from ..errors import (
    AlreadyDecided,
    AlreadyVerified,
    EmailTaken,
    LinkUnusable,
    NoSuchDocument,
    NoSuchRequest,
    NoSuchUser,
    NumberTaken,
    RequestPending,
)
from ..ids import new_id
from ..outbox import NewNotification
from ..types import NewUser, User
from ..verification import (
    MAX_CODE_FAILURES,
    CodeCheck,
    Consent,
    EmailCode,
    IdentityDocument,
    IdentityRequest,
    RegulatorLink,
)
from .base import SqlBase
from .engine import Row, Tx
from .events import user_from_row as _user
from .outbox import insert_notifications

__all__ = ["SqlVerification"]

# Users' columns are named as the User fields (storage/types.py), in that order.
_USER_FIELDS = tuple(f.name for f in fields(User))
_USER_COLS = ", ".join(_USER_FIELDS)
_DOC_COLS = "id, user_id, side, content_type, size, key_id, request_id, state, created_at"
_REQ_FIELDS = tuple(f.name for f in fields(IdentityRequest))
_REQ_COLS = ", ".join(_REQ_FIELDS)
_LINK_COLS = "id, email, issued_by, created_at, expires_at, used_at"


def _marks(n: int, start: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(start, start + n))


_SQL_INSERT_USER = f"INSERT INTO users ({_USER_COLS}) VALUES ({_marks(len(_USER_FIELDS))})"
_SQL_USER = f"SELECT {_USER_COLS} FROM users WHERE id = $1"
_SQL_INSERT_CONSENTS = (
    "INSERT INTO consents (user_id, document, version, accepted_at)"
    " SELECT $1, d, v, $4 FROM unnest($2::text[], $3::text[]) AS u(d, v)"
)
_SQL_INSERT_CODE = (
    "INSERT INTO email_codes (user_id, email, code_hash, expires_at, created_at)"
    " VALUES ($1, $2, $3, $4, $5)"
)
_SQL_UPSERT_CODE = (
    _SQL_INSERT_CODE + " ON CONFLICT (user_id) DO UPDATE SET email = excluded.email,"
    " code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0,"
    " created_at = excluded.created_at"
)
_SQL_SPEND_LINK = (
    "UPDATE regulator_links SET used_at = $1, user_id = $2"
    " WHERE id = $3 AND used_at IS NULL AND email = $4"
)
_SQL_GRANT_REGULATOR = (
    "INSERT INTO user_roles (user_id, role, granted_at) VALUES ($1, 'regulator', $2)"
)
_SQL_CODE_FOR_UPDATE = (
    "SELECT email, code_hash, expires_at, attempts, failures FROM email_codes"
    " WHERE user_id = $1 FOR UPDATE"
)
_SQL_TAKEN = "SELECT id, email_confirmed, created_at FROM users WHERE email = $1 FOR UPDATE"
_SQL_SET_ASIDE = "UPDATE users SET email = 'replaced+' || id || '@invalid' WHERE id = $1"
_SQL_DOC = f"SELECT {_DOC_COLS} FROM identity_documents"
_SQL_REQ = f"SELECT {_REQ_COLS} FROM identity_requests"


def _doc(row: Row) -> IdentityDocument:
    return IdentityDocument(*row)


def _req(row: Any) -> IdentityRequest:
    return IdentityRequest(*row)


async def _user_by_id(c: Tx, user_id: str) -> User:
    row = await c.fetchrow(_SQL_USER, user_id)
    if row is None:
        raise NoSuchUser(f"no user {user_id}")
    return _user(row)


async def _check_number_free(c: Tx, user_id: str, number: str | None) -> None:
    """Raise :class:`NumberTaken` if the number ``user_id`` is verified with (its own,
    else ``number``) is already another verified account's. A transaction-scoped
    advisory lock on the number makes two concurrent verifications take turns."""
    effective = await c.fetchval(
        "SELECT coalesce(rpps, $2) FROM users WHERE id = $1", user_id, number
    )
    if effective is None:
        return
    await c.lock(f"rpps:{effective}")
    taken = await c.fetchval(
        "SELECT EXISTS (SELECT 1 FROM users WHERE rpps = $1 AND verified AND id <> $2)",
        effective,
        user_id,
    )
    if taken:
        raise NumberTaken("another verified account has this RPPS/ADELI number")


class SqlVerification(SqlBase):
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
        user = new.to_user(new_id(), now)

        async def tx(c: Tx) -> None:
            taken = await c.fetchrow(_SQL_TAKEN, user.email)
            if taken is not None:
                old_id, confirmed, created_at = taken
                if (
                    confirmed
                    or replace_unconfirmed_before is None
                    or created_at >= replace_unconfirmed_before
                ):
                    raise EmailTaken("an account already exists for this e-mail")
                await c.execute(_SQL_SET_ASIDE, old_id)
                await c.execute("DELETE FROM sessions WHERE user_id = $1", old_id)
                await c.execute("DELETE FROM email_codes WHERE user_id = $1", old_id)
            await c.execute(_SQL_INSERT_USER, *astuple(user))
            if user.verified:  # verified at birth (Pro Santé Connect): its number is its own
                await _check_number_free(c, user.id, None)
            await c.execute(
                _SQL_INSERT_CONSENTS,
                user.id,
                [k.document for k in consents],
                [k.version for k in consents],
                now,
            )
            if code is not None:
                await c.execute(
                    _SQL_INSERT_CODE, user.id, code.email, code.code_hash, code.expires_at, now
                )
            if regulator_link is not None:
                status = await c.execute(_SQL_SPEND_LINK, now, user.id, regulator_link, user.email)
                if status != 1:
                    raise LinkUnusable("this sign-up link was used already")
                await c.execute(_SQL_GRANT_REGULATOR, user.id, now)
            await insert_notifications(c, notifications, now)

        await self.db.run("create_account", tx, "transaction")
        return user

    async def replace_email_code(
        self, user_id: str, code: EmailCode, notifications: Sequence[NewNotification], now: int
    ) -> None:
        async def tx(c: Tx) -> None:
            await c.execute(
                _SQL_UPSERT_CODE, user_id, code.email, code.code_hash, code.expires_at, now
            )
            await insert_notifications(c, notifications, now)

        await self.db.run("replace_email_code", tx, "transaction")

    async def check_email_code(
        self,
        user_id: str,
        matches: Callable[[EmailCode], bool],
        now: int,
        max_attempts: int,
        max_failures: int = MAX_CODE_FAILURES,
    ) -> CodeCheck:
        async def tx(c: Tx) -> CodeCheck:
            row = await c.fetchrow(_SQL_CODE_FOR_UPDATE, user_id)
            if row is None:
                return "none"
            email, code_hash, expires_at, attempts, failures = row
            if failures >= max_failures:
                return "locked"
            if attempts >= max_attempts:
                return "exhausted"
            if expires_at <= now:
                return "expired"
            if not matches(EmailCode(email, bytes(code_hash), expires_at)):
                await c.execute(
                    "UPDATE email_codes SET attempts = attempts + 1, failures = failures + 1"
                    " WHERE user_id = $1",
                    user_id,
                )
                return "wrong"
            await c.execute("DELETE FROM email_codes WHERE user_id = $1", user_id)
            await c.execute(
                "UPDATE users SET email_confirmed = true WHERE id = $1 AND email = $2",
                user_id,
                email,
            )
            return "confirmed"

        return await self.db.run("check_email_code", tx, "transaction")

    async def consents_of(self, user_id: str) -> list[tuple[Consent, int]]:
        rows = await self.db.run(
            "consents_of",
            lambda c: c.fetch(
                "SELECT document, version, accepted_at FROM consents WHERE user_id = $1"
                " ORDER BY accepted_at, document",
                user_id,
            ),
            "read",
        )
        return [(Consent(d, v), at) for d, v, at in rows]

    # -- Pro Santé Connect

    async def create_psc_flow(
        self, state_hash: bytes, user_id: str, now: int, expires_at: int
    ) -> None:
        async def tx(c: Tx) -> None:
            await c.execute("DELETE FROM psc_flows WHERE expires_at <= $1", now)
            await c.execute(
                "INSERT INTO psc_flows (state_hash, user_id, created_at, expires_at)"
                " VALUES ($1, $2, $3, $4)",
                state_hash,
                user_id,
                now,
                expires_at,
            )

        await self.db.run("create_psc_flow", tx, "transaction")

    async def take_psc_flow(self, state_hash: bytes, now: int) -> str | None:
        row = await self.db.run(
            "take_psc_flow",
            lambda c: c.fetchrow(
                "DELETE FROM psc_flows WHERE state_hash = $1 RETURNING user_id, expires_at",
                state_hash,
            ),
            "write",
        )
        if row is None or row[1] <= now:
            return None
        return str(row[0])

    async def mark_identity_verified(
        self,
        user_id: str,
        number: str | None,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> User:
        async def tx(c: Tx) -> User:
            await _check_number_free(c, user_id, number)
            await c.execute(
                "UPDATE users SET verified = true, rpps = coalesce(rpps, $2) WHERE id = $1",
                user_id,
                number,
            )
            user = await _user_by_id(c, user_id)
            await insert_notifications(c, notifications, now)
            return user

        return await self.db.run("mark_identity_verified", tx, "transaction")

    # -- manual review

    async def create_identity_document(self, doc: IdentityDocument) -> None:
        await self.db.run(
            "create_identity_document",
            lambda c: c.execute(
                f"INSERT INTO identity_documents ({_DOC_COLS}) VALUES ({_marks(9)})",
                *astuple(doc),
            ),
            "write",
        )

    async def complete_identity_document(self, doc_id: str, size: int) -> list[str]:
        async def tx(c: Tx) -> list[str]:
            row = await c.fetchrow(
                "UPDATE identity_documents SET state = 'ready', size = $1, staged = true"
                " WHERE id = $2 AND state = 'uploading' RETURNING user_id, side",
                size,
                doc_id,
            )
            if row is None:
                raise NoSuchDocument(f"no upload {doc_id}")
            replaced = await c.fetch(
                "UPDATE identity_documents SET staged = false WHERE user_id = $1 AND side = $2"
                " AND staged AND request_id IS NULL AND id <> $3 RETURNING id",
                row[0],
                row[1],
                doc_id,
            )
            return [r[0] for r in replaced]

        return await self.db.run("complete_identity_document", tx, "transaction")

    async def delete_identity_document(self, doc_id: str) -> None:
        await self.db.run(
            "delete_identity_document",
            lambda c: c.execute("DELETE FROM identity_documents WHERE id = $1", doc_id),
            "write",
        )

    async def staged_documents(self, user_id: str) -> list[IdentityDocument]:
        rows = await self.db.run(
            "staged_documents",
            lambda c: c.fetch(
                _SQL_DOC + " WHERE user_id = $1 AND staged AND request_id IS NULL ORDER BY side",
                user_id,
            ),
            "read",
        )
        return [_doc(r) for r in rows]

    async def submit_identity_request(
        self, request: IdentityRequest, sides: Sequence[str]
    ) -> IdentityRequest:
        async def tx(c: Tx) -> IdentityRequest:
            # Lock the account row: two submissions of one user serialise here.
            row = await c.fetchrow(_SQL_USER + " FOR UPDATE", request.user_id)
            if row is None:
                raise NoSuchUser(f"no user {request.user_id}")
            if _user(row).verified:
                raise AlreadyVerified("this account is verified already")
            pending = await c.fetchval(
                "SELECT EXISTS (SELECT 1 FROM identity_requests WHERE user_id = $1"
                " AND state = 'pending')",
                request.user_id,
            )
            if pending:
                raise RequestPending("a verification request is pending already")
            await c.execute(
                f"INSERT INTO identity_requests ({_REQ_COLS}) VALUES ({_marks(10)})",
                *astuple(request),
            )
            for side in sides:
                status = await c.execute(
                    "UPDATE identity_documents SET request_id = $1, staged = false"
                    " WHERE user_id = $2 AND side = $3 AND staged AND request_id IS NULL",
                    request.id,
                    request.user_id,
                    side,
                )
                if status != 1:
                    raise NoSuchDocument(f"no '{side}' document uploaded")
            return request

        return await self.db.run("submit_identity_request", tx, "transaction")

    async def identity_request(self, request_id: str) -> IdentityRequest | None:
        row = await self.db.run(
            "identity_request",
            lambda c: c.fetchrow(_SQL_REQ + " WHERE id = $1", request_id),
            "read",
        )
        return None if row is None else _req(row)

    async def identity_requests_of(self, user_id: str) -> list[IdentityRequest]:
        rows = await self.db.run(
            "identity_requests_of",
            lambda c: c.fetch(
                _SQL_REQ + " WHERE user_id = $1 ORDER BY created_at DESC, id DESC", user_id
            ),
            "read",
        )
        return [_req(r) for r in rows]

    async def pending_identity_requests(self, limit: int) -> list[tuple[IdentityRequest, User]]:
        req_cols = ", ".join(f"r.{f}" for f in _REQ_FIELDS)
        user_cols = ", ".join(f"u.{f}" for f in _USER_FIELDS)
        rows = await self.db.run(
            "pending_identity_requests",
            lambda c: c.fetch(
                f"SELECT {req_cols}, {user_cols} FROM identity_requests r"
                " JOIN users u ON u.id = r.user_id WHERE r.state = 'pending'"
                " ORDER BY r.created_at, r.id LIMIT $1",
                limit,
            ),
            "read",
        )
        n = len(_REQ_FIELDS)
        return [(_req(tuple(r)[:n]), User(*tuple(r)[n:])) for r in rows]

    async def documents_of_request(self, request_id: str) -> list[IdentityDocument]:
        rows = await self.db.run(
            "documents_of_request",
            lambda c: c.fetch(_SQL_DOC + " WHERE request_id = $1 ORDER BY side", request_id),
            "read",
        )
        return [_doc(r) for r in rows]

    async def identity_document(self, doc_id: str) -> IdentityDocument | None:
        row = await self.db.run(
            "identity_document",
            lambda c: c.fetchrow(_SQL_DOC + " WHERE id = $1", doc_id),
            "read",
        )
        return None if row is None else _doc(row)

    async def decide_identity_request(
        self,
        request_id: str,
        state: str,
        reviewer_id: str,
        reason: str | None,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> tuple[IdentityRequest, User]:
        async def tx(c: Tx) -> tuple[IdentityRequest, User]:
            row = await c.fetchrow(
                "UPDATE identity_requests SET state = $1, decided_at = $2, decided_by = $3,"
                f" reason = $4 WHERE id = $5 AND state = 'pending' RETURNING {_REQ_COLS}",
                state,
                now,
                reviewer_id,
                reason,
                request_id,
            )
            if row is None:
                exists = await c.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM identity_requests WHERE id = $1)", request_id
                )
                if not exists:
                    raise NoSuchRequest(f"no request {request_id}")
                raise AlreadyDecided("this request was decided already")
            decided = _req(row)
            if state == "approved":
                await _check_number_free(c, decided.user_id, None)
                await c.execute("UPDATE users SET verified = true WHERE id = $1", decided.user_id)
            await insert_notifications(c, notifications, now)
            return decided, await _user_by_id(c, decided.user_id)

        return await self.db.run("decide_identity_request", tx, "transaction")

    async def expired_identity_documents(
        self, decided_before: int, staged_before: int, limit: int
    ) -> list[str]:
        async def tx(c: Tx) -> list[str]:
            await c.execute(
                "UPDATE identity_documents SET staged = false"
                " WHERE staged AND request_id IS NULL AND created_at < $1",
                staged_before,
            )
            rows = await c.fetch(
                "SELECT d.id FROM identity_documents d"
                " JOIN identity_requests r ON r.id = d.request_id"
                " WHERE r.state <> 'pending' AND r.decided_at < $1"
                " UNION ALL SELECT id FROM identity_documents WHERE request_id IS NULL"
                " AND ((state = 'ready' AND NOT staged)"
                " OR (state = 'uploading' AND created_at < $2)) LIMIT $3",
                decided_before,
                staged_before,
                limit,
            )
            return [r[0] for r in rows]

        return await self.db.run("expired_identity_documents", tx, "transaction")

    async def forget_identity_documents(self, doc_ids: Sequence[str], now: int) -> None:
        async def tx(c: Tx) -> None:
            rows = await c.fetch(
                "DELETE FROM identity_documents WHERE id = ANY($1::text[]) RETURNING request_id",
                list(doc_ids),
            )
            requests = sorted({r[0] for r in rows if r[0] is not None})
            await c.execute(
                "UPDATE identity_requests AS r SET documents_deleted_at = $1"
                " WHERE id = ANY($2::text[]) AND documents_deleted_at IS NULL AND NOT EXISTS"
                " (SELECT 1 FROM identity_documents d WHERE d.request_id = r.id)",
                now,
                requests,
            )

        await self.db.run("forget_identity_documents", tx, "transaction")

    # -- regulator links

    async def create_regulator_link(self, link: RegulatorLink) -> None:
        await self.db.run(
            "create_regulator_link",
            lambda c: c.execute(
                f"INSERT INTO regulator_links ({_LINK_COLS}) VALUES ({_marks(6)})",
                *astuple(link),
            ),
            "write",
        )

    async def regulator_link(self, link_id: str) -> RegulatorLink | None:
        row = await self.db.run(
            "regulator_link",
            lambda c: c.fetchrow(
                f"SELECT {_LINK_COLS} FROM regulator_links WHERE id = $1", link_id
            ),
            "read",
        )
        return None if row is None else RegulatorLink(*row)
