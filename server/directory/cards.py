"""Who is who: the public card of a user, by user id, for the people allowed to see it.

A card (SPEC.md §9 "Profiles") is what a colleague shows next to a message or in a
member list: names, title, specialty, profession, the verified badge, and the public
parts of the directory profile (its id, organisations and places) when that profile is
visible in the directory. Names come from the account (the identity that was verified),
the rest from the directory row.

Who sees a card (least privilege): its owner; anyone who shares a room with the user
(current members); anyone else only if the user's directory profile is visible, i.e.
they could have found the user by searching the directory. Anyone else learns nothing,
not even whether the id exists.
"""

from __future__ import annotations

from typing import Any, Protocol

from storage.base import RoomStore, UserStore
from storage.directory import DirectoryStore
from storage.types import User

from ..openapi import Schema, array, boolean, nullable, obj, string
from .views import ORGANISATION, PLACE, organisation_json, place_json

__all__ = ["CARD", "card_for"]


class CardPorts(DirectoryStore, RoomStore, UserStore, Protocol):
    """What a card uses of the store."""


CARD: Schema = obj(
    {
        "user": string(),
        "first_name": string(),
        "last_name": string(),
        "title": string(),
        "specialty": string(),
        "profession": string(enum=("practitioner", "regulator")),
        "verified": boolean(),
        "directory": nullable(
            obj({"profile": string(), "organisations": array(ORGANISATION), "places": array(PLACE)})
        ),
    }
)


async def card_for(store: CardPorts, viewer: User, user_id: str) -> dict[str, Any] | None:
    """The card of ``user_id`` as ``viewer`` may see it, or ``None``."""
    user = viewer if user_id == viewer.id else await store.user_by_id(user_id)
    if user is None:
        return None
    profile = await store.profile_of_user(user.id)
    listed = profile is not None and profile.visible
    if not listed and user.id != viewer.id and not await store.share_room(viewer.id, user.id):
        return None
    return {
        "user": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "title": profile.title if profile is not None else "",
        "specialty": user.specialty,
        "profession": user.profession,
        "verified": user.verified,
        "directory": {
            "profile": profile.id,
            "organisations": [organisation_json(o) for o in profile.organisations],
            "places": [place_json(p) for p in profile.places],
        }
        if profile is not None and listed
        else None,
    }
