"""Manual identity verification: the request's states and their transitions, in one
place (the reviewer routes and the store follow this table).

    pending ──approve──▶ approved      (the account becomes verified)
       └─────reject───▶ rejected       (with a reason; the user may submit again)

Invariants: a request is decided once; a user has at most one pending request; its
documents exist while it is pending and until ``decided_at + retention`` after, then
the retention sweep deletes them (``documents_deleted_at`` set). A request left
pending longer than :data:`OVERDUE_MS` is flagged to reviewers (the guide promises an
answer within 24 hours).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DOCUMENT_KINDS",
    "MAX_DOCUMENT_BYTES",
    "OVERDUE_MS",
    "REJECT_REASON_MAX",
    "SIDES",
    "Decision",
    "InvalidTransition",
    "State",
    "next_state",
    "required_sides",
]

State = Literal["pending", "approved", "rejected"]
Decision = Literal["approve", "reject"]

OVERDUE_MS = 24 * 3600 * 1000
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024  # a phone photo is 2 to 6 MB
REJECT_REASON_MAX = 500

# The guide: a passport (its photo page), or an identity card (front and back) with
# its issuing country; a selfie in both cases.
DOCUMENT_KINDS: dict[str, tuple[str, ...]] = {
    "passport": ("front", "selfie"),
    "id_card": ("front", "back", "selfie"),
}
SIDES = ("front", "back", "selfie")

_TRANSITIONS: dict[tuple[State, Decision], State] = {
    ("pending", "approve"): "approved",
    ("pending", "reject"): "rejected",
}


class InvalidTransition(ValueError):
    """The request is no longer pending: it was decided already."""


def next_state(state: State, decision: Decision) -> State:
    try:
        return _TRANSITIONS[(state, decision)]
    except KeyError:
        raise InvalidTransition(f"a request {state} cannot be decided again") from None


def required_sides(document: str) -> tuple[str, ...]:
    return DOCUMENT_KINDS[document]
