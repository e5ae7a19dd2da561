"""SQLite part of :class:`storage.verification.VerificationStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import astuple, fields
from typing import Any

from ..errors import Conflict, NotFound
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
    LinkUnusable,
    NumberTaken,
    RegulatorLink,
)
from .base import SqliteBase
from .outbox import insert_notifications

__all__ = ["SqliteVerification"]

# Users' columns are named as the User fields (storage/types.py), in that order.
_USER_FIELDS = tuple(f.name for f in fields(User))
_USER_COLS = ", ".join(_USER_FIELDS)
_BOOL_FIELDS = {"verified", "email_confirmed"}
_DOC_COLS = "id, user_id, side, content_type, size, key_id, request_id, state, created_at"
_REQ_COLS = (
    "id, user_id, document, issuing_country, state, created_at, decided_at, decided_by,"
    " reason, documents_deleted_at"
)
_REQ_COLS_R = ", ".join(f"r.{c.strip()}" for c in _REQ_COLS.split(","))
_LINK_COLS = "id, email, issued_by, created_at, expires_at, used_at"


def _user(row: Any) -> User:
    values: list[Any] = [
        bool(v) if k in _BOOL_FIELDS else v for k, v in zip(_USER_FIELDS, row, strict=True)
    ]
    return User(*values)


def _user_by_id(c: sqlite3.Connection, user_id: str) -> User:
    row = c.execute(f"SELECT {_USER_COLS} FROM users WHERE id=?", (user_id,)).fetchone()
    if row is None:
        raise NotFound(f"no user {user_id}")
    return _user(row)


def _doc(row: Any) -> IdentityDocument:
    return IdentityDocument(*row)


def _req(row: Any) -> IdentityRequest:
    return IdentityRequest(*row)


def _check_number_free(c: sqlite3.Connection, user_id: str, number: str | None) -> None:
    """Raise :class:`NumberTaken` if the number ``user_id`` is verified with (its own,
    else ``number``) is already another verified account's."""
    row = c.execute("SELECT coalesce(rpps, ?) FROM users WHERE id=?", (number, user_id)).fetchone()
    if row is None or row[0] is None:
        return
    taken = c.execute(
        "SELECT 1 FROM users WHERE rpps=? AND verified=1 AND id<>?", (row[0], user_id)
    ).fetchone()
    if taken is not None:
        raise NumberTaken("another verified account has this RPPS/ADELI number")


