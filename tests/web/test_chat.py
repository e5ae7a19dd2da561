"""Two practitioners in two browser contexts (real Chromium, each with its own keys in
IndexedDB, never sent) exchange an end-to-end encrypted message and a PDF, found through
the directory, with unread counts, typing, read receipts and history after a reload;
at both sizes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser_kit import (
    eventually,
    log_in,
    named_practitioner,
    open_client,
    open_room,
    private_keys,
    read_file,
    record_uploads,
    send_text,
    start_direct_from_directory,
)
from playwright.async_api import Browser, expect

from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

PDF = b"%PDF-1.7\n% Compte rendu de consultation\n" + bytes(range(256)) * 400 + b"\n%%EOF\n"


async def test_two_practitioners_exchange_a_message_and_a_pdf(
    server: ServerUnderTest, browser: Browser, tmp_path: Path, viewport: dict[str, int]
) -> None:
    anne = await named_practitioner(
        server, "Anne", "Martin", "Cardiologie et maladies vasculaires", "Lyon"
    )
    paul = await named_practitioner(server, "Paul", "Durand", "Médecine générale", "Villeurbanne")
    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    ctx_p, page_p, errors_p = await open_client(browser, server.url, viewport)
    sent_a, sent_p = record_uploads(page_a), record_uploads(page_p)
    await log_in(page_a, anne)
    await log_in(page_p, paul)

    # Paul's client made his directory profile: Anne finds him by name.
    async def findable() -> bool:
        async with httpx.AsyncClient(base_url=server.url) as http:
            found = await http.get(
                "/v1/directory/search",
                params={"q": paul_name},
                headers={"Authorization": f"Bearer {anne.token}"},
            )
        return any(hit["user"] == paul.user_id for hit in found.json()["results"])

    paul_name = "Durand"
    assert await eventually(findable)
    await start_direct_from_directory(page_a, paul_name, paul.user_id)
    await expect(page_a.locator("#room-title")).to_contain_text(paul_name)
    await send_text(page_a, "Bonjour, pouvez-vous revoir Mme D. jeudi ?")

    # Paul: the room appears with one unread message, readable once opened.
    room_p = page_p.locator("[data-testid=room]")
    await expect(room_p.locator("[data-testid=unread]")).to_have_text("1")
    await room_p.click()
    await expect(page_p.locator(".msg.theirs .text")).to_have_text(
        "Bonjour, pouvez-vous revoir Mme D. jeudi ?"
    )
    await expect(room_p.locator("[data-testid=unread]")).to_have_count(0)
    # Anne sees the read receipt, then Paul typing.
    await expect(page_a.locator(".msg.mine [data-testid=receipt]")).to_contain_text("Lu par")
    await page_p.type("#composer", "Oui")
    await expect(page_a.locator("#typing")).to_contain_text("écrit")
    await page_p.click("#send")
    await expect(page_a.locator(".msg.theirs .text")).to_have_text("Oui")

    # A PDF, encrypted in Anne's browser, decrypted in Paul's.
    pdf = tmp_path / "compte-rendu.pdf"
    pdf.write_bytes(PDF)
    await page_a.evaluate(  # record what the progress bar shows during the upload
        """() => {
            const bar = document.getElementById("upload-progress");
            window.progressSeen = [];
            new MutationObserver(() => window.progressSeen.push([bar.hidden, bar.value]))
                .observe(bar, { attributes: true });
        }"""
    )
    await page_a.set_input_files("#file-input", str(pdf))
    await expect(page_a.locator(".msg.mine [data-testid=file]")).to_contain_text("compte-rendu.pdf")
    seen = await page_a.evaluate("window.progressSeen")
    shown = [value for hidden, value in seen if not hidden]
    assert shown and 0 < min(v for v in shown if v > 0) < 1 and max(shown) > 0.9
    assert shown == sorted(shown) and seen[-1][0]  # it only grows, and hides at the end
    file_p = page_p.locator(".msg.theirs [data-testid=file]")
    await expect(file_p).to_contain_text("compte-rendu.pdf")
    async with page_p.expect_download() as download_info:
        await file_p.locator("button.download").click()
    download = await download_info.value
    assert download.suggested_filename == "compte-rendu.pdf"
    assert await read_file(await download.path()) == PDF

    # The server only ever held ciphertext: the text is not in the stored bodies.
    room_id = await page_a.locator("[data-testid=room]").get_attribute("data-room")
    stored = await server.store.timeline(room_id or "", 0, 100)
    bodies = [item.body for item in stored if item.kind == "msg" and item.body]
    assert len(bodies) == 3 and not any(b"revoir" in body for body in bodies)

    await send_text(page_a, "Merci, je vous envoie le dossier complet.")
    await expect(page_p.locator(".msg.theirs .text").last).to_have_text(
        "Merci, je vous envoie le dossier complet."
    )
    # Keys live in IndexedDB: after a reload the history is read again from seq 1.
    await page_p.reload()
    await expect(page_p.locator("#connection")).to_have_attribute("data-state", "online")
    await open_room(page_p)
    await expect(page_p.locator(".msg .text")).to_have_text(
        [
            "Bonjour, pouvez-vous revoir Mme D. jeudi ?",
            "Oui",
            "",
            "Merci, je vous envoie le dossier complet.",
        ]
    )
    # ... and its sender key went on from where it was: what it sends now is readable.
    await send_text(page_p, "Parfait, je le lis ce soir.")
    await expect(page_a.locator(".msg.theirs .text").last).to_have_text(
        "Parfait, je le lis ce soir."
    )

    # The private keys stayed in the browsers: no frame or request carried them.
    for page, sent in ((page_a, sent_a), (page_p, sent_p)):
        assert len(sent) > 10
        for secret in await private_keys(page):
            assert not any(secret in data for data in sent)
    assert errors_a == [] and errors_p == []
    await ctx_a.close()
    await ctx_p.close()
