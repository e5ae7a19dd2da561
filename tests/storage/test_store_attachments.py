"""The store contract for attachment metadata (storage/base.py), on every adapter: the
life of an upload, referencing by messages inside the append transaction, and the
deletion claims that keep the orphan sweep from racing a message."""

from __future__ import annotations

import asyncio

from test_store_contract import msg, user

from storage import Store
from storage.types import NewAttachment, NewMessage

SHA = "ab" * 32


async def ready(store: Store, uploader: str, room: str | None, at: int = 100) -> str:
    new = NewAttachment(uploader, "chat", "image/png", at, room_id=room)
    created = await store.create_attachment(new)
    done = await store.complete_attachment(created.id, 1234, SHA)
    assert done is not None
    return created.id


def with_att(m: NewMessage, *ids: str) -> NewMessage:
    return NewMessage(m.room_id, m.sender, m.device, m.cid, m.body, m.ts, tuple(ids))


async def test_an_upload_goes_from_uploading_to_ready(store: Store) -> None:
    a = await user(store)
    room, _ = await store.create_room("group", a, [], b"G", None, 1)
    new = NewAttachment(a, "document", "application/pdf", 50, room_id=room.id, name="cr.pdf")
    created = await store.create_attachment(new)
    assert (created.state, created.size, created.sha256, created.referenced_at) == (
        "uploading",
        0,
        None,
        None,
    )
    assert await store.attachment(created.id) == created
    done = await store.complete_attachment(created.id, 52_428_800, SHA)
    assert done is not None
    assert (done.state, done.size, done.sha256, done.name, done.kind) == (
        "ready",
        52_428_800,
        SHA,
        "cr.pdf",
        "document",
    )
    assert await store.complete_attachment(created.id, 1, SHA) is None  # only once
    assert await store.attachment("no-such-attachment") is None
    other = await store.create_attachment(NewAttachment(a, "document", "image/png", 51))
    assert other.id != created.id and other.room_id is None


async def test_messages_reference_their_attachments_in_the_append(store: Store) -> None:
    a, b = await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], b"G", None, 1)
    other_room, _ = await store.create_room("group", a, [b], b"H", None, 1)
    mine = await ready(store, a, room.id)
    second = await ready(store, a, room.id)
    theirs = await ready(store, b, room.id)
    elsewhere = await ready(store, a, other_room.id)
    unfinished = await store.create_attachment(NewAttachment(a, "chat", "image/png", 5, room.id))
    out = await store.append_messages(
        [
            with_att(msg(room.id, a, "da", "c1"), "no-such-attachment"),
            with_att(msg(room.id, a, "da", "c2"), unfinished.id),
            with_att(msg(room.id, a, "da", "c3"), mine, theirs),
            with_att(msg(room.id, a, "da", "c4"), elsewhere),
            with_att(msg(room.id, a, "da", "c5"), mine, second, mine),
        ]
    )
    assert [r.refused for r in out] == [
        "attachment_missing",
        "attachment_missing",
        "attachment_forbidden",
        "attachment_forbidden",
        None,
    ]
    assert out[4].item is not None and out[4].item.seq == 2  # refusals took no seq
    for attachment_id in (mine, second):
        found = await store.attachment(attachment_id)
        assert found is not None and found.referenced_at == 5000
    for attachment_id in (theirs, elsewhere, unfinished.id):
        found = await store.attachment(attachment_id)
        assert found is not None and found.referenced_at is None
    # A retried send returns the original, whatever became of its attachments.
    await store.claim_attachment_deletion(mine, uploader=a)
    again = await store.append_messages([with_att(msg(room.id, a, "da", "c5"), mine)])
    assert again[0].duplicate and again[0].item == out[4].item


async def test_claims_decide_between_deleters_and_messages(store: Store) -> None:
    a, b = await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], b"G", None, 1)
    referenced = await ready(store, a, room.id, at=100)
    orphan = await ready(store, a, room.id, at=100)
    young = await ready(store, a, room.id, at=900)
    await store.append_messages([with_att(msg(room.id, a, "da", "c1"), referenced)])

    assert [x.id for x in await store.unreferenced_attachments(500, 10)] == [orphan]
    assert await store.claim_attachment_deletion(referenced, unreferenced_before=500) is None
    assert await store.claim_attachment_deletion(young, unreferenced_before=500) is None
    assert await store.claim_attachment_deletion(orphan, uploader=b) is None  # not b's
    claimed = await store.claim_attachment_deletion(orphan, unreferenced_before=500)
    assert claimed is not None and claimed.state == "deleting"
    # Once claimed, no message can reference it; claiming again retries a deletion.
    refused = await store.append_messages([with_att(msg(room.id, a, "da", "c2"), orphan)])
    assert refused[0].refused == "attachment_missing"
    assert await store.claim_attachment_deletion(orphan, unreferenced_before=500) is not None
    assert [x.id for x in await store.unreferenced_attachments(500, 10)] == [orphan]
    assert await store.delete_attachment(orphan)
    assert not await store.delete_attachment(orphan)
    assert await store.attachment(orphan) is None
    # The uploader may delete a referenced file too (the message then names a gone file).
    assert await store.claim_attachment_deletion(referenced, uploader=a) is not None


async def test_unreferenced_attachments_oldest_first_and_limited(store: Store) -> None:
    a = await user(store)
    ids = [await ready(store, a, None, at=at) for at in (30, 10, 20)]
    found = await store.unreferenced_attachments(25, 10)
    assert [x.id for x in found] == [ids[1], ids[2]]
    assert [x.id for x in await store.unreferenced_attachments(1000, 2)] == [ids[1], ids[2]]


async def test_concurrent_claim_and_reference_never_both_win(store: Store) -> None:
    """The orphan sweep and a send naming the same file race: either the message is
    stored and the file survives, or the file is claimed and the message refused."""
    a = await user(store)
    room, _ = await store.create_room("group", a, [], b"G", None, 1)
    for i in range(20):
        attachment_id = await ready(store, a, room.id, at=100)
        sent, claimed = await asyncio.gather(
            store.append_messages([with_att(msg(room.id, a, "da", f"race-{i}"), attachment_id)]),
            store.claim_attachment_deletion(attachment_id, unreferenced_before=500),
        )
        stored = sent[0].item is not None
        assert stored != (claimed is not None), (i, sent, claimed)
