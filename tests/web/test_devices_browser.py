"""Cross-signing and "Mes appareils" in real Chromium, at both sizes (SPEC.md §11.1, §9):
a practitioner's second browser, approved from the first, is signed by the account's
identity key ("Vérifié") and the colleague's safety number does not move; a device
nobody approved is "non vérifié" in the conversation's details and in "Mes appareils";
a device is renamed, then revoked after a confirmation: its WebSocket closes within a
second, and what is sent afterwards cannot be decrypted with its keys. No decryption
failure is reported on the way (what `stats decryption` counts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_kit import (
    eventually,
    log_in,
    named_practitioner,
    open_client,
    open_room,
    screenshot,
)
from playwright.async_api import Browser, Page, WebSocket, expect
from test_device_history_browser import log_in_new_device

from clients.python import EncryptedClient
from harness import ServerUnderTest
from protocol.frames import Event

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

# In the page: which of this browser's saved sender keys (IndexedDB) are the given
# sender device's in the room, and whether one of them is the message's session.
KEYS_FOR = """async ([room, device, bodyHex]) => {
  const c = await import("/app/crypto.js");
  await c.ready();
  const store = await import("/app/store.js");
  const session = await store.get("session");
  const deviceId = session ? session.deviceId : await store.get("revoked-device");
  const snap = await store.get("e2ee:" + deviceId);
  const sid = c.hex(c.parseMessage(c.unhex(bodyHex)).sessionId);
  const held = (snap?.inbound || []).filter((k) => k.roomId === room && k.deviceId === device);
  return { held: held.length, matching: held.filter((k) => c.hex(k.sessionId) === sid).length };
}"""


IDENTITY_HELD = """async (user) =>
  Boolean(await (await import("/app/store.js")).get("identity:" + user))"""


async def device_id_of(page: Page) -> str:
    found: Any = await page.evaluate(
        """async () => (await (await import("/app/store.js")).get("session")).deviceId"""
    )
    assert isinstance(found, str)
    return found


async def next_event(client: EncryptedClient, kind: str) -> Event:
    while True:
        item = await client.recv()
        if isinstance(item, Event) and item.kind == kind:
            return item


async def test_devices_are_verified_renamed_and_revoked(
    server: ServerUnderTest, browser: Browser, tmp_path: Path, viewport: dict[str, int]
) -> None:
    anne = await named_practitioner(
        server, "Anne", "Lefèvre", "Cardiologie et maladies vasculaires", "Lyon"
    )
    paul_account = await named_practitioner(server, "Paul", "Garnier", "Médecine générale", "Lyon")
    paul = EncryptedClient(paul_account, tmp_path / "paul.key")
    await paul.connect()
    contexts = []
    rogue: EncryptedClient | None = None
    try:
        ctx1, first, errors1 = await open_client(browser, server.url, viewport)
        contexts.append(ctx1)
        await log_in(first, anne)  # the account's first browser: it makes the identity key
        room = (await paul.create_room("group", [anne.user_id], name="Avis cardio")).id
        await paul.send_text(room, "Bonjour Anne")
        await open_room(first)
        await expect(first.locator(".msg .text")).to_have_text(["Bonjour Anne"])
        number = await paul.safety_number(anne.user_id)

        # A second browser, approved from the first: signed, so verified everywhere.
        ctx2, second, errors2 = await open_client(browser, server.url, viewport)
        contexts.append(ctx2)
        sockets: list[WebSocket] = []
        second.on("websocket", lambda ws: sockets.append(ws))
        await log_in_new_device(second, anne.email)
        await first.click("#link-approve")
        await expect(second.locator("#connection")).to_have_attribute("data-state", "online")
        second_id = await device_id_of(second)
        await open_room(second)
        await expect(second.locator(".msg .text")).to_have_text(["Bonjour Anne"])
        # The approval gave it the identity secret (it approves the next ones itself).
        assert await eventually(lambda: second.evaluate(IDENTITY_HELD, anne.user_id))
        await paul.devices([anne.user_id], refresh=True)
        assert paul.device_verified(anne.user_id, second_id)
        assert await paul.safety_number(anne.user_id) == number  # a device added: same number

        # A device of Anne's that nobody approved (the SDK session of her sign-up).
        rogue = EncryptedClient(anne, tmp_path / "anne-sdk.key")
        await rogue.connect()
        assert rogue.identity is None
        await paul.devices([anne.user_id], refresh=True)
        assert not paul.device_verified(anne.user_id, anne.device_id)
        await first.click("#room-info")
        mine = first.locator(f"#room-details .member[data-user='{anne.user_id}']")
        await expect(mine.locator(".device-unverified")).to_have_text("1 appareil non vérifié")
        theirs = first.locator(f"#room-details .member[data-user='{paul_account.user_id}']")
        await expect(theirs.locator(".device-unverified")).to_have_count(0)
        await screenshot(first, "device-unverified-details", clear_notices=True)
        await first.locator("#room-details").get_by_role("button", name="Fermer").click()

        # "Mes appareils": the three devices, renamed, then one revoked.
        await first.goto(server.url + "/compte/securite")
        devices = first.locator("#devices [data-testid=device]")
        await expect(devices).to_have_count(3)
        this = first.locator("#devices [data-testid=device]", has_text="Cet appareil")
        await expect(this).to_contain_text("Vérifié")
        sdk = first.locator(f"#devices [data-id='{anne.device_id}']")
        await expect(sdk).to_contain_text("Non vérifié")
        await expect(sdk).to_have_attribute("data-verified", "")
        row = first.locator(f"#devices [data-id='{second_id}']")
        await expect(row).to_have_attribute("data-verified", "1")
        await row.locator("button.rename").click()
        await row.locator("input[name=name]").fill("Ordinateur du cabinet")
        await row.locator("button[type=submit]").click()
        await expect(row.locator(".device-name")).to_have_text("Ordinateur du cabinet")
        await screenshot(first, "devices", full_page=True, clear_notices=True)

        await row.locator("button.revoke").click()
        await expect(first.locator("dialog")).to_contain_text("Ordinateur du cabinet")
        # Its WebSocket closes within a second of the confirmation (the close event).
        async with sockets[-1].expect_event("close", timeout=1000):
            await first.click("dialog #confirm")
        await expect(devices).to_have_count(2)
        await expect(second.locator("#login-form")).to_be_visible()  # signed out there

        # Paul's client moves the room to a new key; the revoked browser cannot read it.
        revoked = await next_event(paul, "device.revoked")
        assert (revoked.user, revoked.device) == (anne.user_id, second_id)
        seq = await paul.send_text(room, "Après la révocation")
        await first.goto(server.url + "/")
        await open_room(first)
        await expect(first.locator(".msg .text").last).to_have_text("Après la révocation")
        await expect(first.locator(".event", has_text="révoqué")).to_contain_text(
            "Vous avez révoqué un de vos appareils"
        )
        [item] = await server.store.timeline(room, seq - 1, 1)
        assert item.body is not None
        await second.evaluate(
            f"""async () => (await import("/app/store.js")).put("revoked-device", "{second_id}")"""
        )
        found = await second.evaluate(KEYS_FOR, [room, paul.device_id, item.body.hex()])
        assert found["held"] >= 1 and found["matching"] == 0, found
        # Logging in again there: a new device, which holds no identity secret any more
        # and waits to be approved like any other.
        await log_in_new_device(second, anne.email)
        assert await device_id_of(second) != second_id
        assert await second.evaluate(IDENTITY_HELD, anne.user_id) is False
        assert errors1 == [] and errors2 == []
        assert await server.store.decryption_failures(room) == {}
    finally:
        for context in contexts:
            await context.close()
        if rogue is not None:
            await rogue.close()
        await paul.close()
