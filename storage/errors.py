"""Exceptions of the storage layer: one hierarchy, told apart by class, never by text.

StorageError                 root
├── NotFound                 the row named does not exist
│   ├── NoSuchRoom
│   ├── NoSuchUser           (also: no such device of this user)
│   ├── NoSuchProfile        a directory profile (or an unclaimed one, to link)
│   ├── NoSuchSlot
│   ├── NoSuchOrganisation
│   ├── SlotPartNotOwned     a new slot names a place or a motive that is not its
│   │                        practitioner's
│   ├── MotiveNotOffered     a booking names a motive the slot does not offer
│   ├── UnusableAttachment   a booking names a file that is not a ready document of
│   │                        the booker's
│   ├── NoSuchDocument       a verification photo (not uploaded, or gone meanwhile)
│   └── NoSuchRequest        a verification request
├── Conflict                 the write is refused by what is already there
│   ├── ConstraintViolated   a database rule (unique, foreign key, append-only)
│   │                        refused it: raised by the engine, the same on both
│   ├── EmailTaken
│   ├── SlotTaken
│   ├── NumberTaken          one RPPS/ADELI number verifies one account
│   ├── LinkUnusable         a regulator sign-up link used already, or unknown
│   ├── AlreadyVerified
│   ├── RequestPending       a verification request is pending already
│   ├── AlreadyDecided       this verification request was decided already
│   └── RoomBeingCreated     the pair's direct room is being created by another node
├── BadValue                 a value no column can hold (a NUL in a text, an integer
│                            beyond 64 bits): refused by both engines alike
└── Unavailable              the database could not be reached or the commit failed

The server maps each to its answer in one place (``server/errors.py``,
``from_storage``). Messages are for logs; the class is the meaning.
"""

from __future__ import annotations

__all__ = [
    "AlreadyDecided",
    "AlreadyVerified",
    "BackupFull",
    "BackupReplaced",
    "BadValue",
    "Conflict",
    "ConstraintViolated",
    "EmailTaken",
    "LinkUnusable",
    "MotiveNotOffered",
    "NoSuchBackup",
    "NoSuchDocument",
    "NoSuchOrganisation",
    "NoSuchProfile",
    "NoSuchRequest",
    "NoSuchRoom",
    "NoSuchSlot",
    "NoSuchUser",
    "NotFound",
    "NumberTaken",
    "RequestPending",
    "SlotPartNotOwned",
    "RoomBeingCreated",
    "SlotTaken",
    "StorageError",
    "Unavailable",
    "UnusableAttachment",
]


class StorageError(Exception):
    """Root of the exceptions raised by :mod:`storage`."""


class NotFound(StorageError):
    pass


class NoSuchRoom(NotFound):
    pass


class NoSuchUser(NotFound):
    pass


class NoSuchProfile(NotFound):
    pass


class NoSuchSlot(NotFound):
    pass


class NoSuchOrganisation(NotFound):
    pass


class SlotPartNotOwned(NotFound):
    pass


class MotiveNotOffered(NotFound):
    pass


class UnusableAttachment(NotFound):
    pass


class NoSuchDocument(NotFound):
    pass


class NoSuchRequest(NotFound):
    pass


class NoSuchBackup(NotFound):
    """The account has no key backup."""


class Conflict(StorageError):
    pass


class ConstraintViolated(Conflict):
    pass


class EmailTaken(Conflict):
    pass


class SlotTaken(Conflict):
    pass


class NumberTaken(Conflict):
    """Another verified account has this RPPS/ADELI number: one number verifies one
    account (checked in the verifying transaction)."""


class LinkUnusable(Conflict):
    """The regulator link was used already, or is unknown to the store."""


class AlreadyVerified(Conflict):
    pass


class RequestPending(Conflict):
    pass


class AlreadyDecided(Conflict):
    pass


class RoomBeingCreated(Conflict):
    pass


class BackupReplaced(Conflict):
    """The key backup named is no longer the account's (a device made a new one)."""


class BackupFull(StorageError):
    """The key backup holds as many entries as it may."""


class BadValue(StorageError):
    pass


class Unavailable(StorageError):
    pass
