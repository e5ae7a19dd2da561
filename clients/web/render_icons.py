"""Render the web client's SVG icons to the PNG sizes its manifest lists.

The PNGs are committed (``app/icons/``); run this after changing an SVG:
``.venv/bin/python clients/web/render_icons.py`` (Debian's Chromium, via Playwright).
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from playwright.async_api import async_playwright

ICONS = Path(__file__).resolve().parent / "app" / "icons"
SIZES = (
    ("icon.svg", 32, "icon-32.png"),
    ("icon.svg", 192, "icon-192.png"),
    ("icon.svg", 512, "icon-512.png"),
    ("maskable.svg", 512, "maskable-512.png"),
)


async def main() -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        for source, size, target in SIZES:
            page = await browser.new_page(viewport={"width": size, "height": size})
            svg = base64.b64encode((ICONS / source).read_bytes()).decode()
            await page.set_content(
                '<body style="margin:0"><img style="display:block" '
                f'width="{size}" height="{size}" src="data:image/svg+xml;base64,{svg}"></body>'
            )
            await page.locator("img").evaluate("img => img.decode()")
            await page.screenshot(path=str(ICONS / target), omit_background=True)
            await page.close()
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
