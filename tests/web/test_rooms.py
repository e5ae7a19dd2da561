"""Running a conversation from the screens: a group created with colleagues and a guest
invited by e-mail at creation, renamed, a member made administrator, another removed,
ownership handed over, the owner leaving; presence dots and the unread count in the
tab's title; a patient case with its encrypted header, closed (read-only) and
reopened. Each change is seen by the other side. At both sizes."""

from __future__ import annotations

import asyncio
import re

import pytest
from browser_kit import (
    eventually,
    log_in,
    named_practitioner,
    open_client,
    open_room,
    send_text,
    to_list,
)
from playwright.async_api import Browser, Page, expect

from clients.python import Client
from harness import ServerUnderTest
from protocol.frames import Event

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


async def pick_by_id(page: Page, user_id: str) -> None:
    await page.fill("#directory-search", user_id)
    await page.locator("#search-results button.by-id", has_text=user_id).click()


async def details(page: Page) -> None:
    if not await page.locator("#room-details").count():
        await page.click("#room-info")
    await expect(page.locator("#room-details")).to_be_visible()


async def close_dialogs(page: Page) -> None:
    while await page.locator("dialog[open]").count():
        await page.keyboard.press("Escape")


async def manage(page: Page, user_id: str, action: str) -> None:
    """Details → the member's "Gérer" → ``action`` (confirmed when asked)."""
    await details(page)
    row = page.locator(f"#member-list [data-user='{user_id}']")
    await row.locator("details.manage summary").click()
    await row.get_by_role("button", name=action).click()
    if await page.locator("#confirm").count():
        await page.click("#confirm")


