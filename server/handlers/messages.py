"""Handlers of the message frames: send, sync, read, typing, to_device, to_device.ack,
msg.delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from protocol import encode
from protocol.errors import ErrorCode
from protocol.frames import (
    Ack,
    Batch,
    Event,
    MsgDelete,
    Read,
    Send,
    Sync,
    ToDevice,
    ToDeviceAck,
    ToDeviceMsg,
    Typing,
)
from protocol.limits import DELETE_WINDOW_MS, EDIT_WINDOW_MS
from storage import GroupCommit
from storage.base import RoomStore, TimelineStore, ToDeviceStore, UserStore
from storage.group_commit import Flush
from storage.types import AppendResult, NewMessage, ReadMark

from ..clock import now_ms
from ..errors import ApiError
from ..hub import Hub, ItemPublication
from ..notifications import Notifications
from ..wire import item_frame
from .context import Caller, Services, require_member

__all__ = [
    "Outgoing",
    "SendCommitter",
    "commit_and_publish",
    "outgoing",
    "send_ack",
    "on_msg_delete",
    "on_read",
    "on_send",
    "on_sync",
    "on_to_device",
    "on_to_device_ack",
    "on_typing",
]


class MessagePorts(UserStore, RoomStore, TimelineStore, ToDeviceStore, Protocol):
    """What messages uses of the store."""


_REFUSALS = {
    "not_member": (ErrorCode.FORBIDDEN, "not a member of this room"),
    "closed": (ErrorCode.FORBIDDEN, "this patient case is closed: it is read-only"),
    "cid_reused": (ErrorCode.CONFLICT, "this cid was already used in another room"),
    "attachment_missing": (ErrorCode.NOT_FOUND, "no such attachment (or not uploaded yet)"),
    "attachment_forbidden": (
        ErrorCode.FORBIDDEN,
        "an attachment of a message must be uploaded by its sender to its room",
    ),
    "edit_missing": (ErrorCode.NOT_FOUND, "no such message to edit (or it was deleted)"),
    "edit_forbidden": (
        ErrorCode.FORBIDDEN,
        "only its author edits a message, within 48 hours of sending it",
    ),
}
_DELETE_REFUSALS = {
    "not_member": _REFUSALS["not_member"],
    "closed": _REFUSALS["closed"],
    "missing": (ErrorCode.NOT_FOUND, "no such message (or it was already deleted)"),
    "forbidden": (
        ErrorCode.FORBIDDEN,
        "only its author (within 48 hours) or a room admin deletes a message",
    ),
}


# What a send queues for the committer: the message, and who it mentions (for offline
# pushes in muted rooms; never stored).
Outgoing = tuple[NewMessage, tuple[str, ...]]
SendCommitter = GroupCommit[Outgoing, AppendResult]


def commit_and_publish(
    append: Callable[[Sequence[NewMessage]], Awaitable[list[AppendResult]]],
    hub: Hub,
    notifications: Notifications | None,
) -> Flush[Outgoing, AppendResult]:
    """The send committer's flush: one transaction for the batch, then its fan-out (in
    seq order, the broker waited on once), then offline pushes. It runs in the
    committer's task: a sender that disconnects once its message is queued has it
    stored and fanned out all the same (else the other members would see it only at
    their next catch-up; the load test's churn found such holes)."""

    async def flush(batch: Sequence[Outgoing]) -> list[AppendResult]:
        results = await append([message for message, _ in batch])
        publications: list[ItemPublication] = []
        for (m, mentions), result in zip(batch, results, strict=True):
            item = result.item
            if item is None:
                continue
            # A retried cid is fanned out again: its first fan-out may never have
            # happened (the node died between commit and publication, or the commit's
            # outcome was unknown). Members who have it drop it by seq; without it, an
            # online member would not see the message until the room's next one.
            publications.append(
                (m.room_id, encode(item_frame(item)), item.seq, m.device, result.duplicate)
            )
            # Offline members get one push per new message; an edit wakes nobody.
            if notifications is not None and not result.duplicate and m.edits is None:
                notifications.push.message_committed(m.room_id, m.sender, mentions)
        await hub.publish_items(publications)
        return results

    return flush


def outgoing(caller: Caller, f: Send) -> Outgoing:
    """What the committer gets for a send (the caller's membership already checked)."""
    now = now_ms()
    message = NewMessage(
        f.room,
        caller.user_id,
        caller.device_id,
        f.cid,
        f.body,
        now,
        f.att or (),
        f.edits,
        0 if f.edits is None else now - EDIT_WINDOW_MS,
    )
    return message, f.mentions or ()


def send_ack(f: Send, result: AppendResult) -> Ack:
    """The answer to a send, once committed (or refused in the transaction)."""
    if result.refused is not None:
        code, message = _REFUSALS[result.refused]
        raise ApiError(code, message)
    item = result.item
    assert item is not None
    return Ack(f.id, seq=item.seq, ts=item.ts)


async def on_send(svc: Services[MessagePorts], caller: Caller, f: Send) -> Ack:
    """Durable commit, then fan-out, then ack. A retried cid gets the original seq.

    The attachments named by ``att`` are checked (ready, the sender's, this room's) and
    marked referenced inside the transaction that stores the message (group commit):
    the message is stored with its references, or not at all. (The gateway takes a
    shorter road to the same calls for the common case: see ``Connection._send``.)"""
    await require_member(svc, caller, f.room)
    return send_ack(f, await svc.committer.append(outgoing(caller, f)))


async def on_msg_delete(svc: Services[MessagePorts], caller: Caller, f: MsgDelete) -> Ack:
    """Delete for everyone (SPEC.md §4.20): the store checks who may, drops the
    ciphertext of the message and its edits, and appends ``msg.deleted``, which goes to
    the room like any timeline event (devices offline now get it by ``sync``)."""
    await require_member(svc, caller, f.room)
    now = now_ms()
    result = await svc.store.delete_message(
        f.room, f.seq, caller.user_id, now, now - DELETE_WINDOW_MS
    )
    if result.item is None:
        code, message = _DELETE_REFUSALS[result.refused or "missing"]
        raise ApiError(code, message)
    await svc.hub.publish_item(f.room, encode(item_frame(result.item)), result.item.seq)
    return Ack(f.id, seq=result.item.seq)


async def on_sync(svc: Services[MessagePorts], caller: Caller, f: Sync) -> Batch:
    await require_member(svc, caller, f.room)
    items = await svc.store.timeline(f.room, f.after, f.limit + 1)
    more = len(items) > f.limit
    return Batch(f.id, f.room, tuple(item_frame(i) for i in items[: f.limit]), more)


async def on_read(svc: Services[MessagePorts], caller: Caller, f: Read) -> Ack:
    await require_member(svc, caller, f.room)
    # Group-committed like sends: acked once the batch holding it committed (the
    # committer hands what it raised to the room's announcer: server/receipts.py).
    result = await svc.receipts.append(ReadMark(f.room, caller.user_id, f.seq))
    return Ack(f.id, seq=result.upto)


async def on_typing(svc: Services[MessagePorts], caller: Caller, f: Typing) -> Ack:
    await require_member(svc, caller, f.room)
    notice = Event(kind="typing", room=f.room, user=caller.user_id, on=f.on, ts=now_ms())
    await svc.hub.publish_ephemeral(f.room, encode(notice), skip=caller.device_id)
    return Ack(f.id)


async def on_to_device(svc: Services[MessagePorts], caller: Caller, f: ToDevice) -> Ack:
    """Queue for one device of a user the caller shares a room with (or of the caller)."""
    target = await svc.store.device(f.device)
    if target is None or target.user_id != f.user:
        raise ApiError(ErrorCode.NOT_FOUND, "no such device for this user")
    if f.user != caller.user_id and not await svc.store.share_room(caller.user_id, f.user):
        raise ApiError(ErrorCode.FORBIDDEN, "you share no room with this user")
    ts = now_ms()
    tid = await svc.store.push_to_device(f.device, caller.user_id, caller.device_id, f.body, ts)
    frame = ToDeviceMsg(tid, caller.user_id, caller.device_id, ts, f.body)
    await svc.hub.publish_to_device(f.user, f.device, encode(frame))
    return Ack(f.id, tid=tid)


async def on_to_device_ack(svc: Services[MessagePorts], caller: Caller, f: ToDeviceAck) -> Ack:
    await svc.store.ack_to_device(caller.device_id, f.tids)
    return Ack(f.id)
