"""A practitioner's history on every device (SPEC.md §11.7), in real Chromium, at both
sizes: logged in on a second browser, approved from the first (the same code on both
screens), it reads the whole history, the file included; with both browsers gone, the
recovery phrase set up in "Sécurité du compte" restores it all on a third. No
decryption failure is reported on the way (what `stats decryption` counts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from attachment_kit import pdf_with_text
from browser_kit import (
    eventually,
    log_in,
    named_practitioner,
    open_client,
    open_room,
    read_file,
    screenshot,
    send_text,
)
from playwright.async_api import Browser, Page, expect

from clients.python import EncryptedClient, request
from harness import PASSWORD, ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

PDF = pdf_with_text("Compte rendu - Mme Durand")
CODE = re.compile(r"^\d{4} \d{4} \d{4}$")
PHRASE = re.compile(r"^([a-km-z2-9]{4}-){5}[a-km-z2-9]{4}$")
HISTORY = ["Bonjour Anne, voici le compte rendu", "Merci Paul, je le lis", "Le scanner"]


async def log_in_new_device(page: Page, email: str) -> None:
    """Log in on a browser that has never seen this account: it waits for approval."""
    await expect(page.locator("#login-form")).to_be_visible()
    await page.fill("#login-form input[name=email]", email)
    await page.fill("#login-form input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("h1")).to_have_text(
        "Approuvez cette connexion depuis un autre appareil"
    )
    await expect(page.locator("#link-code")).to_have_text(CODE)


async def device_id(page: Page) -> str:
    session = await page.evaluate("async () => (await import('/app/store.js')).get('session')")
    return str(session["deviceId"])


async def cross_signed(server: ServerUnderTest, user_id: str, device: str) -> bool:
    """The device's bundle carries its user's identity signature (server-checked)."""
    keys = await server.store.device_keys([user_id])
    return any(k.device_id == device and k.signature for k in keys)


async def sees_history(page: Page, texts: list[str]) -> None:
    await open_room(page)
    await expect(page.locator(".msg .text")).to_have_text(texts)
    await expect(page.locator(".msg .undecryptable")).to_have_count(0)
    item = page.locator(".msg [data-testid=file]")
    await expect(item).to_contain_text("scanner.pdf")
    async with page.expect_download() as info:
        await item.locator("button.download").click()
    assert await read_file(await (await info.value).path()) == PDF


async def test_second_browser_approved_then_phrase_restores_history(
    server: ServerUnderTest, browser: Browser, tmp_path: Path, viewport: dict[str, int]
) -> None:
    anne = await named_practitioner(
        server, "Anne", "Lefèvre", "Cardiologie et maladies vasculaires", "Lyon"
    )
    paul_account = await named_practitioner(server, "Paul", "Garnier", "Médecine générale", "Lyon")
    paul = EncryptedClient(paul_account, tmp_path / "paul.key")
    await paul.connect()
    contexts = []
    try:
        ctx1, first, errors1 = await open_client(browser, server.url, viewport)
        contexts.append(ctx1)
        await log_in(first, anne)
        room = (await paul.create_room("group", [anne.user_id], name="Avis cardio")).id
        await paul.send_text(room, HISTORY[0])
        await open_room(first)
        await expect(first.locator(".msg .text")).to_have_text(HISTORY[:1])
        await send_text(first, HISTORY[1])
        scan = tmp_path / "scanner.pdf"
        scan.write_bytes(PDF)
        await paul.send_file(room, scan, text=HISTORY[2])
        await expect(first.locator(".msg .text")).to_have_text(HISTORY)

        # A second browser: "Approuvez cette connexion…", the same code on the first.
        ctx2, second, errors2 = await open_client(browser, server.url, viewport)
        contexts.append(ctx2)
        await log_in_new_device(second, anne.email)
        code = await second.locator("#link-code").inner_text()
        dialog = first.locator("#approve-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("h2")).to_have_text("Nouvelle connexion à approuver")
        await expect(first.locator("#approve-code")).to_have_text(code)
        await screenshot(second, "device-approval-wait")
        await screenshot(first, "device-approval-ask")
        await first.click("#link-approve")
        await expect(dialog).to_have_count(0)
        await expect(second.locator("#connection")).to_have_attribute("data-state", "online")
        await sees_history(second, HISTORY)
        # Cross-signed by the approval; and it holds the identity secret now.
        second_id = await device_id(second)
        assert await eventually(lambda: cross_signed(server, anne.user_id, second_id))

        # From now on, what the first browser receives reaches the second too.
        await paul.send_text(room, "Reçu ?")
        await expect(second.locator(".msg .text").last).to_have_text("Reçu ?")

        # The key backup, set up from the first browser: the phrase is shown once.
        await first.goto(server.url + "/compte/securite")
        await expect(first.locator("#backup-state")).to_contain_text("Aucune sauvegarde")
        await first.click("#backup-set-up")
        phrase = await first.locator("#recovery-phrase").inner_text()
        assert PHRASE.match(phrase), phrase
        await expect(first.locator("#backup-phrase-box")).to_contain_text("Elle ne sera plus")
        await expect(first.locator("#backup-state")).to_contain_text("tenue à jour")
        # Three entries so far: Paul's key, this browser's own, the identity secret.
        await expect(first.locator("#backup-state")).to_have_attribute("data-entries", "3")
        await screenshot(first, "key-backup", full_page=True)
        first_id = await device_id(first)
        assert errors1 == []
        await ctx1.close()
        # The first browser is gone; the second, which got the backup key from it, adds
        # a new sender key that it alone receives to the backup.
        paul.rotate(room)
        await paul.send_text(room, "Nouvelle clé depuis la sauvegarde")
        await expect(second.locator(".msg .text").last).to_have_text(
            "Nouvelle clé depuis la sauvegarde"
        )

        async def backed_up() -> bool:
            info = await request(server.url, "GET", "/v1/keys/backup", token=anne.token)
            return bool(info["entries"] == 4)

        assert await eventually(backed_up)
        assert errors2 == []
        await ctx2.close()
        contexts.clear()
        # ... and revoked (lost computers): no device is left to approve a new one.
        for gone in (first_id, second_id):
            await request(server.url, "DELETE", f"/v1/devices/{gone}", token=anne.token)

        # A third browser restores the history with the phrase.
        ctx3, third, errors3 = await open_client(browser, server.url, viewport)
        contexts.append(ctx3)
        await log_in_new_device(third, anne.email)
        await expect(third.locator("#link-state")).to_contain_text("Aucun autre appareil")
        await third.click("#use-phrase")
        await third.fill("#phrase-form input[name=phrase]", "abcd-efgh-ijkm-npqr-stuv-wxyz")
        await third.click("#phrase-form button[type=submit]")
        await expect(third.locator("#phrase-error")).to_contain_text("ne correspond pas")
        await third.fill("#phrase-form input[name=phrase]", phrase.upper().replace("-", " "))
        await third.click("#phrase-form button[type=submit]")
        await expect(third.locator("#connection")).to_have_attribute("data-state", "online")
        await sees_history(third, [*HISTORY, "Reçu ?", "Nouvelle clé depuis la sauvegarde"])
        # The backup held the identity secret too: the restored browser signed itself.
        third_id = await device_id(third)
        assert await eventually(lambda: cross_signed(server, anne.user_id, third_id))
        assert errors3 == []
        assert await server.store.decryption_failures(room) == {}
    finally:
        for context in contexts:
            await context.close()
        await paul.close()