class SqliteVerification(SqliteBase):
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

        def tx(c: sqlite3.Connection) -> None:
            taken = c.execute(
                "SELECT id, email_confirmed, created_at FROM users WHERE email=?", (user.email,)
            ).fetchone()
            if taken is not None:
                old_id, confirmed, created_at = taken
                if (
                    confirmed
                    or replace_unconfirmed_before is None
                    or created_at >= replace_unconfirmed_before
                ):
                    raise Conflict("an account already exists for this e-mail")
                c.execute(
                    "UPDATE users SET email = 'replaced+' || id || '@invalid' WHERE id=?",
                    (old_id,),
                )
                c.execute("DELETE FROM sessions WHERE user_id=?", (old_id,))
                c.execute("DELETE FROM email_codes WHERE user_id=?", (old_id,))
            marks = ",".join("?" * len(_USER_FIELDS))
            c.execute(f"INSERT INTO users ({_USER_COLS}) VALUES ({marks})", astuple(user))
            if user.verified:  # verified at birth (Pro Santé Connect): its number is its own
                _check_number_free(c, user.id, None)
            c.executemany(
                "INSERT INTO consents (user_id, document, version, accepted_at) VALUES (?,?,?,?)",
                [(user.id, k.document, k.version, now) for k in consents],
            )
            if code is not None:
                c.execute(
                    "INSERT INTO email_codes (user_id, email, code_hash, expires_at, created_at)"
                    " VALUES (?,?,?,?,?)",
                    (user.id, code.email, code.code_hash, code.expires_at, now),
                )
            if regulator_link is not None:
                spent = c.execute(
                    "UPDATE regulator_links SET used_at=?, user_id=?"
                    " WHERE id=? AND used_at IS NULL AND email=?",
                    (now, user.id, regulator_link, user.email),
                )
                if spent.rowcount != 1:
                    raise LinkUnusable("this sign-up link was used already")
                c.execute(
                    "INSERT INTO user_roles (user_id, role, granted_at) VALUES (?, 'regulator', ?)",
                    (user.id, now),
                )
            insert_notifications(c, notifications, now)

        await self._write("create_account", tx)
        return user

    async def replace_email_code(
        self, user_id: str, code: EmailCode, notifications: Sequence[NewNotification], now: int
    ) -> None:
        def tx(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO email_codes (user_id, email, code_hash, expires_at, created_at)"
                " VALUES (?,?,?,?,?) ON CONFLICT (user_id) DO UPDATE SET email=excluded.email,"
                " code_hash=excluded.code_hash, expires_at=excluded.expires_at, attempts=0,"
                " created_at=excluded.created_at",
                (user_id, code.email, code.code_hash, code.expires_at, now),
            )
            insert_notifications(c, notifications, now)

        await self._write("replace_email_code", tx)

    async def check_email_code(
        self,
        user_id: str,
        matches: Callable[[EmailCode], bool],
        now: int,
        max_attempts: int,
        max_failures: int = MAX_CODE_FAILURES,
    ) -> CodeCheck:
        def tx(c: sqlite3.Connection) -> CodeCheck:
            row = c.execute(
                "SELECT email, code_hash, expires_at, attempts, failures FROM email_codes"
                " WHERE user_id=?",
                (user_id,),
            ).fetchone()
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
                c.execute(
                    "UPDATE email_codes SET attempts = attempts + 1, failures = failures + 1"
                    " WHERE user_id=?",
                    (user_id,),
                )
                return "wrong"
            c.execute("DELETE FROM email_codes WHERE user_id=?", (user_id,))
            c.execute("UPDATE users SET email_confirmed=1 WHERE id=? AND email=?", (user_id, email))
            return "confirmed"

        return await self._write("check_email_code", tx)

    async def consents_of(self, user_id: str) -> list[tuple[Consent, int]]:
        def q(c: sqlite3.Connection) -> list[tuple[Consent, int]]:
            rows = c.execute(
                "SELECT document, version, accepted_at FROM consents WHERE user_id=?"
                " ORDER BY accepted_at, document",
                (user_id,),
            )
            return [(Consent(d, v), at) for d, v, at in rows]

        return await self._read("consents_of", q)

    # -- Pro Santé Connect

    async def create_psc_flow(
        self, state_hash: bytes, user_id: str, now: int, expires_at: int
    ) -> None:
        def tx(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM psc_flows WHERE expires_at <= ?", (now,))
            c.execute(
                "INSERT INTO psc_flows (state_hash, user_id, created_at, expires_at)"
                " VALUES (?,?,?,?)",
                (state_hash, user_id, now, expires_at),
            )

        await self._write("create_psc_flow", tx)

    async def take_psc_flow(self, state_hash: bytes, now: int) -> str | None:
        def tx(c: sqlite3.Connection) -> str | None:
            row = c.execute(
                "DELETE FROM psc_flows WHERE state_hash=? RETURNING user_id, expires_at",
                (state_hash,),
            ).fetchone()
            if row is None or row[1] <= now:
                return None
            return str(row[0])

        return await self._write("take_psc_flow", tx)

    async def mark_identity_verified(
        self,
        user_id: str,
        number: str | None,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> User:
        def tx(c: sqlite3.Connection) -> User:
            _check_number_free(c, user_id, number)
            c.execute(
                "UPDATE users SET verified=1, rpps=coalesce(rpps, ?) WHERE id=?",
                (number, user_id),
            )
            user = _user_by_id(c, user_id)
            insert_notifications(c, notifications, now)
            return user

        return await self._write("mark_identity_verified", tx)

    # -- manual review

    async def create_identity_document(self, doc: IdentityDocument) -> None:
        await self._write(
            "create_identity_document",
            lambda c: c.execute(
                f"INSERT INTO identity_documents ({_DOC_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
                astuple(doc),
            ),
        )

    async def complete_identity_document(self, doc_id: str, size: int) -> list[str]:
        def tx(c: sqlite3.Connection) -> list[str]:
            row = c.execute(
                "UPDATE identity_documents SET state='ready', size=?, staged=1"
                " WHERE id=? AND state='uploading' RETURNING user_id, side",
                (size, doc_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"no upload {doc_id}")
            replaced = c.execute(
                "UPDATE identity_documents SET staged=0 WHERE user_id=? AND side=? AND staged=1"
                " AND request_id IS NULL AND id<>? RETURNING id",
                (row[0], row[1], doc_id),
            ).fetchall()
            return [r[0] for r in replaced]

        return await self._write("complete_identity_document", tx)

    async def delete_identity_document(self, doc_id: str) -> None:
        await self._write(
            "delete_identity_document",
            lambda c: c.execute("DELETE FROM identity_documents WHERE id=?", (doc_id,)),
        )

    async def staged_documents(self, user_id: str) -> list[IdentityDocument]:
        def q(c: sqlite3.Connection) -> list[IdentityDocument]:
            rows = c.execute(
                f"SELECT {_DOC_COLS} FROM identity_documents WHERE user_id=? AND staged=1"
                " AND request_id IS NULL ORDER BY side",
                (user_id,),
            )
            return [_doc(r) for r in rows]

        return await self._read("staged_documents", q)

    async def submit_identity_request(
        self, request: IdentityRequest, sides: Sequence[str]
    ) -> IdentityRequest:
        def tx(c: sqlite3.Connection) -> IdentityRequest:
            user = _user_by_id(c, request.user_id)
            if user.verified:
                raise Conflict("this account is verified already")
            pending = c.execute(
                "SELECT 1 FROM identity_requests WHERE user_id=? AND state='pending'",
                (request.user_id,),
            ).fetchone()
            if pending:
                raise Conflict("a verification request is pending already")
            c.execute(
                f"INSERT INTO identity_requests ({_REQ_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                astuple(request),
            )
            for side in sides:
                moved = c.execute(
                    "UPDATE identity_documents SET request_id=?, staged=0 WHERE user_id=?"
                    " AND side=? AND staged=1 AND request_id IS NULL",
                    (request.id, request.user_id, side),
                )
                if moved.rowcount != 1:
                    raise NotFound(f"no '{side}' document uploaded")
            return request

        return await self._write("submit_identity_request", tx)

    async def identity_request(self, request_id: str) -> IdentityRequest | None:
        def q(c: sqlite3.Connection) -> IdentityRequest | None:
            row = c.execute(
                f"SELECT {_REQ_COLS} FROM identity_requests WHERE id=?", (request_id,)
            ).fetchone()
            return None if row is None else _req(row)

        return await self._read("identity_request", q)

    async def identity_requests_of(self, user_id: str) -> list[IdentityRequest]:
        def q(c: sqlite3.Connection) -> list[IdentityRequest]:
            rows = c.execute(
                f"SELECT {_REQ_COLS} FROM identity_requests WHERE user_id=?"
                " ORDER BY created_at DESC, id DESC",
                (user_id,),
            )
            return [_req(r) for r in rows]

        return await self._read("identity_requests_of", q)

    async def pending_identity_requests(self, limit: int) -> list[tuple[IdentityRequest, User]]:
        user_cols = ", ".join(f"u.{f}" for f in _USER_FIELDS)

        def q(c: sqlite3.Connection) -> list[tuple[IdentityRequest, User]]:
            rows = c.execute(
                f"SELECT {_REQ_COLS_R}, {user_cols} FROM identity_requests r"
                " JOIN users u ON u.id = r.user_id WHERE r.state='pending'"
                " ORDER BY r.created_at, r.id LIMIT ?",
                (limit,),
            )
            n = len(fields(IdentityRequest))
            return [(_req(r[:n]), _user(r[n:])) for r in rows]

        return await self._read("pending_identity_requests", q)

    async def documents_of_request(self, request_id: str) -> list[IdentityDocument]:
        def q(c: sqlite3.Connection) -> list[IdentityDocument]:
            rows = c.execute(
                f"SELECT {_DOC_COLS} FROM identity_documents WHERE request_id=? ORDER BY side",
                (request_id,),
            )
            return [_doc(r) for r in rows]

        return await self._read("documents_of_request", q)

    async def identity_document(self, doc_id: str) -> IdentityDocument | None:
        def q(c: sqlite3.Connection) -> IdentityDocument | None:
            row = c.execute(
                f"SELECT {_DOC_COLS} FROM identity_documents WHERE id=?", (doc_id,)
            ).fetchone()
            return None if row is None else _doc(row)

        return await self._read("identity_document", q)

    async def decide_identity_request(
        self,
        request_id: str,
        state: str,
        reviewer_id: str,
        reason: str | None,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> tuple[IdentityRequest, User]:
        def tx(c: sqlite3.Connection) -> tuple[IdentityRequest, User]:
            row = c.execute(
                "UPDATE identity_requests SET state=?, decided_at=?, decided_by=?, reason=?"
                f" WHERE id=? AND state='pending' RETURNING {_REQ_COLS}",
                (state, now, reviewer_id, reason, request_id),
            ).fetchone()
            if row is None:
                exists = c.execute(
                    "SELECT 1 FROM identity_requests WHERE id=?", (request_id,)
                ).fetchone()
                if exists is None:
                    raise NotFound(f"no request {request_id}")
                raise Conflict("this request was decided already")
            decided = _req(row)
            if state == "approved":
                _check_number_free(c, decided.user_id, None)
                c.execute("UPDATE users SET verified=1 WHERE id=?", (decided.user_id,))
            insert_notifications(c, notifications, now)
            return decided, _user_by_id(c, decided.user_id)

        return await self._write("decide_identity_request", tx)

    async def expired_identity_documents(
        self, decided_before: int, staged_before: int, limit: int
    ) -> list[str]:
        def tx(c: sqlite3.Connection) -> list[str]:
            c.execute(
                "UPDATE identity_documents SET staged=0"
                " WHERE staged=1 AND request_id IS NULL AND created_at < ?",
                (staged_before,),
            )
            rows = c.execute(
                "SELECT d.id FROM identity_documents d"
                " JOIN identity_requests r ON r.id = d.request_id"
                " WHERE r.state <> 'pending' AND r.decided_at < ?"
                " UNION ALL SELECT id FROM identity_documents WHERE request_id IS NULL"
                " AND ((state='ready' AND staged=0) OR (state='uploading' AND created_at < ?))"
                " LIMIT ?",
                (decided_before, staged_before, limit),
            )
            return [r[0] for r in rows]

        return await self._write("expired_identity_documents", tx)

    async def forget_identity_documents(self, doc_ids: Sequence[str], now: int) -> None:
        def tx(c: sqlite3.Connection) -> None:
            for doc_id in doc_ids:
                row = c.execute(
                    "DELETE FROM identity_documents WHERE id=? RETURNING request_id", (doc_id,)
                ).fetchone()
                if row is None or row[0] is None:
                    continue
                c.execute(
                    "UPDATE identity_requests SET documents_deleted_at=? WHERE id=?"
                    " AND documents_deleted_at IS NULL AND NOT EXISTS"
                    " (SELECT 1 FROM identity_documents WHERE request_id=?)",
                    (now, row[0], row[0]),
                )

        await self._write("forget_identity_documents", tx)

    # -- regulator links

    async def create_regulator_link(self, link: RegulatorLink) -> None:
        await self._write(
            "create_regulator_link",
            lambda c: c.execute(
                f"INSERT INTO regulator_links ({_LINK_COLS}) VALUES (?,?,?,?,?,?)", astuple(link)
            ),
        )

    async def regulator_link(self, link_id: str) -> RegulatorLink | None:
        def q(c: sqlite3.Connection) -> RegulatorLink | None:
            row = c.execute(
                f"SELECT {_LINK_COLS} FROM regulator_links WHERE id=?", (link_id,)
            ).fetchone()
            return None if row is None else RegulatorLink(*row)

        return await self._read("regulator_link", q)
