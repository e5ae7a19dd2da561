"""Command-line chat client: sign up, log in, list and open rooms, chat from a terminal.

    python -m clients signup --email E --first-name F --last-name L --postcode P \\
        --city C --specialty S --practice-mode liberal|salarie [--rpps N]
    python -m clients login --email E [--device-name N]
    python -m clients confirm-email CODE
    python -m clients rooms
    python -m clients open --with USER_ID | --group NAME --members ID,ID | --case NAME ...
    python -m clients chat ROOM_ID

Common options (before the subcommand): ``--server URL`` (else ``$CONFRERE_SERVER``, else
http://127.0.0.1:8000) and ``--profile NAME`` (default ``default``). Passwords are read
with getpass from the terminal, or from ``$CONFRERE_PASSWORD`` (required when there is
no terminal: scripts, pipes).

``login`` stores the session (base URL, token, user id, device id, e-mail) in
``~/.config/confrere/<profile>.json`` (``$CONFRERE_HOME`` overrides the directory), a
file only its owner can read (0600). After a chat session the same file also keeps the
:class:`~clients.python.ClientState` (last seq seen per room, to-device messages not yet
acknowledged), so the next ``chat`` resumes where the previous one stopped, without gaps
or repeats.

Messages are end-to-end encrypted by the Python SDK (:class:`~clients.python.EncryptedClient`,
SPEC.md §11), as in the web client: the device's keys live in
``<profile>-<device id>.key`` next to the profile (0600; a new login is a new device with
new keys). Sender keys are kept in memory: a ``chat`` reads the messages whose keys its
members' devices share with it, as any new device does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import io
import json
import os
import re
import socket
import sys
import threading
from collections.abc import AsyncIterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from websockets.exceptions import WebSocketException

from protocol.crypto.errors import CryptoError
from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import Event, RoomInfo

from .python import (
    Account,
    Client,
    ClientClosed,
    ClientState,
    ConfrereError,
    Decrypted,
    EncryptedClient,
    ServerError,
    Undecryptable,
    log_in,
    request,
    sign_up,
)
from .python.e2ee import Deleted, KeysChanged, LinkAnswered, LinkRequest
from .python.rest import confirm_email

__all__ = [
    "DEFAULT_SERVER",
    "Profile",
    "ProfileError",
    "config_dir",
    "format_event",
    "format_message",
    "format_rooms",
    "load_profile",
    "main",
    "merge_state",
    "parse_members",
    "printable",
    "profile_from_dict",
    "profile_path",
    "profile_to_dict",
    "resolve_server",
    "save_profile",
    "seed_state",
    "short_id",
    "state_after_login",
]

DEFAULT_SERVER = "http://127.0.0.1:8000"
REQUEST_TIMEOUT = 30.0  # seconds, for the one-shot requests (the chat itself has none)
READ_EVERY_S = 1.0  # at most one read receipt per second while chatting (SPEC.md §4.4)
PROFILE_VERSION = 1
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
# C0/C1 controls (but tab and newline), DEL, and the bidi overrides and isolates: a peer's
# text must not move the cursor, recolour the terminal or reorder what is displayed.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_VERIFY_HINT = "python -m server users verify {email}"
_OUTBOX_HINT = "on a local `make run`, e-mails are lines of var/outbox.jsonl"


class ProfileError(Exception):
    """The profile is missing, unreadable or malformed."""


@dataclass
class Profile:
    """What ``login`` saves: the device's session plus its resume state."""

    account: Account
    state: ClientState = field(default_factory=ClientState)


# ---------------------------------------------------------------- pure helpers


