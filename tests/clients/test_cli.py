"""The command-line client: profile file, state merging, line formatting, and the chat
loop against a real server, end-to-end encrypted through the SDK."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from clients.cli import (
    DEFAULT_SERVER,
    ChatSession,
    Profile,
    ProfileError,
    build_parser,
    config_dir,
    format_event,
    format_message,
    format_rooms,
    load_profile,
    merge_state,
    parse_members,
    printable,
    profile_from_dict,
    profile_path,
    profile_to_dict,
    resolve_server,
    save_profile,
    seed_state,
    short_id,
    state_after_login,
    stdin_lines,
)
from clients.python import (
    Account,
    Client,
    ClientClosed,
    ClientState,
    Decrypted,
    EncryptedClient,
    Undecryptable,
)
from harness import ServerUnderTest, practitioner
from protocol.crypto.attachment import AttachmentRef
from protocol.frames import Event, ReadMarker

ALICE = "AAAAAAAAaaaaaaaa"
BOB = "BBBBBBBBbbbbbbbb"


def account(**changes: str) -> Account:
    fields = {
        "base_url": "http://127.0.0.1:8000",
        "token": "secret-token",
        "user_id": ALICE,
        "device_id": "dev-1",
        "email": "alice@example.fr",
    }
    fields.update(changes)
    return Account(**fields)


def msg(seq: int, text: str, sender: str = BOB, room: str = "r1") -> Decrypted:
    return Decrypted(room, seq, sender, "dev-b", 1_700_000_000_000, text)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "confrere-home"
    monkeypatch.setenv("CONFRERE_HOME", str(directory))
    return directory


# ---------------------------------------------------------------- profile file


def test_profile_round_trip(home: Path) -> None:
    state = ClientState(last_seq={"r1": 7, "r2": 0}, to_device_unacked={12, 3})
    profile = Profile(account(), state)
    path = save_profile("default", profile)
    assert path == home / "default.json"
    loaded = load_profile("default")
    assert loaded.account == profile.account
    assert loaded.state == profile.state


def test_profile_file_is_owner_only(home: Path) -> None:
    path = save_profile("default", Profile(account()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_profile_overwrite_stays_owner_only(home: Path) -> None:
    home.mkdir()
    path = home / "work.json"
    path.write_text("{}")
    path.chmod(0o644)
    save_profile("work", Profile(account(token="new")))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_profile("work").account.token == "new"
    assert [p.name for p in home.iterdir()] == ["work.json"]  # no temporary file left


def test_profile_ignores_umask(home: Path) -> None:
    old = os.umask(0)
    try:
        path = save_profile("default", Profile(account()))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_profiles_are_separate(home: Path) -> None:
    save_profile("alice", Profile(account()))
    save_profile("bob", Profile(account(user_id=BOB, email="bob@example.fr")))
    assert load_profile("alice").account.user_id == ALICE
    assert load_profile("bob").account.user_id == BOB


def test_profile_file_is_plain_json(home: Path) -> None:
    path = save_profile("default", Profile(account(), ClientState({"r1": 2}, {9, 5, 7})))
    data = json.loads(path.read_text())
    assert data["account"] == {
        "base_url": "http://127.0.0.1:8000",
        "token": "secret-token",
        "user_id": ALICE,
        "device_id": "dev-1",
        "email": "alice@example.fr",
    }
    assert data["state"] == {"last_seq": {"r1": 2}, "to_device_unacked": [5, 7, 9]}


def test_missing_profile_says_to_log_in(home: Path) -> None:
    with pytest.raises(ProfileError, match="log in"):
        load_profile("default")


@pytest.mark.parametrize("text", ["not json", "[]", '{"account": {}}', '{"version": 99}'])
def test_malformed_profile_is_refused(home: Path, text: str) -> None:
    home.mkdir()
    (home / "default.json").write_text(text)
    with pytest.raises(ProfileError):
        load_profile("default")


@pytest.mark.parametrize(
    "state",
    [
        {"last_seq": {"r1": -1}},
        {"last_seq": {"r1": "3"}},
        {"last_seq": {"r1": True}},
        {"last_seq": []},
        {"to_device_unacked": 3},
        {"to_device_unacked": {"3": 1}},
        {"to_device_unacked": ["3"]},
        {"to_device_unacked": [-1]},
        {"to_device_unacked": [True]},
        {"to_device_unacked": [1.5]},
        {"to_device_unacked": None},
    ],
)
def test_malformed_state_is_refused(state: dict[str, Any]) -> None:
    data = profile_to_dict(Profile(account()))
    data["state"] = state
    with pytest.raises(ProfileError):
        profile_from_dict(data)


def test_profile_without_state_loads_empty_state() -> None:
    data = profile_to_dict(Profile(account()))
    del data["state"]
    assert profile_from_dict(data).state == ClientState()


def test_profile_without_unacked_ids_loads_an_empty_set() -> None:
    data = profile_to_dict(Profile(account()))
    data["state"] = {"last_seq": {"r1": 4}}
    assert profile_from_dict(data).state == ClientState({"r1": 4}, set())


@pytest.mark.parametrize("upto", [7, 0, "x", None])
def test_old_profile_with_to_device_upto_loads(upto: object) -> None:
    data = profile_to_dict(Profile(account()))
    data["state"] = {"last_seq": {"r1": 4}, "to_device_upto": upto}
    assert profile_from_dict(data).state == ClientState({"r1": 4}, set())


def test_old_profile_file_loads_and_is_saved_in_the_new_form(home: Path) -> None:
    old = profile_to_dict(Profile(account()))
    old["state"] = {"last_seq": {"r1": 4}, "to_device_upto": 7}
    home.mkdir()
    (home / "default.json").write_text(json.dumps(old))
    profile = load_profile("default")
    assert profile.state == ClientState({"r1": 4}, set())
    data = json.loads(save_profile("default", profile).read_text())
    assert data["state"] == {"last_seq": {"r1": 4}, "to_device_unacked": []}


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "-x", "x" * 65])
def test_profile_names_cannot_escape_the_directory(home: Path, name: str) -> None:
    with pytest.raises(ProfileError):
        profile_path(name)


def test_config_dir_default_and_override(tmp_path: Path) -> None:
    assert config_dir({}) == Path.home() / ".config" / "confrere"
    assert config_dir({"CONFRERE_HOME": str(tmp_path)}) == tmp_path


def test_resolve_server() -> None:
    assert resolve_server(None, {}) == DEFAULT_SERVER
    assert resolve_server(None, {"CONFRERE_SERVER": "http://h:1/"}) == "http://h:1"
    assert resolve_server("https://x.fr", {"CONFRERE_SERVER": "http://h:1"}) == "https://x.fr"
    assert resolve_server("localhost:9000", {}) == "http://localhost:9000"


# ---------------------------------------------------------------- state


def test_login_keeps_room_positions_for_the_same_user() -> None:
    previous = Profile(account(), ClientState({"r1": 4}, to_device_unacked={9, 11}))
    same_device = state_after_login(previous, account(token="t2"))
    assert same_device == ClientState({"r1": 4}, {9, 11})
    same_device.to_device_unacked.add(12)
    assert previous.state.to_device_unacked == {9, 11}  # a copy, not the saved set
    new_device = state_after_login(previous, account(device_id="dev-2"))
    assert new_device == ClientState({"r1": 4}, set())  # to-device queues are per device
    assert state_after_login(previous, account(user_id=BOB)) == ClientState()
    assert state_after_login(previous, account(base_url="http://other")) == ClientState()
    assert state_after_login(None, account()) == ClientState()


def test_merge_state_only_advances_the_chatted_room() -> None:
    saved = ClientState({"r1": 3, "r2": 5}, to_device_unacked={2})
    merged = merge_state(saved, "r1", shown_seq=10, to_device_unacked={4, 6})
    assert merged == ClientState({"r1": 10, "r2": 5}, {2, 4, 6})  # union of both sets
    assert saved == ClientState({"r1": 3, "r2": 5}, {2})  # not mutated
    assert merge_state(saved, "r1", 1, set()).last_seq["r1"] == 3  # never goes back
    assert merge_state(saved, "r9", 0, set()).last_seq == {"r1": 3, "r2": 5}
    assert merge_state(saved, "r9", 2, set()).last_seq["r9"] == 2
    assert merge_state(saved, "r1", 0, {2}).to_device_unacked == {2}


def test_seed_state_skips_other_rooms_history() -> None:
    saved = ClientState({"r1": 3, "r2": 5, "r4": 9}, to_device_unacked={2})
    listing = [
        {"id": "r1", "last_seq": 8},
        {"id": "r2", "last_seq": 7},
        {"id": "r3", "last_seq": 4},
        {"id": "r4", "last_seq": 2},
        {"id": 5, "last_seq": 1},
        {"id": "r5"},
    ]
    seeded = seed_state(saved, "r1", listing)
    assert seeded == ClientState({"r1": 3, "r2": 7, "r3": 4, "r4": 9}, {2})
    seeded.to_device_unacked.add(5)  # what the client does with the live state
    assert saved == ClientState({"r1": 3, "r2": 5, "r4": 9}, {2})  # not mutated
    # After the chat, the other rooms are back to what was shown of them.
    merged = merge_state(saved, "r1", shown_seq=8, to_device_unacked=seeded.to_device_unacked)
    assert merged == ClientState({"r1": 8, "r2": 5, "r4": 9}, {2, 5})


# ---------------------------------------------------------------- formatting


def test_format_message() -> None:
    assert format_message(msg(12, "bonjour")) == "[12] BBBBBBBB: bonjour"
    assert format_message(msg(3, "ça va ?")) == "[3] BBBBBBBB: ça va ?"


def test_format_message_own_sender_is_me() -> None:
    assert format_message(msg(1, "hi", sender=ALICE), ALICE) == "[1] me: hi"
    assert format_message(msg(1, "hi", sender=BOB), ALICE) == "[1] BBBBBBBB: hi"


def test_format_message_files_and_unreadable() -> None:
    ref = AttachmentRef("att1", bytes(32), bytes(32), 2048, "application/pdf", "bilan.pdf")
    with_file = dataclasses.replace(msg(6, "voir"), files=(ref,))
    assert format_message(with_file) == "[6] BBBBBBBB: voir [file 'bilan.pdf', 2048 B]"
    lost = Undecryptable("r1", 7, BOB, "dev-b", 0, "UnknownSession: no key\x1b[2J")
    assert (
        format_message(lost)
        == "[7] BBBBBBBB: (unreadable message: UnknownSession: no key\ufffd[2J)"
    )


def test_format_message_neutralises_terminal_controls() -> None:
    line = format_message(msg(2, "\x1b[2Jred\x07\r\x9b\u202eevil"))
    assert "\x1b" not in line and "\x07" not in line and "\r" not in line
    assert "\u202e" not in line and "\x9b" not in line
    assert line.startswith("[2] BBBBBBBB: ")


def test_format_message_indents_continuation_lines() -> None:
    assert format_message(msg(4, "one\ntwo")) == "[4] BBBBBBBB: one\n              two"


def test_printable_keeps_ordinary_text() -> None:
    assert printable("Équipe\tcardio — 100 %") == "Équipe\tcardio — 100 %"


def test_short_id() -> None:
    assert short_id("abcdefghijkl") == "abcdefgh"
    assert short_id("abc") == "abc"
    assert short_id(None) == "?"


def test_format_timeline_events() -> None:
    joined = Event("member.joined", "r1", seq=1, users=(ALICE, BOB), by=ALICE)
    assert format_event(joined, ALICE) == "[1] * me, BBBBBBBB joined"
    added = Event("member.joined", "r1", seq=4, users=(BOB,), by=ALICE)
    assert format_event(added, ALICE) == "[4] * BBBBBBBB joined (added by me)"
    left = Event("member.left", "r1", seq=5, user=BOB, by=BOB, reason="left")
    assert format_event(left) == "[5] * BBBBBBBB left"
    removed = Event("member.left", "r1", seq=6, user=BOB, by=ALICE, reason="removed")
    assert format_event(removed, ALICE) == "[6] * BBBBBBBB was removed by me"
    promoted = Event("member.promoted", "r1", seq=7, user=BOB, role="admin", by=ALICE)
    assert format_event(promoted) == "[7] * BBBBBBBB is now admin by AAAAAAAA"
    renamed = Event("room.updated", "r1", seq=8, name=b"\x01sealed", status="closed", by=ALICE)
    assert format_event(renamed) == "[8] * room updated by AAAAAAAA: renamed, case closed"


def test_format_ephemeral_events() -> None:
    assert format_event(Event("typing", "r1", user=BOB, on=True)) == "  ... BBBBBBBB is typing"
    assert format_event(Event("typing", "r1", user=BOB, on=False)) is None
    receipts = Event("receipts", "r1", reads=(ReadMarker(BOB, 9), ReadMarker(ALICE, 7)))
    assert format_event(receipts) == "  (read by BBBBBBBB up to [9], AAAAAAAA up to [7])"
    # One's own marker (read on this device or another) is not news to show.
    assert format_event(receipts, ALICE) == "  (read by BBBBBBBB up to [9])"
    assert format_event(Event("receipts", "r1", reads=(ReadMarker(ALICE, 7),)), ALICE) is None


def test_format_rooms() -> None:
    lines = format_rooms(
        [
            {"id": "r1", "kind": "direct", "name": None, "unread": 2},
            {"id": "r2", "kind": "group", "name": "AVNlYWxlZA==", "unread": 0},
            {"id": "r3", "kind": "patient_case", "name": "AQ==", "status": "closed", "unread": 0},
        ]
    )
    assert lines[0].split() == ["ID", "KIND", "NAME", "UNREAD"]
    assert lines[1].split() == ["r1", "direct", "-", "2"]
    # Names are end-to-end encrypted (base64 here): the listing does not decrypt.
    assert lines[2].split() == ["r2", "group", "(encrypted)", "0"]
    assert lines[3].split() == ["r3", "patient_case", "(closed)", "(encrypted)", "0"]
    assert len({line.index(line.split()[-1]) for line in lines[1:]}) == 1  # aligned
    assert "no rooms" in format_rooms([])[0]


def test_parse_members() -> None:
    assert parse_members(None) == []
    assert parse_members("") == []
    assert parse_members(" a, b,,a ,c ") == ["a", "b", "c"]


# ---------------------------------------------------------------- argument parsing


def test_parser_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["--profile", "bob", "open", "--group", "G", "--members", "a,b"])
    assert (args.profile, args.command, args.group, args.members) == ("bob", "open", "G", "a,b")
    args = parser.parse_args(["open", "--with", BOB])
    assert args.with_user == BOB and args.profile == "default" and args.server is None
    args = parser.parse_args(["login", "--email", "a@b.fr", "--device-name", "laptop"])
    assert (args.email, args.device_name) == ("a@b.fr", "laptop")
    args = parser.parse_args(["chat", "room-1"])
    assert args.room == "room-1"
    with pytest.raises(SystemExit):
        parser.parse_args(["open", "--with", BOB, "--group", "G"])
    with pytest.raises(SystemExit):
        parser.parse_args(["signup", "--email", "a@b.fr"])


def test_common_options_before_or_after_the_command() -> None:
    parser = build_parser()
    after = parser.parse_args(["login", "--email", "a@b.fr", "--profile", "bob", "--server", "u"])
    assert (after.profile, after.server) == ("bob", "u")
    before = parser.parse_args(["--profile", "bob", "--server", "u", "rooms"])
    assert (before.profile, before.server) == ("bob", "u")
    neither = parser.parse_args(["rooms"])
    assert (neither.profile, neither.server) == ("default", None)


# ---------------------------------------------------------------- stdin and the chat loop


async def test_stdin_lines_reads_a_pipe_to_eof() -> None:
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, "un\r\ndeux\ntrois sans fin\xe9".encode())
        os.close(write_fd)
        write_fd = -1
        lines = [line async for line in stdin_lines(read_fd)]
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    assert lines == ["un", "deux", "trois sans fin\xe9"]


async def lines_of(*lines: str) -> Any:
    for line in lines:
        yield line


async def test_chat_session_encrypts_shows_decrypted_and_marks_read(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    """Alice chats from the CLI's loop, Bob from the SDK: each reads the other, the
    server holds only ciphertext, and Alice's read marker follows what was shown."""
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    mine = EncryptedClient(alice, tmp_path / "alice.key", client=Client(alice, from_start=True))
    theirs = EncryptedClient(bob, tmp_path / "bob.key")
    await mine.connect()
    await theirs.connect()
    try:
        room = await mine.create_room("group", [bob.user_id])
        elsewhere = await theirs.create_room("group", [alice.user_id])
        # In this order on Alice's connection: the other room's message comes first.
        await theirs.send_text(elsewhere.id, "autre salle")
        await theirs.send_text(room.id, "Bonjour, le bilan de Mme Durand ?")
        out = io.StringIO()
        session = ChatSession(mine, room.id, out)
        receiving = asyncio.create_task(session.receive())
        reading = asyncio.create_task(session.mark_read())
        async with asyncio.timeout(20):
            await session.wait_shown(2)
            await session.run(lines_of("hi bob", "", "//slash", "/quit", "never sent"))
            got = []
            while len(got) < 2:
                item = await theirs.recv()
                if isinstance(item, Decrypted) and item.sender == alice.user_id:
                    got.append(item.text)
        assert got == ["hi bob", "/slash"]
        await mine.close()
        await receiving
        reading.cancel()
        shown = out.getvalue().splitlines()
        assert f"[2] {bob.user_id[:8]}: Bonjour, le bilan de Mme Durand ?" in shown
        assert f"  (new messages in room {elsewhere.id})" in shown
        assert shown[-2:] == ["[3] me: hi bob", "[4] me: /slash"]
        assert not any("never sent" in line for line in shown)
        assert session.shown_seq == 4
        membership = await server.store.membership(room.id, alice.user_id)
        assert membership is not None and membership.read_seq == 4
        for item in await server.store.timeline(room.id, 1, 10):
            assert item.body is not None and b"hi bob" not in item.body
            assert b"Durand" not in item.body
        assert isinstance(session.ended, ClientClosed)
    finally:
        await theirs.close()
        await mine.close()
