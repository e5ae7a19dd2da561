"""The reviewer's queue and the administration in the browser: a reviewer sees the
pending manual verifications oldest first with their photos, approves one and rejects
the other with a reason (a refusal without one is stopped, in French); the approved
practitioner's page opens the messaging by itself, the refused one reads the reason on
their verification page. An administrator issues a regulator link (e-mailed to that
address, never shown) and reads it in the audit log. README screenshots."""

from __future__ import annotations

import httpx
import pytest
from browser_kit import log_in, named_practitioner, open_client, screenshot
from playwright.async_api import Browser, expect
from verification_kit import PNG, outbox_mails, signed_up

from clients.python import Account
from harness import PASSWORD, ServerUnderTest
from server.clock import now_ms

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


async def applicant(server: ServerUnderTest, first: str, last: str) -> tuple[Account, str]:
    """A confirmed account with a passport request waiting; (account, request id)."""
    account, _ = await signed_up(server, rpps=None, first_name=first, last_name=last)
    auth = {"Authorization": f"Bearer {account.token}"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        for side in ("front", "selfie"):
            put = await http.put(
                f"/v1/verification/documents/{side}",
                content=PNG,
                headers={**auth, "Content-Type": "image/png"},
            )
            assert put.status_code == 201, put.text
        made = await http.post(
            "/v1/verification/manual", json={"document": "passport"}, headers=auth
        )
        assert made.status_code == 201, made.text
    return account, made.json()["request"]["id"]


async def test_reviewer_approves_and_rejects(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    approved, approved_request = await applicant(server, "Chloé", "Lambert")
    refused, refused_request = await applicant(server, "Hugo", "Mercier")
    reviewer = await named_practitioner(server, "Rémi", "Renaud", "Médecine générale", "Lyon")
    await server.store.grant_role(reviewer.user_id, "reviewer", now_ms())

    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    await page_a.fill("#login-form input[name=email]", approved.email)
    await page_a.fill("#login-form input[name=password]", PASSWORD)
    await page_a.click("#login-form button[type=submit]")
    await expect(page_a.locator("#manual-pending")).to_be_visible()

    ctx, page, errors = await open_client(browser, server.url, viewport)
    await log_in(page, reviewer)
    await page.click("#nav-review")
    queue = page.locator("#review-queue [data-testid=request]")
    mine = page.locator(
        f"#review-queue [data-request='{approved_request}'], "
        f"#review-queue [data-request='{refused_request}']"
    )
    await expect(mine).to_have_count(2)
    # Oldest first: the two in the order they were made.
    ids = [await queue.nth(i).get_attribute("data-request") for i in range(await queue.count())]
    assert ids.index(approved_request) < ids.index(refused_request)
    first = page.locator(f"[data-request='{approved_request}']")
    await expect(first).to_contain_text("Chloé Lambert")
    await expect(first).to_contain_text("Passeport")
    await expect(first.locator("img[data-side=front]")).to_be_visible()
    await expect(first.locator("img[data-side=selfie]")).to_be_visible()
    await screenshot(page, "review")
    await first.locator("button.approve").click()
    await expect(first).to_have_count(0)
    # The approved practitioner's page opens the messaging by itself.
    await expect(page_a.locator("#new-conversation")).to_be_visible()

    second = page.locator(f"[data-request='{refused_request}']")
    await second.locator("button.reject").click()
    await expect(second.locator(".error")).to_have_text(
        "Indiquez le motif du refus : il est communiqué au praticien."
    )
    await second.locator("textarea[name=reason]").fill("Photo du passeport illisible")
    await second.locator("button.reject").click()
    await expect(second).to_have_count(0)
    ctx_r, page_r, errors_r = await open_client(browser, server.url, viewport)
    await page_r.fill("#login-form input[name=email]", refused.email)
    await page_r.fill("#login-form input[name=password]", PASSWORD)
    await page_r.click("#login-form button[type=submit]")
    await expect(page_r.locator("#manual-rejected")).to_contain_text("Photo du passeport illisible")
    assert errors == [] and errors_a == [] and errors_r == []
    for c in (ctx, ctx_a, ctx_r):
        await c.close()


async def test_admin_issues_a_regulator_link(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    admin = await named_practitioner(server, "Alice", "Moreau", "Santé publique", "Lyon")
    await server.store.grant_role(admin.user_id, "admin", now_ms())
    address = f"regulation.{viewport['width']}.{now_ms()}@sas.example.fr"
    ctx, page, errors = await open_client(browser, server.url, viewport)
    await log_in(page, admin)
    await page.click("#nav-admin")
    await page.fill("#regulator-link-form input[name=email]", address)
    await page.click("#issue-link")
    await expect(page.locator("#link-issued")).to_contain_text(f"Lien envoyé à {address}")
    [mail] = await outbox_mails(server, address, "regulator_link")
    assert "/inscription-regulateur#" in mail["url"]
    assert mail["url"] not in await page.locator("#app").inner_text()  # never shown
    # An address an account uses already: refused, in French.
    await page.fill("#regulator-link-form input[name=email]", admin.email)
    await page.click("#issue-link")
    await expect(page.locator("#link-error")).to_have_text(
        "Un compte utilise déjà cette adresse e-mail : un compte régulateur a besoin de sa"
        " propre adresse."
    )
    # The audit log, filtered on the administration's actions.
    await page.fill("#audit-filters input[name=action]", "admin.")
    await page.click("#audit-search")
    row = page.locator("#audit-entries tr[data-action='admin.regulator_link']").first
    await expect(row).to_contain_text("Lien d'inscription régulateur émis")
    await expect(row).to_contain_text(admin.user_id)
    await screenshot(page, "admin")
    assert errors == []
    await ctx.close()
