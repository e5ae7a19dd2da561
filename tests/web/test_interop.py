"""A browser user and a Python SDK user (EncryptedClient) converse both ways: text and
an encrypted PDF each way, through the same wire protocol and encryption formats; the
browser shows the same safety number as the SDK, and tells when it changes; a forged
message is shown as unreadable and reported; a guest the browser invited by e-mail gets
its keys forwarded when promoted, and reads what was sent since the invitation, not
before."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from browser_kit import (
    eventually,
    invite_by_email,
    log_in,
    new_group,
    open_client,
    read_file,
    send_text,
)
from playwright.async_api import Browser, expect
from verification_kit import email_code

from clients.python import Decrypted, EncryptedClient, Undecryptable
from clients.python import log_in as log_in_sdk
from clients.python.e2ee import encode_content
from clients.python.rest import confirm_email, sign_up
from harness import PASSWORD, ServerUnderTest, practitioner
from protocol.crypto.identity import IdentityKeys, sign_device

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

PDF = b"%PDF-1.4\n% ordonnance\n" + b"x" * 70_000 + b"\n%%EOF\n"  # two chunks


async def next_from(client: EncryptedClient, sender: str) -> Decrypted:
    """The next message ``sender`` wrote (the SDK also hands back its own)."""
    async with asyncio.timeout(15):
        while True:
            item = await client.recv()
            if isinstance(item, Decrypted) and item.sender == sender:
                return item


async def test_browser_and_sdk_converse_both_ways(
    server: ServerUnderTest, browser: Browser, tmp_path: Path
) -> None:
    anne = await practitioner(server.url, server.store)  # in the browser
    bob_account = await practitioner(server.url, server.store)  # with the SDK
    bob = EncryptedClient(bob_account, tmp_path / "bob.key")
    await bob.connect()
    try:
        room = await bob.create_room("direct", [anne.user_id])
        context, page, errors = await open_client(browser, server.url)
        await log_in(page, anne)
        # the browser publishes its bundle on welcome
        assert await eventually(lambda: bob.devices([anne.user_id], refresh=True))

        # SDK -> browser
        await bob.send_text(room.id, "Bonjour depuis le SDK Python")
        await page.locator("[data-testid=room]").click()
        await expect(page.locator(".msg.theirs .text")).to_have_text("Bonjour depuis le SDK Python")
        # browser -> SDK
        await send_text(page, "Bien reçu, réponse du navigateur")
        got = await next_from(bob, anne.user_id)
        assert (got.room, got.sender, got.text) == (
            room.id,
            anne.user_id,
            "Bien reçu, réponse du navigateur",
        )

        # a message whose signature was tampered with is shown as unreadable, and
        # reported to the server (keys.report), never displayed
        body = bytearray(await bob._encrypt(room.id, encode_content("falsifié")))
        body[-1] ^= 1
        await bob.client.send(room.id, bytes(body))
        await expect(page.locator(".msg.bad .undecryptable")).to_contain_text(
            "sa signature ne correspond pas"
        )
        await expect(page.locator(".msg .text", has_text="falsifié")).to_have_count(0)

        async def reported() -> bool:
            failures = await server.store.decryption_failures(room.id)
            return failures.get((bob.device_id, "bad_signature")) == 1

        assert await eventually(reported)

        # a PDF from the browser, fetched and checked by the SDK
        pdf = tmp_path / "ordonnance.pdf"
        pdf.write_bytes(PDF)
        await page.set_input_files("#file-input", str(pdf))
        got = await next_from(bob, anne.user_id)
        assert [f.name for f in got.files] == ["ordonnance.pdf"]
        assert await bob.fetch_file(got.files[0]) == PDF

        # a PDF from the SDK, downloaded and checked by the browser
        await bob.send_file(room.id, PDF, filename="retour.pdf", text="Voici")
        item = page.locator(".msg.theirs [data-testid=file]", has_text="retour.pdf")
        async with page.expect_download() as info:
            await item.locator("button.download").click()
        assert await read_file(await (await info.value).path()) == PDF

        # Safety numbers: the browser shows the SDK's 60 digits, computed over the two
        # identity keys (cross-signing): a new device of Bob's leaves them as they are.
        def grouped(number: str) -> str:
            return " ".join(number[i : i + 5] for i in range(0, 60, 5))

        await page.click("#safety")
        expected = await bob.safety_number(anne.user_id)
        shown = page.locator("#safety-number")
        await expect(shown).to_have_text(grouped(expected))
        await page.keyboard.press("Escape")
        phone = EncryptedClient(
            await log_in_sdk(server.url, bob_account.email, PASSWORD, device_name="phone"),
            tmp_path / "bob-phone.key",
        )
        await phone.connect()
        try:
            await page.click("#safety")
            assert await bob.safety_number(anne.user_id) == expected
            await expect(shown).to_have_text(grouped(expected))
            await expect(page.locator(".key-change")).to_have_count(0)
            await page.keyboard.press("Escape")
            # Bob's identity key itself replaced: the number changes, the browser says so.
            other = IdentityKeys.generate()
            await phone.client.upload_keys(
                phone.bundle.to_bytes(),
                identity=other.record(bob.user_id).to_bytes(),
                signature=sign_device(other, phone.bundle).to_bytes(),
                reset=True,
            )
            await page.click("#safety")
            changed = await bob.safety_number(anne.user_id)
            assert changed != expected
            await expect(shown).to_have_text(grouped(changed))
            await expect(page.locator(".key-change")).to_contain_text("clé d'identité")
        finally:
            await phone.close()
        assert errors == []
        await context.close()
    finally:
        await bob.close()


async def test_a_guest_invited_from_the_browser_reads_what_was_sent_before(
    server: ServerUnderTest, browser: Browser, tmp_path: Path
) -> None:
    anne = await practitioner(server.url, server.store)
    context, page, errors = await open_client(browser, server.url)
    await log_in(page, anne)
    await new_group(page, "Staff cardio")
    await send_text(page, "Avant l'invitation : pas pour l'invitée.")
    guest_email = f"guest-{anne.user_id}@example.org".lower()
    await invite_by_email(page, guest_email)
    # The invitation is a visible event; the browser starts a new sender key on it.
    await expect(page.locator(".event", has_text="un confrère par e-mail")).to_be_visible()
    await send_text(page, "Bonjour, pouvez-vous voir ce patient ?")
    await send_text(page, "Le bilan suit demain.")

    await sign_up(
        server.url,
        email=guest_email,
        password=PASSWORD,
        first_name="Inès",
        last_name="Invitée",
        postcode="69003",
        city="Lyon",
        specialty="Médecine générale",
        practice_mode="liberal",
    )
    account = await log_in_sdk(server.url, guest_email, PASSWORD, device_name="sdk")
    await server.store.set_verified(account.user_id, True)
    guest = EncryptedClient(account, tmp_path / "guest.key", key_wait=4.0)
    await guest.connect()  # its bundle is published before the promotion
    try:
        code = await email_code(server, guest_email)
        await confirm_email(account, code)  # promotes the guest
        await expect(page.locator(".event", has_text="invité(e) par e-mail")).to_be_visible()
        texts: list[str] = []
        seqs: list[int] = []
        refused: list[Undecryptable] = []
        async with asyncio.timeout(30):
            while len(texts) + len(refused) < 3:
                item = await guest.recv()
                if isinstance(item, Undecryptable):
                    refused.append(item)
                elif isinstance(item, Decrypted):
                    texts.append(item.text)
                    seqs.append(item.seq)
        assert texts == ["Bonjour, pouvez-vous voir ce patient ?", "Le bilan suit demain."]
        # What was sent before the invitation stays unreadable to the promoted guest.
        assert len(refused) == 1 and refused[0].seq < min(seqs)
    finally:
        await guest.close()
    assert errors == []
    await context.close()
