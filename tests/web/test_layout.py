"""A layout from 360 px to a wide desktop, and an installable web app.

- Nothing is wider than the screen at 360 px, 390 px or 1280 px: the public pages, the
  list, a conversation with a long file name (its "Télécharger" button in view), a
  patient case's buttons in its header, the dialogs; on a phone the list and the
  conversation are separate views, the header's ← and the phone's back button return.
- The manifest, its icons and the favicon are served; the service worker controls the
  page, keeps the application's files for an offline start, and never stores an API
  answer (no /v1/ in its cache, even after messages went through)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser_kit import log_in, named_practitioner, open_client, open_room, send_text
from playwright.async_api import Browser, Page, expect

from clients.python import EncryptedClient
from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

PDF = b"%PDF-1.7\n" + b"x" * 2000 + b"\n%%EOF\n"
LONG_NAME = "compte-rendu-consultation-cardiologie-du-patient-avec-un-nom-tres-long.pdf"


async def fits(page: Page, what: str) -> None:
    """Nothing scrolls sideways, and every visible button is inside the screen."""
    overflow = await page.evaluate(
        """() => {
            const w = document.documentElement.clientWidth;
            const wide = document.documentElement.scrollWidth > w;
            const out = [...document.querySelectorAll("button, a, input, select, textarea")]
                .filter((e) => e.offsetParent !== null && !e.closest("dialog:not([open])"))
                .map((e) => [e.id || e.className || e.tagName, e.getBoundingClientRect()])
                .filter(([, r]) => r.width > 0 && (r.left < -1 || r.right > w + 1))
                .map(([n, r]) => `${n} ${Math.round(r.left)}..${Math.round(r.right)}`);
            return { wide, out, w };
        }"""
    )
    assert not overflow["wide"] and overflow["out"] == [], (what, overflow)


@pytest.mark.parametrize("width", [360, 390, 1280])
async def test_nothing_is_cut_off(
    server: ServerUnderTest, browser: Browser, width: int, tmp_path: Path
) -> None:
    size = {"width": width, "height": 800 if width > 800 else 740}
    anne = await named_practitioner(server, "Anne", "Martin", "Pneumologie", "Lyon")
    paul = await named_practitioner(server, "Paul", "Durand", "Médecine générale", "Lyon")
    context, page, errors = await open_client(browser, server.url, size)
    for path in ("/connexion", "/inscription", "/conditions"):
        await page.goto(server.url + path)
        await expect(page.locator("main h1")).to_be_visible()
        await fits(page, path)
    await page.goto(server.url + "/connexion")
    await log_in(page, anne)
    # Paul opens the case once Anne's browser has its keys: its name is encrypted for them.
    host = EncryptedClient(paul, tmp_path / "paul.key")
    await host.connect()
    try:
        await host.create_room("patient_case", [anne.user_id], name="Cas de Mme D., BPCO sévère")
    finally:
        await host.close()
    await fits(page, "list")
    await page.click("#new-conversation")
    await fits(page, "new conversation")
    await page.keyboard.press("Escape")
    await open_room(page, "Cas de Mme D.")
    await fits(page, "patient case")
    await page.click("#room-info")
    await fits(page, "details")
    await page.keyboard.press("Escape")
    pdf = tmp_path / LONG_NAME
    pdf.write_bytes(PDF)
    await page.set_input_files("#file-input", str(pdf))
    download = page.locator(".msg.mine [data-testid=file] button.download")
    await expect(download).to_be_in_viewport()
    await send_text(page, "Un message assez long pour occuper toute la largeur " * 4)
    await fits(page, "conversation")
    if width < 800:  # one view at a time; ← and the phone's back button return
        await expect(page.locator("#room-list")).to_be_hidden()
        await page.click("#back")
        await expect(page.locator("#room-list")).to_be_visible()
        await expect(page.locator("#chat")).to_be_hidden()
        await page.go_forward()
        await expect(page.locator("#composer")).to_be_visible()
        await page.go_back()
        await expect(page.locator("#room-list")).to_be_visible()
    assert errors == []
    await context.close()


async def test_installable_app(server: ServerUnderTest) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        manifest = await http.get("/manifest.webmanifest")
        assert manifest.status_code == 200
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        body = manifest.json()
        assert (body["lang"], body["start_url"], body["display"]) == ("fr", "/", "standalone")
        purposes = set()
        for icon in body["icons"]:
            got = await http.get(icon["src"])
            assert got.status_code == 200 and got.headers["content-type"] == icon["type"]
            if icon["type"] == "image/png":
                width = int.from_bytes(got.content[16:20], "big")
                assert f"{width}x{width}" == icon["sizes"]
            purposes.add(icon["purpose"])
        assert purposes == {"any", "maskable"}
        favicon = await http.get("/favicon.ico")
        assert favicon.status_code == 200 and favicon.content.startswith(b"\x89PNG")
        worker = await http.get("/sw.js")
        assert worker.headers["content-type"].startswith("text/javascript")


async def test_service_worker_keeps_the_shell_only(
    server: ServerUnderTest, browser: Browser
) -> None:
    anne = await named_practitioner(server, "Anne", "Martin", "Pneumologie", "Lyon")
    paul = await named_practitioner(server, "Paul", "Durand", "Médecine générale", "Lyon")
    context = await browser.new_context(locale="fr-FR", service_workers="allow")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Trusted Type" in m.text else None)
    await page.goto(server.url + "/")
    await page.evaluate("navigator.serviceWorker.ready")
    await page.reload()  # now under its control
    assert await page.evaluate("Boolean(navigator.serviceWorker.controller)")
    await log_in(page, anne)
    await page.click("#new-conversation")
    await page.fill("#directory-search", paul.user_id)
    await page.locator("#search-results button.by-id", has_text=paul.user_id).click()
    await send_text(page, "Rien de ceci ne doit rester dans un cache")
    await open_room(page)
    cached = await page.evaluate(
        """async () => {
            const out = [];
            for (const name of await caches.keys()) {
                for (const req of await (await caches.open(name)).keys()) out.push(req.url);
            }
            return out;
        }"""
    )
    paths = [url.removeprefix(server.url) for url in cached]
    assert "/" in paths and "/app/main.js" in paths
    assert all(p == "/" or p.startswith(("/app/", "/vendor/", "/manifest")) for p in paths), paths
    # Offline, the application still starts (from its cache), says so, and reconnects.
    await context.set_offline(True)
    await page.reload()
    await expect(page.locator("#new-conversation")).to_be_visible()
    await expect(page.locator("#connection")).not_to_have_attribute("data-state", "online")
    await context.set_offline(False)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    await expect(page.locator("[data-testid=room]")).to_have_count(1)
    assert errors == []
    await context.close()