def resolve_server(arg: str | None, env: Mapping[str, str] | None = None) -> str:
    """``--server``, else ``$CONFRERE_SERVER``, else the default; without trailing slash."""
    env = os.environ if env is None else env
    url = arg or env.get("CONFRERE_SERVER") or DEFAULT_SERVER
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url.rstrip("/")


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$CONFRERE_HOME``, else ``~/.config/confrere``."""
    env = os.environ if env is None else env
    home = env.get("CONFRERE_HOME")
    if home:
        return Path(home).expanduser()
    return Path.home() / ".config" / "confrere"


def profile_path(name: str, env: Mapping[str, str] | None = None) -> Path:
    if not _PROFILE_NAME.match(name):
        raise ProfileError(
            f"invalid profile name {name!r}: use letters, digits, '_', '-' or '.' "
            "(not starting with '.' or '-')"
        )
    return config_dir(env) / f"{name}.json"


def key_path(name: str, device_id: str, env: Mapping[str, str] | None = None) -> Path:
    """The device keys of profile ``name``'s device (created 0600 on first use)."""
    if not _PROFILE_NAME.match(device_id):
        raise ProfileError(f"invalid device id {device_id!r} in profile {name!r}")
    return profile_path(name, env).with_name(f"{name}-{device_id}.key")


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    return {
        "version": PROFILE_VERSION,
        "account": dataclasses.asdict(profile.account),
        "state": {
            "last_seq": dict(sorted(profile.state.last_seq.items())),
            "to_device_unacked": sorted(profile.state.to_device_unacked),
        },
    }


