"""Cross-signing and device management (what the store offers; SPEC.md §4.16, §9).

- A user has at most one identity key (its signed record, verified by the caller): the
  first one stored stays until replaced with ``reset``, which also drops every device
  signature of the user (they were made by the old key).
- A device signature is stored with the device's bundle and only with it: it goes when
  the bundle changes (:meth:`KeyStore.put_device_keys`) or when the identity is reset.
- Revoking a device, in one transaction: it is marked revoked (its row stays: ids in
  timelines name it; ``device``/``devices_of`` no longer return it), its sessions, key
  bundle, push subscription and queued to-device messages go, and a ``device.revoked``
  event is written in every room of its user, so members' clients move to new sender
  keys. The deleted sessions' hashes and the events are returned (to close the
  connections and fan the events out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .types import Device, TimelineItem

__all__ = ["DeviceStore", "IdentityKey", "RevokedDevice"]


@dataclass(frozen=True, slots=True)
class IdentityKey:
    user_id: str
    record: bytes  # protocol/crypto/identity.py: the self-signed identity record
    updated_at: int


@dataclass(frozen=True, slots=True)
class RevokedDevice:
    device: Device
    sessions: list[bytes]  # the token hashes of its sessions, now deleted
    events: list[TimelineItem]  # one device.revoked event per room of its user


class DeviceStore(Protocol):
    async def put_identity(self, user_id: str, record: bytes, now: int, *, reset: bool) -> bool:
        """Store ``record`` as the user's identity key if the user has none (or the same
        one: nothing changes); a different one only with ``reset`` (dropping the user's
        device signatures). Return False, changing nothing, if a different one is stored
        and ``reset`` is not set."""

    async def identities(self, user_ids: Sequence[str]) -> list[IdentityKey]:
        """The identity records of those users who have one, ordered by user id."""

    async def sign_device(
        self, user_id: str, device_id: str, bundle: bytes, signature: bytes, now: int
    ) -> bool:
        """Store the (verified) ``signature`` of ``user_id``'s device ``device_id`` if its
        stored bundle is still ``bundle``; whether it was stored."""

    async def touch_devices(self, seen: Mapping[str, int]) -> None:
        """Record when each device was last seen (device id -> ms; a hello of one of its
        sessions), in one transaction; revoked or unknown devices are left alone."""

    async def rename_device(self, user_id: str, device_id: str, name: str) -> Device | None:
        """Rename one of the user's (unrevoked) devices; ``None`` if there is no such."""

    async def revoke_device(self, user_id: str, device_id: str, now: int) -> RevokedDevice | None:
        """Revoke one of the user's devices (see the module doc); ``None`` if the user
        has no such unrevoked device."""
