"""Pro Santé Connect over HTTP, against a real OpenID Connect provider of our own:
a matching card verifies the account, a mismatch points to manual review, and every
forged, expired, foreign-key, replayed or nonce-less answer is refused with a 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oidc_provider import OidcProvider, card
from verification_kit import PUBLIC_URL, node_with_psc, signed_up

from clients.python import Account, ServerError
from harness import ServerUnderTest, connected, next_of, opened, practitioner, sealed
from protocol.errors import ErrorCode
from protocol.frames import Msg

RPPS = "10003456786"


@pytest.fixture
async def psc(tmp_path: Path) -> AsyncIterator[tuple[ServerUnderTest, OidcProvider]]:
    async with node_with_psc(tmp_path) as pair:
        yield pair


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


async def _start(http: httpx.AsyncClient, account: Account) -> str:
    started = await http.post("/v1/verification/psc/start", headers=_auth(account))
    assert started.status_code == 200, started.text
    url = started.json()["authorization_url"]
    assert isinstance(url, str)
    return url


async def _card_login(url: str) -> str:
    """The browser at the provider: the card is accepted, back to our callback."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(url)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert isinstance(location, str)
    # Back to the configured public URL; the test talks to the node as its proxy would.
    assert location.startswith(PUBLIC_URL + "/v1/verification/psc/callback?")
    return location.removeprefix(PUBLIC_URL)


async def _flow(srv: ServerUnderTest, account: Account) -> httpx.Response:
    async with httpx.AsyncClient(base_url=srv.url) as http:
        callback = await _card_login(await _start(http, account))
        return await http.get(callback)


