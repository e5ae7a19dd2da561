"""Forwarding in the web client (Chromium, both sizes): a PDF received in a direct
conversation is forwarded, from the message's menu, into a patient case with another
colleague, who reads it marked "transféré" and downloads the same bytes; the server
got a new upload to the case, never the key of the first."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_kit import (
    log_in,
    open_client,
    open_room,
    read_file,
    start_direct,
)
from playwright.async_api import Browser, expect

from harness import ServerUnderTest, practitioner

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

PDF = b"%PDF-1.7\n% Compte rendu de Mme D.\n" + bytes(range(256)) * 50 + b"\n%%EOF\n"


async def test_forward_a_pdf_into_a_patient_case(
    server: ServerUnderTest, browser: Browser, tmp_path: Path, viewport: dict[str, int]
) -> None:
    anne = await practitioner(server.url, server.store)
    paul = await practitioner(server.url, server.store)
    claire = await practitioner(server.url, server.store)
    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    ctx_p, page_p, errors_p = await open_client(browser, server.url, viewport)
    ctx_c, page_c, errors_c = await open_client(browser, server.url, viewport)
    for page, who in ((page_a, anne), (page_p, paul), (page_c, claire)):
        await log_in(page, who)

    # Paul sends Anne a PDF.
    await start_direct(page_p, anne.user_id)
    pdf = tmp_path / "compte-rendu.pdf"
    pdf.write_bytes(PDF)
    await page_p.fill("#composer", "Le compte rendu de Mme D.")
    await page_p.set_input_files("#file-input", str(pdf))
    await expect(page_p.locator(".msg.mine [data-testid=file]")).to_contain_text("compte-rendu.pdf")

    # Anne opens a patient case with Claire.
    await page_a.click("#new-conversation")
    await page_a.click("#new-conversation-dialog nav button[data-kind=patient_case]")
    await page_a.locator("#new-conversation-dialog input[name=name]").fill("Mme D., 1950")
    await page_a.fill("#directory-search", claire.user_id)
    await page_a.locator("#search-results button.by-id", has_text=claire.user_id).click()
    await page_a.click("#create-room")
    await expect(page_a.locator("#room-title")).to_have_text("Mme D., 1950")

    # From the direct conversation, "Transférer" → the case.
    await open_room(page_a, "Prénom")
    theirs = page_a.locator(".msg.theirs", has=page_a.locator("[data-testid=file]"))
    await expect(theirs.locator("[data-testid=file]")).to_contain_text("compte-rendu.pdf")
    await theirs.locator(".msg-menu-toggle").click()
    await page_a.locator(".msg-menu .forward-message").click()
    await expect(page_a.locator("#forward-dialog .forward-preview")).to_have_text(
        "Le compte rendu de Mme D."
    )
    await page_a.locator("#forward-dialog .forward-target", has_text="Mme D., 1950").click()
    await expect(page_a.locator("#forward-dialog")).to_have_count(0)
    await expect(page_a.locator(".notice")).to_contain_text(
        "Message transféré dans « Mme D., 1950 »"
    )

    # Claire reads it in the case, marked forwarded, and gets the same bytes.
    await open_room(page_c, "Mme D., 1950")
    got = page_c.locator(".msg.theirs", has=page_c.locator("[data-testid=forwarded]"))
    await expect(got.locator(".text")).to_have_text("Le compte rendu de Mme D.")
    file_c = got.locator("[data-testid=file]")
    await expect(file_c).to_contain_text("compte-rendu.pdf")
    async with page_c.expect_download() as download_info:
        await file_c.locator("button.download").click()
    download = await download_info.value
    assert await read_file(await download.path()) == PDF
    case_id = await page_c.locator("[data-testid=room]").first.get_attribute("data-room")
    uploads = await server.store.unreferenced_attachments(2**62, 1000)  # none dangling
    assert all(u.room_id != case_id for u in uploads)
    assert errors_a == [] and errors_p == [] and errors_c == []
    for ctx in (ctx_a, ctx_p, ctx_c):
        await ctx.close()
