"""Driving the web client in a browser page: log in, open a direct room, send."""

from __future__ import annotations

import asyncio
import itertools
import os
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Request, WebSocket, expect
from verification_kit import email_code

from clients.python import Account
from clients.python.rest import confirm_email, sign_up
from clients.python.rest import log_in as sdk_log_in
from harness import PASSWORD, ServerUnderTest


async def eventually(check: Callable[[], Awaitable[object]], seconds: float = 10.0) -> bool:
    """Poll ``check`` until it returns something true, for at most ``seconds``."""
    for _ in range(int(seconds / 0.05)):
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def read_file(path: object) -> bytes:
    return await asyncio.to_thread(Path(str(path)).read_bytes)


_people = itertools.count(1)


async def named_practitioner(
    server: ServerUnderTest, first_name: str, last_name: str, specialty: str, city: str
) -> Account:
    """A verified practitioner with a real-looking name (screenshots show it) and a
    confirmed address; the address is unique, as the web tests share one server."""
    url = server.url
    local = unicodedata.normalize("NFKD", f"{first_name}.{last_name}").encode("ascii", "ignore")
    email = f"{local.decode()}.{next(_people)}-{os.getpid()}@example.fr".lower()
    await sign_up(
        url,
        email=email,
        password=PASSWORD,
        first_name=first_name,
        last_name=last_name,
        postcode="69003",
        city=city,
        specialty=specialty,
        practice_mode="liberal",
    )
    account = await sdk_log_in(url, email, PASSWORD, device_name="sdk")
    await confirm_email(account, await email_code(server, email))
    await server.store.set_verified(account.user_id, True)
    return account


DESKTOP = {"width": 1280, "height": 800}


async def open_client(
    browser: Browser,
    url: str,
    viewport: dict[str, int] | None = None,
    path: str = "/",
    *,
    position: tuple[float, float] | None = None,
) -> tuple[BrowserContext, Page, list[str]]:
    """A fresh browser profile (its own IndexedDB) on the client's page; the list
    collects the page's uncaught errors and any Content-Security-Policy violation.
    Service workers are blocked here (tests/web/test_pwa.py has its own).
    ``position``: the device's emulated location, the page allowed to read it."""
    located: dict[str, Any] = {}
    if position is not None:
        located = {
            "geolocation": {"latitude": position[0], "longitude": position[1]},
            "permissions": ["geolocation"],
        }
    context = await browser.new_context(
        viewport=viewport or DESKTOP, locale="fr-FR", service_workers="block", **located
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if "Content Security Policy" in m.text or "Trusted Type" in m.text
            else None
        ),
    )
    await page.goto(url + path)
    return context, page, errors


def is_phone(page: Page) -> bool:
    size = page.viewport_size
    return size is not None and size["width"] < 800


async def to_list(page: Page) -> None:
    """The list of conversations: on a phone, back from the open conversation."""
    if is_phone(page) and await page.locator("#back").is_visible():
        await page.click("#back")
    await expect(page.locator("#room-list")).to_be_visible()


async def open_room(page: Page, title: str | None = None) -> None:
    """Open a conversation from the list (the only one, or the one titled so)."""
    await to_list(page)
    rooms = page.locator("[data-testid=room]")
    await (rooms.filter(has_text=title).first if title else rooms.first).click()
    await expect(page.locator("#composer, .closed")).to_be_visible()


def record_uploads(page: Page) -> list[bytes]:
    """Every byte string the page sends: WebSocket frames and request bodies."""
    sent: list[bytes] = []

    def on_socket(ws: WebSocket) -> None:
        ws.on(
            "framesent",
            lambda data: sent.append(data if isinstance(data, bytes) else data.encode()),
        )

    def on_request(request: Request) -> None:
        sent.append(request.post_data_buffer or b"")

    page.on("websocket", on_socket)
    page.on("request", on_request)
    return sent


async def private_keys(page: Page) -> tuple[bytes, bytes]:
    """This browser's device keys as IndexedDB holds them: (X25519 secret, Ed25519 seed)."""
    key_file = bytes(
        await page.evaluate(
            """async () => {
                const store = await import("/app/store.js");
                const session = await store.get("session");
                return Array.from(await store.get("keys:" + session.deviceId));
            }"""
        )
    )
    assert len(key_file) == 65 and key_file[0] == 1
    return key_file[1:33], key_file[33:65]