async def test_matching_card_verifies_the_account(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, provider = psc
    account, _ = await signed_up(srv)
    provider.card = card("8" + RPPS, "LEFEVRE DURAND", "Helene Marie")
    async with httpx.AsyncClient(base_url=srv.url) as http:
        url = await _start(http, account)
        query = parse_qs(urlsplit(url).query)
        assert query["code_challenge_method"] == ["S256"] and query["acr_values"] == ["eidas1"]
        assert {"state", "nonce", "code_challenge"} <= set(query)
        answer = await http.get(await _card_login(url))
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcome"] == "verified"
        me = (await http.get("/v1/me", headers=_auth(account))).json()["user"]
        assert me["verified"] is True
    assert provider.token_requests == 1
    mails = await srv.store.notifications(channel="email")
    assert any(n.template == "identity_verified" for n in mails)


async def test_one_number_verifies_one_account(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, provider = psc
    first, _ = await signed_up(srv)
    second, _ = await signed_up(srv)  # the same RPPS number, typed by someone else
    provider.card = card("8" + RPPS, "Lefèvre-Durand", "Hélène")
    assert (await _flow(srv, first)).json()["outcome"] == "verified"
    refused = await _flow(srv, second)
    assert refused.status_code == 409, refused.text
    assert "RPPS" in refused.json()["message"]
    user = await srv.store.user_by_id(second.user_id)
    assert user is not None and not user.verified


async def test_account_without_number_takes_the_cards(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, provider = psc
    account, _ = await signed_up(srv, rpps=None)
    provider.card = card("0" + "751234567", "Lefèvre-Durand", "Hélène")  # an ADELI idNat
    answer = await _flow(srv, account)
    assert answer.json()["outcome"] == "verified"
    user = await srv.store.user_by_id(account.user_id)
    assert user is not None and user.verified and user.rpps == "751234567"


@pytest.mark.parametrize(
    ("claims", "wrong"),
    [
        (card("8" + "10000000009", "Lefèvre-Durand", "Hélène"), ["rpps"]),
        (card("8" + RPPS, "Martin", "Hélène"), ["last_name"]),
        (card("8" + RPPS, "Lefèvre-Durand", "Claire"), ["first_name"]),
    ],
)
async def test_mismatch_leaves_unverified_and_points_to_manual(
    psc: tuple[ServerUnderTest, OidcProvider], claims: dict[str, Any], wrong: list[str]
) -> None:
    srv, provider = psc
    account, _ = await signed_up(srv)
    provider.card = claims
    answer = await _flow(srv, account)
    assert answer.status_code == 200
    body = answer.json()
    assert body["outcome"] == "mismatch" and body["mismatch"] == wrong
    assert body["next"] == "manual"
    user = await srv.store.user_by_id(account.user_id)
    assert user is not None and not user.verified


@pytest.mark.parametrize(
    "misbehaviour", ["other_key", "expired", "nonce", "audience", "issuer", "acr"]
)
async def test_bad_id_tokens_are_refused(
    psc: tuple[ServerUnderTest, OidcProvider], misbehaviour: str
) -> None:
    srv, provider = psc
    account, _ = await signed_up(srv)
    provider.card = card("8" + RPPS, "Lefèvre-Durand", "Hélène")
    provider.misbehave = {misbehaviour}
    answer = await _flow(srv, account)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "bad_frame"
    assert "id_token" in answer.json()["message"]
    user = await srv.store.user_by_id(account.user_id)
    assert user is not None and not user.verified


async def test_redirect_and_cookie_come_from_the_public_url(tmp_path: Path) -> None:
    """A forged Host does not choose where the provider sends the code back; the
    cookie is Secure when the public URL is https, though the node sees http."""
    async with node_with_psc(tmp_path, public_url="https://confrere.example.fr") as (srv, _):
        account, _ = await signed_up(srv)
        async with httpx.AsyncClient(base_url=srv.url) as http:
            started = await http.post(
                "/v1/verification/psc/start",
                headers={**_auth(account), "Host": "evil.example"},
            )
        assert started.status_code == 200, started.text
        query = parse_qs(urlsplit(started.json()["authorization_url"]).query)
        assert query["redirect_uri"] == ["https://confrere.example.fr/v1/verification/psc/callback"]
        assert "secure" in started.headers["set-cookie"].lower()


async def test_forged_id_token_is_refused(psc: tuple[ServerUnderTest, OidcProvider]) -> None:
    srv, provider = psc
    account, _ = await signed_up(srv)
    provider.card = card("8" + RPPS, "Lefèvre-Durand", "Hélène")
    provider.misbehave = {"forged"}
    answer = await _flow(srv, account)
    assert answer.status_code == 400 and answer.json()["code"] == "bad_frame"


async def test_state_is_single_use_and_must_exist(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, provider = psc
    account, _ = await signed_up(srv)
    provider.card = card("8" + RPPS, "Martin", "Hélène")  # mismatch: stays unverified
    async with httpx.AsyncClient(base_url=srv.url) as http:
        callback = await _card_login(await _start(http, account))
        assert (await http.get(callback)).status_code == 200
        replay = await http.get(callback)
        assert replay.status_code == 400 and "'state'" in replay.json()["message"]
        for query in ("", "?code=x"):
            answer = await http.get("/v1/verification/psc/callback" + query)
            assert answer.status_code == 400 and answer.json()["code"] == "bad_frame"
        for state in ("made-up", "été☀"):
            answer = await http.get(
                "/v1/verification/psc/callback", params={"state": state, "code": "x"}
            )
            assert answer.status_code == 403  # no flow of this browser has that state


async def test_provider_error_and_code_reuse(psc: tuple[ServerUnderTest, OidcProvider]) -> None:
    srv, provider = psc
    account, _ = await signed_up(srv)
    provider.card = card("8" + RPPS, "Lefèvre-Durand", "Hélène")
    async with httpx.AsyncClient(base_url=srv.url) as http:
        url = await _start(http, account)
        state = parse_qs(urlsplit(url).query)["state"][0]
        denied = await http.get(
            "/v1/verification/psc/callback", params={"state": state, "error": "access_denied"}
        )
        assert denied.status_code == 403
        # A code redeemed once (by someone who intercepted it) is refused the second time.
        callback = await _card_login(await _start(http, account))
        code = parse_qs(urlsplit(callback).query)["code"][0]
        first = await http.get(callback)
        assert first.json()["outcome"] == "verified"
        other, _ = await signed_up(srv)
        url2 = await _start(http, other)
        state2 = parse_qs(urlsplit(url2).query)["state"][0]
        stolen = await http.get(
            "/v1/verification/psc/callback", params={"state": state2, "code": code}
        )
        assert stolen.status_code == 400 and "refused" in stolen.json()["message"]


async def test_start_requires_confirmed_email_and_configuration(
    psc: tuple[ServerUnderTest, OidcProvider], server: ServerUnderTest
) -> None:
    srv, _ = psc
    unconfirmed, _ = await signed_up(srv, confirm=False)
    async with httpx.AsyncClient(base_url=srv.url) as http:
        refused = await http.post("/v1/verification/psc/start", headers=_auth(unconfirmed))
        assert refused.status_code == 403 and "e-mail" in refused.json()["message"]
    # A node without PSC settings says so (the plain `server` fixture has none).
    account, _ = await signed_up(server)
    async with httpx.AsyncClient(base_url=server.url) as http:
        off = await http.post("/v1/verification/psc/start", headers=_auth(account))
        assert off.status_code == 503 and off.json()["code"] == "unavailable"


async def test_verified_by_psc_messages_without_reconnecting(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, provider = psc
    peer = await connected(await practitioner(srv.url, srv.store))
    account, _ = await signed_up(srv)
    pending = await connected(account)
    try:
        room = await peer.create_room("direct", [account.user_id])
        await peer.send(room.id, sealed(b"bonjour"))
        with pytest.raises(ServerError) as info:
            await pending.sync(room.id, 0)
        assert info.value.code == ErrorCode.IDENTITY_UNVERIFIED

        provider.card = card("8" + RPPS, "Lefèvre-Durand", "Hélène")
        assert (await _flow(srv, account)).json()["outcome"] == "verified"

        seq = await pending.send(room.id, sealed(b"merci"))  # same connection
        assert seq == 3
        assert opened((await next_of(peer, Msg, room=room.id, seq=seq)).body) == b"merci"
        assert opened((await next_of(pending, Msg, room=room.id, seq=2)).body) == b"bonjour"
    finally:
        await pending.close()
        await peer.close()


async def test_a_browser_is_sent_back_to_the_web_client(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, provider = psc
    account, _ = await signed_up(srv)
    provider.card = card("8" + RPPS, "Lefèvre-Durand", "Hélène")
    html = {"Accept": "text/html,application/xhtml+xml"}
    async with httpx.AsyncClient(base_url=srv.url) as http:
        callback = await _card_login(await _start(http, account))
        answer = await http.get(callback, headers=html)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/#verification=verified"
        replay = await http.get(callback, headers=html)
        assert replay.status_code == 303
        assert replay.headers["location"].startswith("/#verification=error&reason=psc_state&")
        # A mismatch names the fields, for the web client to show the manual path.
        other, _ = await signed_up(srv)
        provider.card = card("8" + RPPS, "Martin", "Hélène")
        callback = await _card_login(await _start(http, other))
        answer = await http.get(callback, headers=html)
        assert answer.headers["location"] == "/#verification=mismatch&fields=last_name"


async def test_a_flow_completes_only_in_the_browser_that_started_it(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    """Someone starts a flow for their own account (named like the victim) and has the
    victim open the authorization link: the victim's card must not verify it."""
    srv, provider = psc
    attacker, _ = await signed_up(srv)
    provider.card = card("8" + RPPS, "Lefèvre-Durand", "Hélène")
    async with httpx.AsyncClient(base_url=srv.url) as attacker_browser:
        url = await _start(attacker_browser, attacker)
        callback = await _card_login(url)  # the victim authenticates at the provider
        async with httpx.AsyncClient(base_url=srv.url) as victim_browser:
            refused = await victim_browser.get(callback)
        assert refused.status_code == 403 and "browser" in refused.json()["message"]
        user = await srv.store.user_by_id(attacker.user_id)
        assert user is not None and not user.verified
        # The flow was not spent by the refusal: its own browser still completes it.
        assert (await attacker_browser.get(callback)).json()["outcome"] == "verified"
