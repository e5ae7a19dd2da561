"""Files in a conversation, between two practitioners in Chromium (at both sizes):
several files chosen at once travel in one message; an image shows as a thumbnail once
decrypted in the receiver's browser (enlarged on a click), a PDF opens in the browser's
viewer ("Aperçu", a new tab on the decrypted bytes); files dropped onto the conversation
are sent; more than 10 at once are refused; "Fichiers" in the conversation's details
lists the room's files (name, size, sender, date), each downloadable."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import pytest
from attachment_kit import pdf_with_text
from browser_kit import (
    anne_and_paul,
    open_room,
    read_file,
    screenshot,
    start_direct,
)
from playwright.async_api import Browser, Page, expect

from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

PDF = pdf_with_text("Compte rendu de consultation")


def png(width: int, height: int) -> bytes:
    """A real PNG image (a colour gradient), so that the browser decodes a thumbnail."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png(96, 64)


async def drop_files(page: Page, files: dict[str, tuple[str, bytes]]) -> None:
    """Drop files onto the open conversation, as a drag from the desktop does."""
    await page.evaluate(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, [type, data]] of Object.entries(files)) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type }));
            }
            const chat = document.getElementById("chat");
            for (const kind of ["dragenter", "dragover", "drop"]) {
                const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
                chat.dispatchEvent(new DragEvent(kind, init));
            }
        }""",
        {name: (kind, base64.b64encode(data).decode()) for name, (kind, data) in files.items()},
    )


async def test_previews_several_files_drops_and_the_files_list(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int], tmp_path: Path
) -> None:
    anne, paul = await anne_and_paul(server, browser, viewport)
    page_a, page_p, ctx_p = anne.page, paul.page, paul.context
    await start_direct(page_a, paul.account.user_id)
    png = tmp_path / "radio-thorax.png"
    png.write_bytes(PNG)
    pdf = tmp_path / "compte-rendu.pdf"
    pdf.write_bytes(PDF)

    # Two files chosen at once: one message carrying both, with the caption.
    await page_a.fill("#composer", "Les examens de Mme D.")
    await page_a.set_input_files("#file-input", [str(png), str(pdf)])
    mine = page_a.locator(".msg.mine", has=page_a.locator("[data-testid=file]"))
    await expect(mine).to_have_count(1)
    await expect(mine.locator("[data-testid=file]")).to_have_count(2)
    await expect(mine.locator(".text")).to_have_text("Les examens de Mme D.")

    # Paul: the image decrypted in his browser, as a thumbnail; the PDF with "Aperçu".
    await open_room(page_p)
    theirs = page_p.locator(".msg.theirs", has=page_p.locator("[data-testid=file]"))
    await expect(theirs.locator("[data-testid=file]")).to_have_count(2)
    thumb = theirs.locator("img[data-testid=thumbnail]")
    await expect(thumb).to_be_visible()
    assert (await thumb.get_attribute("src") or "").startswith("blob:")
    assert await thumb.evaluate("(img) => img.complete && img.naturalWidth") == 96
    await screenshot(page_p, "file-previews", clear_notices=True)
    await theirs.locator("button.thumb").click()
    await expect(page_p.locator("#image-dialog img.enlarged")).to_be_visible()
    await page_p.locator("#image-dialog .close").click()
    await expect(page_p.locator("#image-dialog")).to_have_count(0)

    pdf_item = theirs.locator("[data-testid=file]", has_text="compte-rendu.pdf")
    await page_p.evaluate(  # what the page hands the new tab
        """() => {
            const make = URL.createObjectURL;
            window.blobs = new Map();
            URL.createObjectURL = (blob) => {
                const url = make(blob);
                window.blobs.set(url, blob);
                return url;
            };
        }"""
    )
    async with ctx_p.expect_page() as popup_info:
        await pdf_item.locator("button.preview-pdf").click()
    popup = await popup_info.value
    await popup.wait_for_url("blob:**")
    shown = await page_p.evaluate(
        """async (url) => {
            const blob = window.blobs.get(url);
            return [blob.type, Array.from(new Uint8Array(await blob.arrayBuffer()))];
        }""",
        popup.url,
    )
    assert shown[0] == "application/pdf" and bytes(shown[1]) == PDF  # decrypted, as a PDF
    await popup.close()

    # Paul drops two files onto the conversation: Anne gets them in one message.
    await drop_files(
        page_p,
        {"ecg.png": ("image/png", PNG), "ordonnance.pdf": ("application/pdf", PDF)},
    )
    got = page_a.locator(".msg.theirs", has=page_a.locator("[data-testid=file]"))
    await expect(got.locator("[data-testid=file]")).to_have_count(2)
    await expect(got.locator("[data-testid=file]").first).to_contain_text("ecg.png")
    await expect(got.locator("img[data-testid=thumbnail]")).to_be_visible()

    # Eleven at once: refused before anything is sent.
    many = []
    for n in range(11):
        path = tmp_path / f"page-{n}.pdf"
        path.write_bytes(PDF)
        many.append(str(path))
    await page_a.set_input_files("#file-input", many)
    await expect(page_a.locator(".notice.error")).to_contain_text(
        "10 fichiers au plus par message."
    )
    await expect(page_a.locator(".msg [data-testid=file]")).to_have_count(4)

    # "Fichiers" in the details: the four files, newest first, each downloadable.
    await page_p.click("#room-info")
    details = page_p.locator("#room-details")
    await expect(details.locator("h3", has_text="Fichiers")).to_have_text("Fichiers (4)")
    rows = details.locator("[data-testid=files-row]")
    await expect(rows).to_have_count(4)
    await expect(rows.nth(0)).to_contain_text("ecg.png")
    await expect(rows.nth(0)).to_contain_text("Vous")
    await expect(rows.nth(2)).to_contain_text("radio-thorax.png")
    await expect(rows.nth(2)).to_contain_text("Anne Éluard")
    await expect(rows.nth(3)).to_contain_text(f"compte-rendu.pdf · {len(PDF)} o")
    await screenshot(page_p, "files-list", clear_notices=True)
    async with page_p.expect_download() as download_info:
        await rows.nth(3).locator("button.download").click()
    download = await download_info.value
    assert download.suggested_filename == "compte-rendu.pdf"
    assert await read_file(await download.path()) == PDF
    assert anne.errors == [] and paul.errors == []
    await anne.context.close()
    await paul.context.close()