async def log_in(page: Page, account: Account) -> None:
    await expect(page.locator("#login-form")).to_be_visible()
    await page.fill("#login-form input[name=email]", account.email)
    await page.fill("#login-form input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    # The account's first browser: online, then it publishes its keys, signed by the
    # identity key it makes. A message sent to it before that could never be read
    # there (SPEC.md §11.2: keys go to the devices published when a key is made).
    assert await eventually(lambda: _published(page)), "the browser never published its keys"


async def _published(page: Page) -> bool:
    verified: bool = await page.evaluate(
        """async () => {
            const { rest } = await import("/app/state.js");
            const { devices } = await rest.call("GET", "/v1/devices");
            return devices.some((d) => d.current && d.verified);
        }"""
    )
    return verified


@dataclass
class Colleague:
    """A practitioner signed in in a browser of their own."""

    account: Account
    context: BrowserContext
    page: Page
    errors: list[str]


async def anne_and_paul(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> tuple[Colleague, Colleague]:
    """Anne Éluard (cardiologist) and Paul Durand (general practitioner), each signed in
    in a fresh browser profile."""
    people = []
    for first, last, specialty in (
        ("Anne", "Éluard", "Cardiologie et maladies vasculaires"),
        ("Paul", "Durand", "Médecine générale"),
    ):
        account = await named_practitioner(server, first, last, specialty, "Lyon")
        context, page, errors = await open_client(browser, server.url, viewport)
        await log_in(page, account)
        people.append(Colleague(account, context, page, errors))
    return people[0], people[1]


async def log_in_approved(page: Page, account: Account, approver: Page) -> None:
    """Log in on a browser new to this account, and approve it from ``approver``, a
    browser where the account is signed in (SPEC.md §10.5): the same code on both."""
    await expect(page.locator("#login-form")).to_be_visible()
    await page.fill("#login-form input[name=email]", account.email)
    await page.fill("#login-form input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    code = await page.locator("#link-code").inner_text()
    await expect(approver.locator("#approve-code")).to_have_text(code)
    await approver.click("#link-approve")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")


async def start_direct(page: Page, other_user_id: str) -> None:
    """New conversation → direct message with a user given by id; opens it."""
    await to_list(page)
    await page.click("#new-conversation")
    await page.fill("#directory-search", other_user_id)
    await page.locator("#search-results button.by-id", has_text=other_user_id).click()
    await expect(page.locator("#composer")).to_be_visible()


async def start_direct_from_directory(page: Page, last_name: str, user_id: str) -> None:
    """New conversation → search the directory by name → that colleague; opens it."""
    await to_list(page)
    await page.click("#new-conversation")
    await page.fill("#directory-search", last_name)
    await page.click(f"#search-results button.person[data-user='{user_id}']")
    await expect(page.locator("#composer")).to_be_visible()


async def send_text(page: Page, text: str) -> None:
    await page.fill("#composer", text)
    await page.click("#send")
    await expect(page.locator(".msg.mine .text", has_text=text)).to_be_visible()


async def invite_by_email(page: Page, email: str) -> None:
    """The open conversation's details → "Inviter un confrère" → by e-mail."""
    await page.click("#room-info")
    await page.click("#room-details #invite")
    await page.fill("#invite-dialog #invite-email", email)
    await page.click("#invite-dialog #invite-email-add")
    await expect(page.locator("#invite-dialog")).to_contain_text(f"Invitation envoyée à {email}")
    await page.keyboard.press("Escape")
    await page.keyboard.press("Escape")
    await expect(page.locator("dialog")).to_have_count(0)


async def new_group(page: Page, name: str, kind: str = "group") -> None:
    """ "Nouveau message" → a group (or "patient_case") named ``name``; opens it."""
    await to_list(page)
    await page.click("#new-conversation")
    await page.click(f"#new-conversation-dialog nav button[data-kind={kind}]")
    await page.locator("#new-conversation-dialog input[name=name]").fill(name)
    await page.click("#create-room")
    await expect(page.locator("#room-title")).to_have_text(name)


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def screenshot(
    page: Page, name: str, *, full_page: bool = False, clear_notices: bool = False
) -> None:
    """docs/screenshots/NAME-desktop.png or NAME-phone.png, for the README."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = "phone" if is_phone(page) else "desktop"
    if clear_notices:  # a passing toast (an earlier step's) would hide the screen
        await page.evaluate("document.querySelectorAll('.notice').forEach((n) => n.remove())")
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=full_page)


async def fill_sign_up(
    page: Page,
    *,
    specialty: str = "Médecine générale",
    practice_mode: str = "liberal",
    **fields: str,
) -> None:
    """Fill the sign-up form (the given text fields, the specialty, the practice mode)
    and tick both consents; the caller submits."""
    form = page.locator("#signup-form")
    for name, value in fields.items():
        await form.locator(f"input[name={name}]").fill(value)
    await form.locator("select[name=specialty]").select_option(specialty)
    await form.locator(f"input[name=practice_mode][value={practice_mode}]").check()
    await form.locator("input[name=terms]").check()
    await form.locator("input[name=privacy]").check()
