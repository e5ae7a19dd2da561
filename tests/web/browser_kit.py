"""Driving the web client in a browser page: log in, open a direct room, send."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, Request, WebSocket, expect

from clients.python import Account
from clients.python.rest import log_in as sdk_log_in
from clients.python.rest import sign_up
from harness import PASSWORD
from storage import Store


async def eventually(check: Callable[[], Awaitable[object]], seconds: float = 10.0) -> bool:
    """Poll ``check`` until it returns something true, for at most ``seconds``."""
    for _ in range(int(seconds / 0.05)):
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def read_file(path: object) -> bytes:
    return await asyncio.to_thread(Path(str(path)).read_bytes)


async def named_practitioner(
    url: str, store: Store, first_name: str, last_name: str, specialty: str, city: str
) -> Account:
    """A verified practitioner with a real-looking name (the screenshot shows it)."""
    email = f"{first_name}.{last_name}@example.fr".lower()
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
    await store.set_verified(account.user_id, True)
    return account


async def open_client(browser: Browser, url: str) -> tuple[BrowserContext, Page, list[str]]:
    """A fresh browser profile (its own IndexedDB) on the client's page; the list
    collects the page's uncaught errors and any Content-Security-Policy violation."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
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
    await page.goto(url + "/")
    return context, page, errors


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
    await page.fill("#login-form input[name=email]", account.email)
    await page.fill("#login-form input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")


async def start_direct(page: Page, other_user_id: str) -> None:
    """New conversation → direct message with a user given by id; opens it."""
    await page.click("#new-conversation")
    await page.fill("#directory-search", other_user_id)
    await page.click("#search-results button.by-id")
    await expect(page.locator("#composer")).to_be_visible()


async def start_direct_from_directory(page: Page, last_name: str) -> None:
    """New conversation → search the directory by name → the first match; opens it."""
    await page.click("#new-conversation")
    await page.fill("#directory-search", last_name)
    await page.locator("#search-results button.person:not(.by-id)").first.click()
    await expect(page.locator("#composer")).to_be_visible()


async def send_text(page: Page, text: str) -> None:
    await page.fill("#composer", text)
    await page.click("#send")
    await expect(page.locator(".msg.mine .text", has_text=text)).to_be_visible()
