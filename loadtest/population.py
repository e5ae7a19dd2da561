"""Verified practitioner accounts for benchmarks, created through the real REST API."""

from __future__ import annotations

import secrets

from clients.python import Account, log_in, sign_up
from storage import open_store

__all__ = ["PASSWORD", "verified_accounts"]

PASSWORD = "loadtest-password-0"


async def verified_accounts(
    url: str, database_url: str, count: int, *, specialty: str = "Médecine générale"
) -> list[Account]:
    """Sign up ``count`` practitioners on the node at ``url``, log each in on a new
    device, and mark them verified directly in the database (the admin's step)."""
    tag = secrets.token_hex(3)
    accounts = []
    for i in range(count):
        email = f"bench{i}-{tag}@example.org"
        await sign_up(
            url,
            email=email,
            password=PASSWORD,
            first_name="Bench",
            last_name=f"User{i}",
            postcode="75001",
            city="Paris",
            specialty=specialty,
            practice_mode="liberal",
        )
        accounts.append(await log_in(url, email, PASSWORD, device_name="bench"))
    store = await open_store(database_url)
    try:
        for account in accounts:
            await store.set_verified(account.user_id, True)
    finally:
        await store.close()
    return accounts
