"""The authorization matrix: who may send each WebSocket frame and call each REST
route. ``tests/server/test_authorization_matrix.py`` checks the live server against
these tables, and ``docs/authorization.md`` is rendered from them
(``python tests/server/authz_table.py > docs/authorization.md``; the test fails when
the document is stale).

Outcomes: ``allow`` (past every access check: the request is handled, and may still
fail for another reason, e.g. ``not_found`` for an unknown device), or the error code
of the refusal (``unauthenticated``, ``identity_unverified``, ``forbidden``;
``not_found`` where existence must not be disclosed).
"""

from __future__ import annotations

import sys

KINDS = (
    "anonymous",
    "unverified",
    "guest",
    "member",
    "room_admin",
    "non_member",
    "reviewer",
    "regulator",
    "admin",
)

A, U, IU, F, N = "allow", "unauthenticated", "identity_unverified", "forbidden", "not_found"


def row(
    anonymous: str = U,
    unverified: str = IU,
    guest: str = IU,
    member: str = A,
    room_admin: str = A,
    non_member: str = F,
    reviewer: str | None = None,
    regulator: str | None = None,
    admin: str | None = None,
) -> dict[str, str]:
    """Platform roles default to the non-member's column: a role opens no room."""
    return {
        "anonymous": anonymous,
        "unverified": unverified,
        "guest": guest,
        "member": member,
        "room_admin": room_admin,
        "non_member": non_member,
        "reviewer": reviewer or non_member,
        "regulator": regulator or non_member,
        "admin": admin or non_member,
    }


ROOM_MEMBER = row()
ROOM_ADMIN = row(member=F)
ANY_VERIFIED = row(non_member=A)

# The room R: room_admin owns it; member is a member; guest's address is invited to
# it. "Another member" is a second plain member; "outsider" a verified user in no room.
WEBSOCKET: dict[str, tuple[str, dict[str, str]]] = {
    "send": ("a message to R", ROOM_MEMBER),
    "sync": ("R's timeline", ROOM_MEMBER),
    "read": ("a read receipt in R", ROOM_MEMBER),
    "typing": ("a typing notice in R", ROOM_MEMBER),
    "to_device": ("to a device of R's owner, with whom one shares R", ROOM_MEMBER),
    "to_device.ack": ("its own device's queue", ANY_VERIFIED),
    "msg.delete": ("another member's message in R (its author: within 48 h)", ROOM_ADMIN),
    "room.create": ("a new group with R's owner", ANY_VERIFIED),
    "room.get": ("R", ROOM_MEMBER),
    "room.settings": ("its own settings of R (muted, pinned…)", ROOM_MEMBER),
    "room.invite": ("the outsider into R", ROOM_ADMIN),
    "room.uninvite": ("the guest's pending invitation to R", ROOM_ADMIN),
    "room.leave": ("R", ROOM_MEMBER),
    "room.remove": ("another member of R", ROOM_ADMIN),
    "room.update": ("R's name", ROOM_ADMIN),
    "room.role": ("another member of R made admin", ROOM_ADMIN),
    "keys.upload": ("its own device's key bundle", ANY_VERIFIED),
    "keys.sign": ("a device of R's owner: its own only", ROOM_ADMIN),
    "keys.query": ("R's owner's devices", ANY_VERIFIED),
    "keys.report": ("a decryption failure in R", ROOM_MEMBER),
    "ping": ("", row(unverified=A, guest=A, non_member=A)),
}

PUBLIC = dict.fromkeys(KINDS, A)
SESSION = row(unverified=A, guest=A, non_member=A)
VERIFIED = ANY_VERIFIED
# An appointment: its booker (here R's owner) and its practitioner only; to anyone else
# it does not exist.
PARTIES = row(unverified=N, guest=N, member=N, non_member=N)
CONFIRMED = row(unverified=A, guest=F, non_member=A)  # a session whose address is confirmed


def role(name: str) -> dict[str, str]:
    """Only holders of the platform role ``name`` (the admin role does not include the
    others)."""
    return row(unverified=F, guest=F, member=F, room_admin=F, non_member=F, **{name: A})


