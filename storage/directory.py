"""The practitioner directory, agendas, favourites and referral booking: records and
the :class:`DirectoryStore` port (each method one named transaction).

Guarantees every adapter gives (checked by ``tests/storage/test_directory_contract.py``):

- Search returns visible profiles only, ordered by ``(rank, sort_name, id)``; the
  ``cursor`` of a page is that triple for its last hit and the next page starts strictly
  after it (keyset pagination: stable while rows are added elsewhere).
- Text matching is on :func:`storage.search_text.normalise`'d words, each query word a
  prefix of an indexed word (AND); when nothing matches, words of 4 characters or more
  are replaced by the indexed name words within one edit of them (typo tolerance).
- ``rank`` = ``2 * tier + (0 if the profile has an account else 1)`` (+ distance /
  (radius + 1) when searching near a point), where tier is 0 when a query word is the
  last name, 1 when the last name starts with one, 2 when the first name does, 3 for a
  match elsewhere (specialty, organisation, city); 0 without text.
- ``book`` is atomic: the slot is taken, the appointment stored, its attachments marked
  referenced and its notifications queued in one transaction; a slot already taken
  raises :class:`~storage.errors.Conflict` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .outbox import NewNotification

__all__ = [
    "CONSULTATION_TYPES",
    "DEFAULT_REQUIRED_FIELDS",
    "ORG_KINDS",
    "PATIENT_FIELDS",
    "SNP_MOTIVE",
    "Appointment",
    "DirectoryPage",
    "DirectoryQuery",
    "DirectoryStore",
    "Hit",
    "Motive",
    "NewAppointment",
    "NewProfile",
    "NewSlot",
    "Organisation",
    "Place",
    "Profile",
    "SasQuery",
    "SasSlot",
    "Slot",
]

SNP_MOTIVE = "Soins non programmés"
ORG_KINDS = ("hospital", "clinic", "msp", "laboratory", "health_centre", "cpts")
PATIENT_FIELDS = (
    "civility",
    "first_name",
    "last_name",
    "birth_name",
    "birth_date",
    "birth_place",
    "address",
    "postcode",
    "city",
    "phone",
    "email",
    "consulted_before",
)
DEFAULT_REQUIRED_FIELDS = ("first_name", "last_name", "birth_name", "birth_date", "phone")
CONSULTATION_TYPES = ("cabinet", "video")

Cursor = tuple[float, str, str]


@dataclass(frozen=True, slots=True)
class Organisation:
    """A hospital, clinic, MSP, laboratory, health centre or CPTS (``ORG_KINDS``)."""

    id: str
    kind: str
    name: str
    postcode: str
    city: str


@dataclass(frozen=True, slots=True)
class Place:
    """A place of consultation."""

    id: str
    profile_id: str
    name: str
    address: str
    postcode: str
    city: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class NewProfile:
    """A directory row. ``places[0]`` is the main place (its city is the one searched
    and its coordinates the ones "near" uses). ``organisations``: ids, CPTS included."""

    id: str
    first_name: str
    last_name: str
    specialty: str
    created_at: int
    title: str = "Dr"
    rpps: str | None = None
    user_id: str | None = None
    visible: bool = True
    organisations: tuple[str, ...] = ()
    places: tuple[Place, ...] = ()
    required_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result. ``verified`` is the linked account's ``users.verified``."""

    id: str
    user_id: str | None
    title: str
    first_name: str
    last_name: str
    specialty: str
    verified: bool
    postcode: str
    city: str
    organisations: tuple[Organisation, ...]
    distance_km: float | None
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    user_id: str | None
    title: str
    first_name: str
    last_name: str
    specialty: str
    rpps: str | None
    verified: bool
    visible: bool
    organisations: tuple[Organisation, ...]
    places: tuple[Place, ...]
    required_fields: tuple[str, ...]
    instructions: str = ""


@dataclass(frozen=True, slots=True)
class DirectoryQuery:
    """``words``: normalised query words (empty: no text filter). ``near``: (lat, lon)
    with ``radius_km``. ``organisation`` and ``cpts`` are organisation ids."""

    words: tuple[str, ...] = ()
    specialty: str | None = None
    organisation: str | None = None
    cpts: str | None = None
    near: tuple[float, float] | None = None
    radius_km: float = 10.0
    limit: int = 20
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    hits: list[Hit]
    next_cursor: Cursor | None
    corrected: tuple[str, ...] | None = None  # the words searched instead, after a typo


@dataclass(frozen=True, slots=True)
class Motive:
    id: str
    profile_id: str
    label: str
    duration_min: int

    @property
    def unscheduled_care(self) -> bool:
        """The SAS motive "Soins non programmés"."""
        return self.label == SNP_MOTIVE


@dataclass(frozen=True, slots=True)
class NewSlot:
    place_id: str
    starts_at: int
    ends_at: int
    motive_ids: tuple[str, ...]
    open_to_new_patients: bool = True
    bookable_online: bool = True


