"""The pure parts of accounts and verification: identifiers, passwords, links, the
review's transitions, id_token validation and the card/account comparison."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from server.verification import links, passwords, psc_signup, review
from server.verification.identifiers import (
    InvalidIdentifier,
    luhn_valid,
    parse_id_nat,
    parse_number,
)
from server.verification.oidc import OidcError, flow_secrets, pkce_challenge, validate_id_token
from server.verification.psc import CardIdentity, fold_name, mismatches
from storage.types import User


def test_rpps_luhn_and_adeli() -> None:
    assert luhn_valid("10003456786") and not luhn_valid("10003456789")
    assert parse_number("100 034 567 86").kind == "rpps"
    assert parse_number("751234567").kind == "adeli"
    for bad in ("10003456789", "1234", "12345678A", ""):
        with pytest.raises(InvalidIdentifier):
            parse_number(bad)


def test_id_nat_prefixes() -> None:
    rpps = parse_id_nat("810003456786")
    assert rpps.kind == "rpps" and rpps.number == "10003456786"
    assert rpps.id_nat == "810003456786"
    assert parse_id_nat("0751234567").number == "751234567"
    for bad in ("10003456786", "910003456786", "0123"):
        with pytest.raises(InvalidIdentifier):
            parse_id_nat(bad)


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("correct horse battery staple", True),
        ("Tr0ub4dor&3-xyz", True),
        ("short", False),
        ("x" * 300, False),
        ("Azerty1234", False),
        ("motdepasse2024", False),
        ("abababababab", False),
        ("9876543210", False),
        ("Confrere2026!", False),  # built on a breached password, digits added
        ("qwertzuiop123", False),  # a keyboard row
        ("soleil soleil soleil", False),  # a word repeated
        ("Pierre-Louis 1985 au marché", True),
    ],
)
def test_password_rules(password: str, ok: bool) -> None:
    assert (passwords.problem(password) is None) is ok


def test_password_must_not_be_the_users_name() -> None:
    for refused in (
        passwords.problem("Dupont-Marie", names=("Dupont",)),
        passwords.problem("jeanne.martin1", email="jeanne.martin@example.org"),
    ):
        assert refused is not None and refused.reason == "password_personal"


def test_password_reasons_tell_the_rules_apart() -> None:
    """Clients explain each refusal in their own words, by its reason (SPEC.md §8.1)."""
    cases = {
        "court": "password_short",
        "x" * 300: "password_long",
        "abababababab": "password_repeated",
        "Motdepasse123": "password_common",
        "98765432109876": "password_sequence",
        "abcdefghijkl": "password_weak",
    }
    for password, reason in cases.items():
        refused = passwords.problem(password)
        assert refused is not None and refused.reason == reason, password


def test_regulator_links() -> None:
    key = b"k" * 32
    token, claims = links.sign_link(key, "reg@example.org", 2000)
    assert links.read_link(key, token, 1000) == claims
    with pytest.raises(links.BadLink, match="expired"):
        links.read_link(key, token, 2000)
    with pytest.raises(links.BadLink):
        links.read_link(b"o" * 32, token, 1000)  # signed with another key
    payload, _, mac = token.partition(".")
    with pytest.raises(links.BadLink):
        links.read_link(key, payload[:-2] + "AA." + mac, 1000)
    for junk in ("", "abc", "a.b.c", "!!!.???"):
        with pytest.raises(links.BadLink):
            links.read_link(key, junk, 1000)


def test_psc_signup_states_and_tickets() -> None:
    key = b"k" * 32
    state = psc_signup.new_state(key, 2000)
    assert psc_signup.is_signup_state(state) and not psc_signup.is_signup_state("abc")
    psc_signup.read_state(key, state, 1000)
    with pytest.raises(psc_signup.BadToken):
        psc_signup.read_state(key, state, 2000)  # expired
    card = CardIdentity(parse_id_nat("8" + "10003456786"), "LEFEVRE-DURAND", ("HELENE", "MARIE"))
    ticket = psc_signup.ticket(key, card, 2000)
    assert psc_signup.read_ticket(key, ticket, 1000) == (card, 2000)
    assert psc_signup.prefill(card) == {
        "first_name": "Helene",
        "last_name": "Lefevre-Durand",
        "rpps": "10003456786",
    }
    for bad in (
        (key, ticket, 2000),  # expired
        (b"o" * 32, ticket, 1000),  # another server's
        (key, state.removeprefix("signup."), 1000),  # a state is no ticket
    ):
        with pytest.raises(psc_signup.BadToken):
            psc_signup.read_ticket(*bad)


def test_review_transitions() -> None:
    assert review.next_state("pending", "approve") == "approved"
    assert review.next_state("pending", "reject") == "rejected"
    for state in ("approved", "rejected"):
        with pytest.raises(review.InvalidTransition):
            review.next_state(state, "approve")  # type: ignore[arg-type]
    assert review.required_sides("id_card") == ("front", "back", "selfie")


KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


def _token(key: RSAKey = KEY, **claims: object) -> str:
    now = int(time.time())
    base = {"iss": "https://psc", "aud": "me", "sub": "s", "iat": now, "exp": now + 3600}
    base.update({"nonce": "n"}, **claims)
    return jwt.encode({"alg": "RS256", "kid": "k1"}, base, key)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (_token(exp=int(time.time()) - 3600), "expired"),
        (_token(nonce="other"), "nonce"),
        (_token(aud="someone-else"), "claims"),
        (_token(iss="https://evil"), "claims"),
        (_token(RSAKey.generate_key(2048, parameters={"kid": "k1"})), "rejected"),
        ("not.a.jwt", "rejected"),
        (_token(aud=["me", "other"]), "authorised party"),
    ],
)
def test_id_token_validation(token: str, reason: str) -> None:
    keys = KeySet([KEY])
    with pytest.raises(OidcError, match=reason):
        validate_id_token(
            token, keys, issuer="https://psc", client_id="me", nonce="n", now=time.time()
        )


def test_good_id_token_and_unsigned_tokens() -> None:
    keys = KeySet([KEY])
    claims = validate_id_token(
        _token(), keys, issuer="https://psc", client_id="me", nonce="n", now=time.time()
    )
    assert claims["sub"] == "s"
    header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    unsigned = header + "." + _token().split(".")[1] + "."
    with pytest.raises(OidcError):
        validate_id_token(
            unsigned, keys, issuer="https://psc", client_id="me", nonce="n", now=time.time()
        )


def test_flow_secrets_and_pkce() -> None:
    verifier, nonce = flow_secrets(b"k" * 32, "state")
    assert 43 <= len(verifier) <= 128 and verifier != nonce
    assert flow_secrets(b"k" * 32, "state") == (verifier, nonce)
    assert flow_secrets(b"k" * 32, "other")[0] != verifier
    # RFC 7636 appendix B.
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def _user(first: str, last: str, rpps: str | None) -> User:
    return User("u", "e", "h", first, last, "75001", "Paris", "x", "liberal", rpps, False, 0)


def test_card_comparison() -> None:
    card = CardIdentity(parse_id_nat("810003456786"), "LEFEVRE DURAND", ("Helene", "Marie"))
    assert fold_name("Lefèvre-Durand") == fold_name("LEFEVRE  DURAND") == "lefevre durand"
    assert mismatches(_user("Hélène", "Lefèvre-Durand", "10003456786"), card) == []
    assert mismatches(_user("Hélène Marie", "Lefèvre-Durand", None), card) == []
    assert mismatches(_user("Marie", "Lefèvre", "751234567"), card) == [
        "last_name",
        "first_name",
        "rpps",
    ]
