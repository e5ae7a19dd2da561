"""``python -m server users ...`` as an operator runs it: against the node's database,
never a new empty one, and only within what SPEC §9.2 allows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from verification_kit import email_code, signed_up

from harness import ServerUnderTest
from server.cli import main


async def test_an_admin_command_refuses_a_database_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "elsewhere" / "confrere.db"
    monkeypatch.setenv("CONFRERE_DATABASE_URL", f"sqlite:///{missing}")
    for argv in (["users", "verify", "a@example.org"], ["stats", "decryption"]):
        assert await asyncio.to_thread(main, argv) == 2
        assert "no database at" in capsys.readouterr().err
    assert not missing.parent.exists()  # nothing created, not even the directory


async def test_verify_needs_a_confirmed_email_first(
    server: ServerUnderTest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    account, body = await signed_up(server, confirm=False)
    email = body["email"]
    monkeypatch.setenv("CONFRERE_DATABASE_URL", server.settings.database_url)
    assert await asyncio.to_thread(main, ["users", "verify", email]) == 1
    assert "e-mail not confirmed" in capsys.readouterr().err
    user = await server.store.user_by_email(email)
    assert user is not None and not user.verified
    async with httpx.AsyncClient(base_url=server.url) as http:
        confirmed = await http.post(
            "/v1/accounts/email/confirm",
            json={"code": await email_code(server, email)},
            headers={"Authorization": f"Bearer {account.token}"},
        )
        assert confirmed.status_code == 200
    assert await asyncio.to_thread(main, ["users", "verify", email]) == 0
    user = await server.store.user_by_email(email)
    assert user is not None and user.verified
