"""The service worker shows a Web Push as a content-free notification (SPEC.md §9.5):
Chromium delivers a push message to it through DevTools (as a push service would,
decrypted), and the notification it shows says "Confrère", the push's title, and
keeps the room to open. The security page says when a server does not push."""

from __future__ import annotations

import json
from typing import Any

import pytest
from browser_kit import eventually, log_in, named_practitioner
from playwright.async_api import Browser, expect

from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


async def test_a_push_becomes_a_content_free_notification(
    server: ServerUnderTest, browser: Browser
) -> None:
    context = await browser.new_context(locale="fr-FR", service_workers="allow")
    await context.grant_permissions(["notifications"], origin=server.url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto(server.url + "/")
        await page.evaluate("navigator.serviceWorker.ready")
        cdp = await context.new_cdp_session(page)
        registrations: list[dict[str, Any]] = []
        cdp.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda event: registrations.extend(event["registrations"]),
        )
        await cdp.send("ServiceWorker.enable")
        assert await eventually(lambda: _ready(registrations))
        registration = next(r for r in registrations if not r.get("isDeleted"))
        push = {"title": "Nouveau message dans Staff cardio", "room": "kT3q9ZxWm1bYc0Rv"}
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": server.url,
                "registrationId": registration["registrationId"],
                "data": json.dumps(push),
            },
        )
        shown: list[dict[str, Any]] = []

        async def notified() -> bool:
            shown[:] = await page.evaluate(
                """async () => (await (await navigator.serviceWorker.ready).getNotifications())
                    .map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data}))"""
            )
            return bool(shown)

        assert await eventually(notified)
        assert shown == [
            {
                "title": "Confrère",
                "body": "Nouveau message dans Staff cardio",
                "tag": "room:kT3q9ZxWm1bYc0Rv",
                "data": {"room": "kT3q9ZxWm1bYc0Rv"},
            }
        ]
        # Without a room id it can trust, the notification opens the list.
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": server.url,
                "registrationId": registration["registrationId"],
                "data": json.dumps({"title": "x", "room": "../../admin"}),
            },
        )
        assert await eventually(lambda: _count(page, 2))
        # This test server has no VAPID key: the security page says so.
        anne = await named_practitioner(server, "Anne", "Roux", "Pneumologie", "Lyon")
        await log_in(page, anne)
        await page.click("#account-security")
        await expect(page.locator("#push-state")).to_have_text(
            "Ce service n'envoie pas de notifications aux navigateurs."
        )
        assert errors == []
    finally:
        await context.close()


async def _ready(registrations: list[dict[str, Any]]) -> bool:
    return any(not r.get("isDeleted") for r in registrations)


async def _count(page: Any, n: int) -> bool:
    found: int = await page.evaluate(
        "async () => (await (await navigator.serviceWorker.ready).getNotifications()).length"
    )
    return found == n