def _str(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ProfileError(f"profile field {key!r} is missing or not a string")
    return value


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileError(f"profile field {what} must be a non-negative integer")
    return value


def profile_from_dict(d: object) -> Profile:
    """Inverse of :func:`profile_to_dict`; raises :class:`ProfileError` if malformed."""
    if not isinstance(d, dict):
        raise ProfileError("profile is not a JSON object")
    version = d.get("version", PROFILE_VERSION)
    if version != PROFILE_VERSION:
        raise ProfileError(f"unsupported profile version {version!r}")
    acc = d.get("account")
    if not isinstance(acc, dict):
        raise ProfileError("profile has no 'account' object")
    account = Account(
        **{f.name: _str(acc.get(f.name), f.name) for f in dataclasses.fields(Account)}
    )
    raw_state = d.get("state", {})
    if not isinstance(raw_state, dict):
        raise ProfileError("profile 'state' is not an object")
    raw_seqs = raw_state.get("last_seq", {})
    if not isinstance(raw_seqs, dict):
        raise ProfileError("profile 'state.last_seq' is not an object")
    last_seq = {str(room): _int(seq, f"state.last_seq[{room!r}]") for room, seq in raw_seqs.items()}
    # An older profile's "to_device_upto" is ignored: that position no longer exists.
    raw_tids = raw_state.get("to_device_unacked", [])
    if not isinstance(raw_tids, list):
        raise ProfileError("profile 'state.to_device_unacked' is not a list")
    unacked = {_int(tid, "state.to_device_unacked[]") for tid in raw_tids}
    return Profile(account, ClientState(last_seq=last_seq, to_device_unacked=unacked))


def save_profile(name: str, profile: Profile, env: Mapping[str, str] | None = None) -> Path:
    """Write the profile atomically, readable and writable by its owner only (0600)."""
    path = profile_path(name, env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = json.dumps(profile_to_dict(profile), indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o600)  # whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def load_profile(name: str, env: Mapping[str, str] | None = None) -> Profile:
    path = profile_path(name, env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(
            f"no profile {name!r} ({path}): log in first (python -m clients login --email ...)"
        ) from None
    except OSError as exc:
        raise ProfileError(f"cannot read {path}: {exc}") from None
    try:
        return profile_from_dict(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path} is not valid JSON: {exc}") from None


def state_after_login(previous: Profile | None, account: Account) -> ClientState:
    """What a fresh login keeps: the rooms' positions if it is the same user on the same
    server; the unacknowledged to-device ids only for the same device (it is a per-device
    queue)."""
    if previous is None:
        return ClientState()
    old = previous.account
    if old.user_id != account.user_id or old.base_url != account.base_url:
        return ClientState()
    same_device = old.device_id == account.device_id
    return ClientState(
        last_seq=dict(previous.state.last_seq),
        to_device_unacked=set(previous.state.to_device_unacked) if same_device else set(),
    )


def seed_state(saved: ClientState, room: str, rooms: Sequence[Mapping[str, Any]]) -> ClientState:
    """The state to chat in ``room`` with: the saved one, with every *other* room (from
    ``GET /v1/rooms``) set to its current last seq, so the client fetches no history it
    would not show. :func:`merge_state` keeps those rooms' saved positions afterwards."""
    last_seq = dict(saved.last_seq)
    for r in rooms:
        rid, seq = r.get("id"), r.get("last_seq")
        if isinstance(rid, str) and rid != room and isinstance(seq, int) and seq >= 0:
            last_seq[rid] = max(last_seq.get(rid, 0), seq)
    return ClientState(last_seq=last_seq, to_device_unacked=set(saved.to_device_unacked))


def merge_state(
    saved: ClientState, room: str, shown_seq: int, to_device_unacked: Set[int]
) -> ClientState:
    """The state to save after chatting in ``room``: only that room advances (to what was
    displayed), so other rooms' items the client received but did not show are shown
    by a later ``chat`` in them. The unacknowledged to-device ids are the union of both."""
    last_seq = dict(saved.last_seq)
    if shown_seq > 0 or room in last_seq:
        last_seq[room] = max(last_seq.get(room, 0), shown_seq)
    return ClientState(last_seq, saved.to_device_unacked | to_device_unacked)


def parse_members(value: str | None) -> list[str]:
    """``"a, b,,a"`` -> ``["a", "b"]`` (order kept, blanks and repeats dropped)."""
    if not value:
        return []
    return list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


def short_id(ident: str | None, length: int = 8) -> str:
    return "?" if not ident else ident[:length]


def printable(text: str) -> str:
    """Neutralise characters that would act on the terminal instead of being shown."""
    return _UNPRINTABLE.sub("\ufffd", text)


def _who(user: str | None, self_id: str | None) -> str:
    if user is not None and user == self_id:
        return "me"
    return short_id(user)


def format_message(msg: Decrypted | Undecryptable | Deleted, self_id: str | None = None) -> str:
    """``[seq] sender-short: text``; continuation lines are indented under the text,
    attached files listed after it; a message that cannot be read says why; an edit
    names the message it replaces."""
    prefix = f"[{msg.seq}] {_who(msg.sender, self_id)}: "
    if isinstance(msg, Undecryptable):
        return prefix + f"(unreadable message: {printable(msg.reason)})"
    if isinstance(msg, Deleted):
        return prefix + f"(deleted by {_who(msg.by, self_id)})"
    if msg.edits is not None:
        prefix += f"(edits [{msg.edits}]) "
    files = [f"[file {printable(f.name or 'unnamed')!r}, {f.size} B]" for f in msg.files]
    text = " ".join([printable(msg.text), *files]).strip()
    return prefix + text.replace("\n", "\n" + " " * len(prefix))


def format_event(event: Event, self_id: str | None = None) -> str | None:
    """One short line for a room event, or None for those not worth showing."""
    who = _who(event.user, self_id)
    by = f" by {_who(event.by, self_id)}" if event.by and event.by != event.user else ""
    kind = event.kind
    if kind == "typing":
        return f"  ... {who} is typing" if event.on else None
    if kind == "receipts":  # one's own marker comes too (read here or on another device)
        others = [
            f"{short_id(m.user)} up to [{m.upto}]" for m in event.reads or () if m.user != self_id
        ]
        return f"  (read by {', '.join(others)})" if others else None
    if kind == "member.joined":
        users = event.users or ((event.user,) if event.user else ())
        names = ", ".join(_who(u, self_id) for u in users) or "?"
        added = f" (added{by})" if event.by and event.by not in users else ""
        line = f"* {names} joined{added}"
    elif kind == "member.left":
        line = f"* {who} was removed{by}" if event.reason == "removed" else f"* {who} left"
    elif kind == "member.promoted":
        line = f"* {who} is now {event.role or '?'}{by}"
    elif kind == "device.revoked":
        line = f"* a device of {who} was revoked"
    elif kind == "msg.deleted":
        line = f"* message [{event.target}] deleted{by}"
    elif kind == "room.updated":
        changes = []
        if event.name is not None:
            changes.append("renamed")  # the name is end-to-end encrypted
        if event.status is not None:
            changes.append("case closed" if event.status == "closed" else "case reopened")
        if event.header is not None:
            changes.append("case header updated")
        line = f"* room updated{by}: {', '.join(changes) or 'no change'}"
    else:
        line = f"* {printable(kind)}"
    return f"[{event.seq}] {line}" if event.seq > 0 else line


def format_rooms(rooms: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``rooms`` listing: one line per room (id, kind, name, unread)."""
    if not rooms:
        return ["(no rooms yet: python -m clients open --with USER_ID)"]
    rows = [("ID", "KIND", "NAME", "UNREAD")]
    for r in rooms:
        kind = str(r.get("kind", "?")) + (" (closed)" if r.get("status") == "closed" else "")
        name = "(encrypted)" if r.get("name") else "-"  # end-to-end: SPEC.md §11.4
        rows.append((str(r.get("id", "?")), kind, name, str(r.get("unread", 0))))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [
        f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}".rstrip()
        for row in rows
    ]


# ---------------------------------------------------------------- I/O helpers


class CliError(Exception):
    """Ends the command with a message on stderr and exit status 1."""


def _password(prompt: str, *, confirm: bool = False) -> str:
    env = os.environ.get("CONFRERE_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise CliError("no terminal to read the password from: set CONFRERE_PASSWORD")
    password = getpass.getpass(prompt)
    if confirm and getpass.getpass("Password (again): ") != password:
        raise CliError("the passwords differ")
    return password


def _describe(exc: ConfrereError) -> str:
    """The error for the user, with what to do about it when there is something."""
    if isinstance(exc, ServerError) and exc.code == ErrorCode.IDENTITY_UNVERIFIED:
        return (
            f"{exc.message} (confirm your e-mail, then verify your identity in the web "
            f"client, or have an admin run `{_VERIFY_HINT.format(email='EMAIL')}`)"
        )
    if isinstance(exc, ServerError) and exc.code == ErrorCode.UNAUTHENTICATED:
        return f"{exc.message} (log in again: python -m clients login --email ...)"
    return str(exc)  # a ServerError's is "code: message"


async def stdin_lines(fd: int = 0) -> AsyncIterator[str]:
    """Lines typed (or piped, or redirected from a file) on ``fd``, without blocking the
    loop. A daemon thread does the blocking reads on the raw descriptor, so it holds no
    interpreter lock that could stall shutdown while it waits for a line."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def put(item: bytes | None) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def reader() -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                put(None)
                return
            put(data)

    threading.Thread(target=reader, name="stdin-reader", daemon=True).start()
    buffer = b""
    while True:
        chunk = await queue.get()
        if chunk is None:
            if buffer:
                yield buffer.decode("utf-8", errors="replace").rstrip("\r")
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", errors="replace").rstrip("\r")


def _out(line: str, stream: TextIO | None = None) -> None:
    print(line, file=stream or sys.stdout, flush=True)


# ---------------------------------------------------------------- commands


async def cmd_signup(args: argparse.Namespace) -> int:
    server = resolve_server(args.server)
    password = _password("Password (10 characters at least): ", confirm=True)
    names = ("email", "first_name", "last_name", "postcode", "city", "specialty", "practice_mode")
    fields = {name: getattr(args, name) for name in names} | {"password": password}
    if args.rpps:
        fields["rpps"] = args.rpps
    user = await sign_up(server, **fields)
    email = user["email"]
    _out(f"account created: user id {user['id']} ({email})")
    again = f"python -m clients --server {server} --profile {args.profile}"
    _out(
        "Next:\n"
        f"  1. log in:  {again} login --email {email}\n"
        f"  2. confirm your e-mail with the 6-digit code sent to {email}\n"
        f"     ({_OUTBOX_HINT}):  {again} confirm-email CODE"
    )
    if not user.get("verified"):
        _out(
            "  3. verify your identity (Pro Santé Connect or identity documents, in the web "
            f"client at {server}/); messaging is refused until then. On a server you run, "
            f"an admin may instead run:  {_VERIFY_HINT.format(email=email)}"
        )
    return 0


async def cmd_confirm_email(args: argparse.Namespace) -> int:
    user = await confirm_email(_load(args).account, args.code.strip())
    _out(f"{user['email']}: e-mail confirmed")
    if not user.get("verified"):
        hint = _VERIFY_HINT.format(email=user["email"])
        _out(f"Identity not verified yet: verify it in the web client, or an admin runs: {hint}")
    return 0


async def cmd_login(args: argparse.Namespace) -> int:
    server = resolve_server(args.server)
    try:
        previous: Profile | None = load_profile(args.profile)
    except ProfileError:
        previous = None
    password = _password(f"Password for {args.email}: ")
    email = args.email.strip().lower()
    # Log in again as the saved device unless a new device name was asked for.
    old = previous.account if previous and args.device_name is None else None
    account: Account | None = None
    try:
        if old and old.base_url == server and old.email.lower() == email:
            try:
                account = await log_in(server, email, password, device_id=old.device_id)
            except ServerError as exc:
                if exc.code != ErrorCode.NOT_FOUND:  # else the device is gone: register anew
                    raise
        if account is None:
            name = args.device_name or f"cli@{socket.gethostname()}"
            account = await log_in(server, email, password, device_name=name)
    except ServerError as exc:
        if exc.code == ErrorCode.UNAUTHENTICATED:
            raise CliError(exc.message) from None
        raise
    profile = Profile(account, state_after_login(previous, account))
    path = save_profile(args.profile, profile)
    _out(f"logged in as {account.user_id} (device {account.device_id}); saved to {path}")
    return 0


async def _list_rooms(account: Account) -> list[dict[str, Any]]:
    body = await request(account.base_url, "GET", "/v1/rooms", token=account.token)
    rooms = body.get("rooms") if isinstance(body, dict) else None
    return [r for r in rooms if isinstance(r, dict)] if isinstance(rooms, list) else []


async def cmd_rooms(args: argparse.Namespace) -> int:
    for line in format_rooms(await _list_rooms(_load(args).account)):
        _out(line)
    return 0


async def cmd_open(args: argparse.Namespace) -> int:
    account = _load(args).account
    members = parse_members(args.members)
    if args.with_user:
        kind, name, members = "direct", None, [args.with_user.strip()]
    elif args.group is not None:
        kind, name = "group", args.group
    else:
        kind, name = "patient_case", args.case
    # Fresh state and from_start=False: this short connection must not sync any history.
    # The name is encrypted for the members (their devices get the key by to-device).
    client = Client(account, from_start=False, reconnect=False)
    e2ee = EncryptedClient(account, key_path(args.profile, account.device_id), client=client)
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            await e2ee.connect()
            room = await e2ee.create_room(kind, members, name=name)
    except TimeoutError:
        raise CliError(f"no answer from {account.base_url} in {REQUEST_TIMEOUT:g} s") from None
    except ValueError as exc:  # a name too long
        raise CliError(str(exc)) from None
    finally:
        await e2ee.close()
    label = f" {printable(name)!r}" if name else ""
    _out(room.id)
    _out(f"({room.kind}{label}; chat with: python -m clients chat {room.id})", sys.stderr)
    return 0


class ChatSession:
    """Shows one room's items, decrypted, as the client delivers them and marks them
    read; sends each line typed, encrypted."""

    def __init__(self, e2ee: EncryptedClient, room: str, out: TextIO) -> None:
        self.e2ee = e2ee
        self.client = e2ee.client
        self.room = room
        self.out = out
        self.shown_seq = self.client.state.last_seq.get(room, 0)
        self.read_sent = 0
        self._shown = asyncio.Event()
        self._read_wanted = asyncio.Event()
        self._read_lock = asyncio.Lock()  # one receipt in flight: no duplicates
        self._noticed: set[str] = set()
        self.ended: ConfrereError | None = None

    def show(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    async def receive(self) -> None:
        """Until the client stops: print items of our room, a notice for other rooms."""
        me = self.client.user_id
        while True:
            try:
                item = await self.e2ee.recv()
            except ConfrereError as exc:
                self.ended = exc
                return
            if isinstance(item, KeysChanged):
                self.show(
                    f"  (the keys of {short_id(item.user)} changed: safety number now "
                    f"{item.number}; compare it with them before trusting it)"
                )
                continue
            if isinstance(item, LinkRequest):
                self.show(
                    f"  (another device asks to join your account, code {item.code}: "
                    "approve it from the web client)"
                )
                continue
            if isinstance(item, LinkAnswered):
                continue
            message = isinstance(item, Decrypted | Undecryptable | Deleted)
            if item.room != self.room:
                if message and item.room not in self._noticed:
                    info = self.client.rooms.get(item.room)
                    if info is None or item.seq > info.read_seq:
                        self._noticed.add(item.room)
                        self.show(f"  (new messages in room {item.room})")
                continue
            if isinstance(item, Decrypted | Undecryptable | Deleted):
                line: str | None = format_message(item, me)
            else:
                line = format_event(item, me)
            if line is not None:
                self.show(line)
            if item.seq > self.shown_seq:
                self.shown_seq = item.seq
                self._shown.set()
                self._read_wanted.set()

    async def mark_read(self) -> None:
        """Send read receipts, coalesced: at most one per READ_EVERY_S, up to what was
        displayed by then (SPEC.md §4.4); leaving the chat sends the last one at once."""
        while True:
            await self._read_wanted.wait()
            self._read_wanted.clear()
            await self._send_read()
            await asyncio.sleep(READ_EVERY_S)

    async def _send_read(self) -> None:
        async with self._read_lock:
            seq = self.shown_seq
            info = self.client.rooms.get(self.room)
            if seq <= max(self.read_sent, info.read_seq if info else 0):
                return
            with contextlib.suppress(ConfrereError):
                await self.client.read(self.room, seq)
                self.read_sent = seq

    async def wait_shown(self, seq: int) -> None:
        """Return once the item ``seq`` was displayed (e.g. our own last send)."""
        while self.shown_seq < seq:
            self._shown.clear()
            await self._shown.wait()

    async def command(self, line: str) -> bool:
        """Handle a ``/command``; False means quit."""
        cmd, _, rest = line.partition(" ")
        if cmd in ("/quit", "/exit"):
            return False
        if cmd == "/help":
            self.show(
                "  /who  members | /invite ID,ID  add members | /leave  leave the room | "
                "/quit  exit | //text  send a line starting with '/'"
            )
        elif cmd == "/who":
            info = await self.client.room(self.room)
            for m in info.members or ():
                self.show(f"  {m.user} {m.role}{' (me)' if m.user == self.client.user_id else ''}")
        elif cmd == "/invite":
            users = parse_members(rest)
            if not users:
                self.show("  usage: /invite ID,ID")
            else:
                await self.e2ee.invite(self.room, users)
        elif cmd == "/leave":
            await self.e2ee.leave(self.room)
            return False
        else:
            self.show(f"  unknown command {cmd} (/help lists them)")
        return True

    async def run(self, lines: AsyncIterator[str]) -> None:
        last_sent = 0
        async for raw in lines:
            line = raw.rstrip()
            if not line:
                continue
            try:
                if line.startswith("/") and not line.startswith("//"):
                    if not await self.command(line):
                        break
                    continue
                text = line[1:] if line.startswith("//") else line
                last_sent = await self.e2ee.send_text(self.room, text)
            except ClientClosed:
                break
            except ConfrereError as exc:  # refused, or the connection dropped mid-request
                self.show(f"  ! {_describe(exc)}")
        if last_sent:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self.wait_shown(last_sent)
        if self.client.connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._send_read()


async def cmd_chat(args: argparse.Namespace) -> int:
    profile = _load(args)
    room = args.room
    saved = profile.state
    try:
        rooms = await _list_rooms(profile.account)
    except ServerError:
        rooms = []  # e.g. not verified yet: the client says so below
    live = seed_state(saved, room, rooms)
    client = Client(profile.account, state=live, from_start=True)
    keys = key_path(args.profile, profile.account.device_id)
    # The sender keys received are kept beside the device keys: the history reads again.
    e2ee = EncryptedClient(
        profile.account, keys, client=client, sessions_file=keys.with_suffix(".sessions")
    )
    await e2ee.connect()
    session = ChatSession(e2ee, room, sys.stdout)
    tasks: list[asyncio.Task[None]] = []
    try:
        if not client.verified:
            unverified = ServerError(ErrorCode.IDENTITY_UNVERIFIED, "your identity is not verified")
            _out(f"! {_describe(unverified)}", sys.stderr)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                info = await client.room(room)
        except TimeoutError:
            raise CliError(f"no answer from {profile.account.base_url} about {room}") from None
        label = f" {printable(_room_name(e2ee, info))!r}" if info.name else ""
        _out(
            f"-- {info.kind}{label} {info.id}, {len(info.members or ())} member(s); "
            "type a line to send it, /help for commands, /quit or Ctrl-D to exit",
            sys.stderr,
        )
        for other in rooms:
            if other.get("id") != room and other.get("unread"):
                _out(f"  ({other['unread']} unread in room {other['id']})")
        receiving = asyncio.create_task(session.receive(), name="chat-receive")
        tasks = [receiving, asyncio.create_task(session.mark_read(), name="chat-read")]
        # No aclosing() around the lines: the input task owns the generator, and
        # cancelling that task (below) is what finalises it.
        chatting = asyncio.create_task(session.run(stdin_lines()), name="chat-input")
        tasks.append(chatting)
        await asyncio.wait((chatting, receiving), return_when=asyncio.FIRST_COMPLETED)
        if chatting.done():
            chatting.result()  # re-raise what ended it, if anything
        else:
            reason = session.ended or ClientClosed("connection closed")
            _out(f"-- session ended: {_describe(reason)}", sys.stderr)
    finally:
        await e2ee.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        profile.state = merge_state(saved, room, session.shown_seq, live.to_device_unacked)
        save_profile(args.profile, profile)
    return 0


def _room_name(e2ee: EncryptedClient, info: RoomInfo) -> str:
    """The room's name, or why it cannot be shown yet."""
    assert info.name is not None
    try:
        return e2ee.decrypt_name(info.id, info.name)
    except CryptoError:
        return "(encrypted name: its key has not arrived)"


def _load(args: argparse.Namespace) -> Profile:
    profile = load_profile(args.profile)
    if args.server:
        url = resolve_server(args.server)
        if url != profile.account.base_url:
            raise CliError(
                f"profile {args.profile!r} is logged in to {profile.account.base_url}, "
                f"not {url}: log in again with --server {url}"
            )
    return profile


# ---------------------------------------------------------------- argument parsing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clients",
        description="Confrère command-line chat (end-to-end encrypted)",
    )
    common = argparse.ArgumentParser(add_help=False)
    for target, server_default, profile_default in (
        (parser, None, "default"),
        (common, argparse.SUPPRESS, argparse.SUPPRESS),  # after the subcommand too
    ):
        target.add_argument(
            "--server",
            metavar="URL",
            default=server_default,
            help=f"server base URL (default: $CONFRERE_SERVER or {DEFAULT_SERVER})",
        )
        target.add_argument(
            "--profile",
            default=profile_default,
            help="profile name, one per account (default: default)",
        )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("signup", parents=[common], help="create an account")
    p.add_argument("--email", required=True)
    p.add_argument("--first-name", required=True)
    p.add_argument("--last-name", required=True)
    p.add_argument("--postcode", required=True, help="French postcode, 5 digits")
    p.add_argument("--city", required=True)
    p.add_argument("--specialty", required=True)
    p.add_argument("--practice-mode", required=True, choices=("liberal", "salarie"))
    p.add_argument("--rpps", help="RPPS (11 digits) or ADELI (9 digits) number")
    p.set_defaults(func=cmd_signup)

    p = sub.add_parser("login", parents=[common], help="log in and save the session in the profile")
    p.add_argument("--email", required=True)
    p.add_argument("--device-name", help="register a new device under this name")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser(
        "confirm-email", parents=[common], help="confirm your e-mail with the code it received"
    )
    p.add_argument("code", metavar="CODE", help="the 6-digit code")
    p.set_defaults(func=cmd_confirm_email)

    p = sub.add_parser("rooms", parents=[common], help="list your rooms")
    p.set_defaults(func=cmd_rooms)

    p = sub.add_parser("open", parents=[common], help="create (or, for a direct room, find) a room")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--with", dest="with_user", metavar="USER_ID", help="direct room")
    what.add_argument("--group", metavar="NAME", help="group room")
    what.add_argument("--case", metavar="NAME", help="patient-case room")
    p.add_argument("--members", metavar="ID,ID", help="other members (group or case)")
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("chat", parents=[common], help="chat in a room")
    p.add_argument("room", metavar="ROOM_ID")
    p.set_defaults(func=cmd_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "open" and args.with_user and args.members:
        parser.error("open --with takes no --members")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # show odd text rather than crash
    try:
        code: int = asyncio.run(args.func(args))
    except KeyboardInterrupt:
        return 130
    except (CliError, ProfileError) as exc:
        error = str(exc)
    except ServerError as exc:
        error = _describe(exc)
    except ProtocolError as exc:
        error = f"unexpected answer from the server: {exc}"
    except (httpx.HTTPError, OSError, WebSocketException, ConfrereError) as exc:
        server = args.server or os.environ.get("CONFRERE_SERVER") or "the server"
        error = f"cannot talk to {server}: {exc}"
    else:
        return code
    print(f"error: {error}", file=sys.stderr)
    return 1
