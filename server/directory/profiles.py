"""A practitioner's own directory row: made from their account the first time it is
needed: as soon as their identity is verified, by whatever path (Pro Santé Connect,
sign-up with the card, a reviewer's approval, an administrator, the command line), or
when they open their profile or agenda. SAS regulators are not practitioners: they get
no row."""

from __future__ import annotations

import contextlib
import logging

from storage.directory import DirectoryStore, NewProfile, Place, Profile
from storage.errors import Conflict, StorageError
from storage.ids import new_id
from storage.types import User

from ..clock import now_ms
from ..postcodes import locate_address

__all__ = ["ensure_profile", "on_identity_verified"]

log = logging.getLogger("confrere.directory")


async def ensure_profile(store: DirectoryStore, user: User) -> Profile:
    """The user's profile, created from their sign-up fields if missing. Its first
    place is their postcode and city, located when the directory knows them."""
    found = await store.profile_of_user(user.id)
    if found is not None:
        return found
    pid = new_id()
    locality = locate_address(user.postcode, user.city)
    places: tuple[Place, ...] = ()
    if locality is not None:
        name = f"Cabinet de {user.first_name} {user.last_name}"
        places = (
            Place(new_id(), pid, name, "", user.postcode, user.city, locality.lat, locality.lon),
        )
    with contextlib.suppress(Conflict):  # made meanwhile by another request
        await store.create_profile(
            NewProfile(
                id=pid,
                first_name=user.first_name,
                last_name=user.last_name,
                specialty=user.specialty,
                created_at=now_ms(),
                title="",
                rpps=user.rpps,
                user_id=user.id,
                places=places,
            )
        )
    made = await store.profile_of_user(user.id)
    assert made is not None
    return made


async def on_identity_verified(store: DirectoryStore, user: User) -> None:
    """What follows a verified identity, called by every path that verifies (PSC, the
    card or a link at sign-up, a reviewer's approval, an administrator, the command
    line): a practitioner gets their directory row without asking. The verification
    has committed: a refusal here is logged, not answered, and the row is made when
    they open their profile or agenda."""
    if user.profession == "regulator":
        return
    try:
        await ensure_profile(store, user)
    except StorageError:
        log.exception("directory row of %s not made at verification", user.id)
