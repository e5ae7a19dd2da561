"""Each member's own settings of a room (SPEC.md §4.21), on every adapter: defaults,
partial changes, what ``rooms_of`` (the welcome) and ``membership`` return, the quiet
members offline push asks for, and nothing for a non-member."""

from __future__ import annotations

from test_store_contract import user

from storage import Store


async def test_settings_are_per_member_and_change_field_by_field(store: Store) -> None:
    a, b = await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], None, None, 1)
    mine = await store.membership(room.id, a)
    assert mine is not None
    assert (mine.notify, mine.archived, mine.pinned, mine.unread) == ("all", False, False, False)

    changed = await store.set_room_settings(room.id, a, notify="mentions", pinned=True)
    assert changed is not None and changed.role == "owner"
    assert (changed.notify, changed.archived, changed.pinned, changed.unread) == (
        "mentions",
        False,
        True,
        False,
    )
    again = await store.set_room_settings(room.id, a, archived=True, unread=True, pinned=False)
    assert again is not None
    assert (again.notify, again.archived, again.pinned, again.unread) == (
        "mentions",
        True,
        False,
        True,
    )
    [(listed_room, listed)] = await store.rooms_of(a)
    assert listed_room.id == room.id and listed == again
    other = await store.membership(room.id, b)
    assert other is not None and (other.notify, other.archived, other.unread) == (
        "all",
        False,
        False,
    )

    await store.set_room_settings(room.id, b, notify="none")
    assert await store.quiet_members(room.id) == {a: "mentions", b: "none"}
    await store.set_room_settings(room.id, a, notify="all")
    assert await store.quiet_members(room.id) == {b: "none"}


async def test_no_settings_outside_the_room(store: Store) -> None:
    a, b, c = await user(store), await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], None, None, 1)
    assert await store.set_room_settings(room.id, c, pinned=True) is None
    assert await store.set_room_settings("no-room", a, pinned=True) is None
    # Leaving drops them with the membership.
    await store.set_room_settings(room.id, b, notify="none")
    await store.remove_member(room.id, b, b, "left", 2)
    assert await store.quiet_members(room.id) == {}