async def test_rename_roles_remove_leave(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    anne = await named_practitioner(server, "Anne", "Martin", "Pneumologie", "Lyon")
    paul = await named_practitioner(server, "Paul", "Durand", "Médecine générale", "Lyon")
    claire = await named_practitioner(server, "Claire", "Petit", "Radiologie", "Lyon")
    watcher = Client(claire)
    await watcher.connect()
    guest = f"interne.{anne.user_id}@example.fr".lower()
    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    ctx_p, page_p, errors_p = await open_client(browser, server.url, viewport)
    try:
        await log_in(page_a, anne)
        await log_in(page_p, paul)

        # A group with two colleagues and, at creation, a guest invited by e-mail.
        await page_a.click("#new-conversation")
        await page_a.click("#new-conversation-dialog nav button[data-kind=group]")
        await page_a.locator("#new-conversation-dialog input[name=name]").fill("Staff pneumo")
        await pick_by_id(page_a, paul.user_id)
        await pick_by_id(page_a, claire.user_id)
        await page_a.fill("#invite-email", guest)
        await page_a.click("#invite-email-add")
        await expect(page_a.locator("#picked li")).to_have_count(3)
        await page_a.click("#create-room")
        await expect(page_a.locator("#room-title")).to_have_text("Staff pneumo")
        await expect(page_a.locator(".event", has_text="un confrère par e-mail")).to_be_visible()
        assert await eventually(lambda: server.store.notifications(recipient=guest))

        # Presence: Paul is online; the guest waits in the list of invitations.
        await details(page_a)
        paul_row = page_a.locator(f"#member-list [data-user='{paul.user_id}']")
        await expect(paul_row.locator(".presence")).to_have_class(re.compile(r"\bonline\b"))
        await expect(page_a.locator("#invited-list")).to_contain_text(guest)

        # Unread messages show in Paul's tab title while he is elsewhere.
        await close_dialogs(page_a)
        await send_text(page_a, "Staff jeudi 8 h")
        await expect(page_p).to_have_title("(1) Confrère")
        await open_room(page_p, "Staff pneumo")
        await expect(page_p).to_have_title(re.compile(r"^Confrère"))

        # Renamed by the owner: everyone sees the new name.
        await details(page_a)
        await page_a.fill("#rename-form input[name=name]", "Staff pneumologie")
        await page_a.click("#rename-form button[type=submit]")
        await expect(page_p.locator("#room-title")).to_have_text("Staff pneumologie")
        await expect(page_p.locator(".event").last).to_have_text(
            "Anne Martin a renommé la conversation en « Staff pneumologie »"
        )

        # Paul made administrator: he sees it, and may now invite.
        await manage(page_a, paul.user_id, "Nommer administrateur")
        await expect(paul_row.locator(".role")).to_have_text("Administrateur")
        await expect(page_p.locator(".event").last).to_have_text(
            "Vous êtes désormais administrateur (par Anne Martin)"
        )
        await details(page_p)
        await expect(page_p.locator("#room-details #invite")).to_be_visible()
        await close_dialogs(page_p)

        # Claire removed: she is told (member.left), the others see it.
        await manage(page_a, claire.user_id, "Retirer de la conversation")
        await expect(page_a.locator("#member-list .member")).to_have_count(2)
        await expect(page_p.locator(".event").last).to_have_text(
            "Claire Petit a été retiré(e) par Anne Martin"
        )
        room_id = re.sub(r".*/conversations/", "", page_a.url)
        async with asyncio.timeout(15):
            while True:
                item = await watcher.recv()
                if isinstance(item, Event) and item.kind == "member.left":
                    assert (item.room, item.user, item.reason) == (
                        room_id,
                        claire.user_id,
                        "removed",
                    )
                    break

        # The owner cannot leave before handing over; then leaves.
        await page_a.click("#room-details #leave")
        await expect(page_a.locator("#details-error")).to_contain_text("transférez d'abord")
        await manage(page_a, paul.user_id, "Transférer la propriété")
        await expect(paul_row.locator(".role")).to_have_text("Propriétaire")
        await page_a.click("#room-details #leave")
        await page_a.click("#confirm")
        await expect(page_a.locator("[data-testid=room]", has_text="Staff")).to_have_count(0)
        await expect(page_p.locator(".event").last).to_have_text(
            "Anne Martin a quitté la conversation"
        )
        await details(page_p)
        await expect(page_p.locator("#member-list .member")).to_have_count(1)
        await expect(page_p.locator("#member-list .role")).to_have_text("Propriétaire")
        await close_dialogs(page_p)
        assert errors_a == [] and errors_p == []
    finally:
        await watcher.close()
        await ctx_a.close()
        await ctx_p.close()


async def test_patient_case_closed_and_reopened(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    anne = await named_practitioner(
        server, "Anne", "Martin", "Cardiologie et maladies vasculaires", "Lyon"
    )
    paul = await named_practitioner(server, "Paul", "Durand", "Médecine générale", "Lyon")
    context, page, errors = await open_client(browser, server.url, viewport)
    await log_in(page, anne)
    await page.click("#new-conversation")
    await page.click("#new-conversation-dialog nav button[data-kind=patient_case]")
    dialog = page.locator("#new-conversation-dialog")
    await dialog.locator("input[name=name]").fill("RCP cardiologie")
    await dialog.locator("textarea[name=header]").fill("M. Jean Dupont, né le 01/02/1950")
    await pick_by_id(page, paul.user_id)
    await page.click("#create-room")
    await expect(page.locator("#room-title")).to_have_text("RCP cardiologie")
    await expect(page.locator("#case-header")).to_have_text("M. Jean Dupont, né le 01/02/1950")

    await page.click("#case-status")  # closed: read-only
    await expect(page.locator(".closed")).to_contain_text("lecture seule")
    await expect(page.locator("#composer")).to_have_count(0)
    await page.click("#case-status")  # open again
    await expect(page.locator("#composer")).to_be_visible()
    await to_list(page)
    await expect(page.locator("[data-testid=room]", has_text="RCP cardiologie")).to_have_count(1)
    assert errors == []
    await context.close()