@dataclass(frozen=True, slots=True)
class Slot:
    """``sas_eligible``: open to new patients and bookable online, or carrying the
    motive "Soins non programmés" (SAS guide)."""

    id: str
    profile_id: str
    place_id: str
    starts_at: int
    ends_at: int
    motive_ids: tuple[str, ...]
    open_to_new_patients: bool
    bookable_online: bool
    unscheduled_care: bool
    appointment_id: str | None

    @property
    def sas_eligible(self) -> bool:
        return (self.open_to_new_patients and self.bookable_online) or self.unscheduled_care


@dataclass(frozen=True, slots=True)
class SasQuery:
    near: tuple[float, float]
    radius_km: float
    starts_from: int
    starts_before: int
    specialty: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class SasSlot:
    slot: Slot
    practitioner: Hit
    place: Place


@dataclass(frozen=True, slots=True)
class NewAppointment:
    """``via``: "referral" (a practitioner) or "sas" (a regulator). ``patient``: the
    checked patient fields. ``attachments``: ready documents uploaded by ``booked_by``."""

    id: str
    slot_id: str
    motive_id: str
    booked_by: str
    via: str
    patient: dict[str, Any]
    message: str
    attachments: tuple[str, ...]
    created_at: int
    consultation_type: str = "cabinet"


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    slot_id: str
    profile_id: str
    practitioner_user_id: str | None
    place_id: str
    motive_id: str
    starts_at: int
    ends_at: int
    booked_by: str
    via: str
    patient: dict[str, Any]
    message: str
    attachments: tuple[str, ...]
    created_at: int
    motive_label: str = ""
    consultation_type: str = "cabinet"
    extra: dict[str, Any] = field(default_factory=dict)


class DirectoryStore(Protocol):
    # -- loading
    async def load_directory(
        self,
        organisations: Sequence[Organisation],
        profiles: Sequence[NewProfile],
        motives: Sequence[Motive] = (),
        slots: Sequence[tuple[str, str, NewSlot]] = (),
    ) -> None:
        """Bulk insert (seed data): ``slots`` are ``(slot id, profile id, slot)``.
        Indexes that slow bulk loads are rebuilt by :meth:`finish_directory_load`."""

    async def finish_directory_load(self) -> None:
        """Build the search indexes after bulk loads and refresh planner statistics."""

    async def directory_size(self) -> int: ...

    # -- profiles
    async def create_profile(self, profile: NewProfile) -> None:
        """One profile (an account's). Raise Conflict if the id or user is taken."""

    async def link_profile(self, profile_id: str, user_id: str) -> None:
        """Give an unclaimed profile (a seeded or imported row) to an account. Raise
        NotFound if there is no such unclaimed profile, Conflict if the user has one."""

    async def profile(self, profile_id: str) -> Profile | None: ...

    async def profile_of_user(self, user_id: str) -> Profile | None: ...

    async def set_profile_visible(self, profile_id: str, visible: bool) -> None: ...

    async def set_required_fields(self, profile_id: str, fields: Sequence[str]) -> None: ...

    async def set_instructions(self, profile_id: str, text: str) -> None:
        """The text a booker reads before booking ("" for none)."""

    async def search_directory(self, query: DirectoryQuery) -> DirectoryPage: ...

    # -- favourites
    async def add_favourite(self, user_id: str, profile_id: str, now: int) -> None:
        """Idempotent; raise NotFound if the profile does not exist."""

    async def remove_favourite(self, user_id: str, profile_id: str) -> bool: ...

    async def favourites(self, user_id: str) -> list[Hit]:
        """Most recently added first; hidden profiles left out."""

    # -- agenda
    async def add_place(self, place: Place) -> None: ...

    async def add_motive(self, motive: Motive) -> None: ...

    async def add_slots(self, profile_id: str, slots: Sequence[tuple[str, NewSlot]]) -> None:
        """Raise NotFound if a slot names a place or motive not of this profile."""

    async def motives(self, profile_id: str) -> list[Motive]: ...

    async def slots(
        self, profile_id: str, starts_from: int, starts_before: int, free_only: bool
    ) -> list[Slot]:
        """Ascending by start."""

    async def slot(self, slot_id: str) -> Slot | None: ...

    async def sas_slots(self, query: SasQuery) -> list[SasSlot]:
        """Free SAS-eligible slots of visible practitioners within the radius and time
        window, soonest first."""

    # -- booking
    async def book(
        self, new: NewAppointment, notifications: Sequence[NewNotification], now: int
    ) -> Appointment:
        """Raise Conflict if the slot is taken; NotFound if the slot or motive does not
        exist (or the motive is not the slot's), or an attachment is not a ready
        document of ``booked_by``."""

    async def appointment(self, appointment_id: str) -> Appointment | None: ...

    async def appointments_of_practitioner(
        self, profile_id: str, starts_from: int, starts_before: int
    ) -> list[Appointment]: ...

    async def appointments_booked_by(self, user_id: str, limit: int) -> list[Appointment]:
        """Newest first."""

    async def record_patient_access(self, appointment_id: str, user_id: str, now: int) -> None:
        """Audit: who read which patient record, when."""

    async def patient_accesses(self, appointment_id: str) -> list[tuple[str, int]]:
        """``(user id, at)`` oldest first."""