# REST: "METHOD path" -> (on what, outcomes), one row per route of /openapi.json (the
# test fails on a route missing here). Ids in paths are unknown ones unless said.
REST: dict[str, tuple[str, dict[str, str]]] = {
    "GET /healthz": ("", PUBLIC),
    "GET /readyz": ("", PUBLIC),
    "GET /metrics": ("", PUBLIC),
    "POST /v1/accounts": ("sign-up", PUBLIC),
    "GET /v1/accounts/form": ("", PUBLIC),
    "POST /v1/accounts/psc/start": ("sign-up by Pro Santé Connect", PUBLIC),
    "GET /v1/accounts/psc": ("this browser's sign-up ticket", PUBLIC),
    "POST /v1/accounts/email/confirm": ("its own address", SESSION),
    "POST /v1/accounts/email/resend": ("its own address", SESSION),
    "POST /v1/sessions": ("log-in", PUBLIC),
    "DELETE /v1/sessions/current": ("its own session", SESSION),
    "GET /v1/sessions": ("its own", SESSION),
    "DELETE /v1/sessions/{session_id}": ("its own (404 for any other)", SESSION),
    "POST /v1/accounts/password": ("its own", SESSION),
    "POST /v1/accounts/password/forgot": ("a code to the address", PUBLIC),
    "POST /v1/accounts/password/reset": ("with the e-mailed code", PUBLIC),
    "GET /v1/push/config": ("", SESSION),
    "GET /v1/accounts/me/export": ("its own data", SESSION),
    "POST /v1/accounts/me/delete": ("its own account (with its password)", SESSION),
    "PUT /v1/push/subscription": ("its own device's", SESSION),
    "DELETE /v1/push/subscription": ("its own device's", SESSION),
    "GET /v1/keys/backup": ("its own account's", SESSION),
    "PUT /v1/keys/backup": ("its own account's", SESSION),
    "DELETE /v1/keys/backup": ("its own account's", SESSION),
    "GET /v1/keys/backup/entries": ("its own account's", SESSION),
    "POST /v1/keys/backup/entries": ("its own account's", SESSION),
    "GET /v1/me": ("", SESSION),
    "GET /v1/devices": ("its own", SESSION),
    "POST /v1/devices": ("its own", SESSION),
    "PATCH /v1/devices/{device_id}": ("R's owner's device (404 for any other)", PARTIES),
    "DELETE /v1/devices/{device_id}": ("R's owner's device (404 for any other)", PARTIES),
    "GET /v1/rooms": ("its own", SESSION),
    "POST /v1/attachments": ("a document into R", ROOM_MEMBER),
    "GET /v1/attachments/{attachment_id}": ("a document of R", ROOM_MEMBER),
    "GET /v1/attachments/{attachment_id}/meta": ("a document of R", ROOM_MEMBER),
    "DELETE /v1/attachments/{attachment_id}": (
        "a document R's owner uploaded",
        row(unverified=F, guest=F, member=F),
    ),
    "GET /v1/verification": ("its own", SESSION),
    "PUT /v1/verification/documents/{side}": ("its own; address confirmed", CONFIRMED),
    "POST /v1/verification/manual": ("its own; address confirmed", CONFIRMED),
    "POST /v1/verification/psc/start": ("its own; address confirmed", CONFIRMED),
    "GET /v1/verification/psc/callback": ("", PUBLIC),
    "GET /v1/review/requests": ("", role("reviewer")),
    "GET /v1/review/documents/{id}": ("", role("reviewer")),
    "POST /v1/review/requests/{id}/decision": ("", role("reviewer")),
    "POST /v1/regulator-links": ("", role("admin")),
    "GET /v1/admin/audit": ("", role("admin")),
    "PUT /v1/admin/users/{user_id}/verified": ("another user", role("admin")),
    "GET /v1/directory/search": ("", SESSION),
    "GET /v1/profiles": ("cards of users by id", SESSION),
    "GET /v1/directory/profiles/{profile_id}": ("", SESSION),
    "GET /v1/directory/profiles/{profile_id}/availability": ("", SESSION),
    "GET /v1/directory/favourites": ("its own", SESSION),
    "PUT /v1/directory/favourites/{profile_id}": ("its own", SESSION),
    "DELETE /v1/directory/favourites/{profile_id}": ("its own", SESSION),
    "GET /v1/directory/me": ("its own profile", VERIFIED),
    "PATCH /v1/directory/me": ("its own profile", VERIFIED),
    "GET /v1/agenda": ("its own", VERIFIED),
    "POST /v1/agenda/motives": ("its own", VERIFIED),
    "POST /v1/agenda/places": ("its own", VERIFIED),
    "POST /v1/agenda/slots": ("its own", VERIFIED),
    "POST /v1/referrals": ("", VERIFIED),
    "GET /v1/referrals": ("its own", SESSION),
    "GET /v1/referrals/{appointment_id}": ("one R's owner booked", PARTIES),
    "GET /v1/referrals/{appointment_id}/accesses": ("one R's owner booked", PARTIES),
    "GET /v1/referrals/{appointment_id}/documents/{attachment_id}": ("unknown ids", SESSION),
    "GET /v1/sas/slots": ("", role("regulator")),
    "POST /v1/sas/appointments": ("", role("regulator")),
}


def _cell(outcome: str) -> str:
    return "✅" if outcome == A else f"❌ `{outcome}`"


def render() -> str:
    out = [
        "# Authorization matrix\n",
        "Who may do what, checked against a live server by",
        "`tests/server/test_authorization_matrix.py` from the tables in",
        "`tests/server/authz_table.py` (this page is rendered from them: edit the table,",
        "then `python tests/server/authz_table.py > docs/authorization.md`).\n",
        "Callers: **anonymous** (no session); **unverified** (a session, identity not",
        "verified); **guest** (invited to the room by e-mail, signed up, address not",
        "confirmed yet: not a member); **member** of the room; **room_admin** (its owner);",
        "**non_member** (verified, not in the room); **reviewer**, **regulator**,",
        "**admin** (platform roles, verified, not in the room: a platform role opens no",
        "room). ✅: allowed past every access check (the request may still fail for",
        "another reason); ❌ with the error code of the refusal.\n",
        "## WebSocket frames (room R)\n",
        "| frame (on what) | " + " | ".join(KINDS) + " |",
        "|---|" + "---|" * len(KINDS),
    ]
    for frame, (what, outcomes) in WEBSOCKET.items():
        label = f"`{frame}`" + (f" ({what})" if what else "")
        out.append(f"| {label} | " + " | ".join(_cell(outcomes[k]) for k in KINDS) + " |")
    out += [
        "",
        "`hello` authenticates the connection: before it, every other frame is refused",
        "with `unauthenticated`.\n",
        "## REST routes\n",
        "| route (on what) | " + " | ".join(KINDS) + " |",
        "|---|" + "---|" * len(KINDS),
    ]
    for route, (what, outcomes) in sorted(REST.items(), key=lambda kv: kv[0].split()[::-1]):
        label = f"`{route}`" + (f" ({what})" if what else "")
        out.append(f"| {label} | " + " | ".join(_cell(outcomes[k]) for k in KINDS) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
