"""Every validator of untrusted REST input in ``server/`` answers any input with a
value or an :class:`~server.errors.ApiError` (a 4xx naming the field), never another
exception (which would be a 500)."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from server.directory.patient import parse_birth_date
from server.directory.query import PARAMS, decode_cursor, parse_search
from server.errors import ApiError
from server.fields import choice, email, optional_text, text
from server.limits import Bucket
from server.origin import origin_allowed
from server.uploads import upload_request
from server.verification.identifiers import InvalidIdentifier, parse_id_nat, parse_number

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
texts = st.text(max_size=80) | st.sampled_from(["", " ", "0", "-1", "1e9", "%00", "é"])


def api_errors_only(fn: Any, *args: Any) -> None:
    with contextlib.suppress(ApiError):
        fn(*args)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(0, 300), st.integers(0, 10))
def test_body_field_checks(value: Any, max_len: int, min_len: int) -> None:
    body = {"f": value}
    api_errors_only(text, body, "f", max_len, min_len)
    api_errors_only(optional_text, body, "f", max_len)
    api_errors_only(choice, body, "f", ("liberal", "salarie"))
    api_errors_only(email, body, "f")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["kind", "room", "content_type", "name", "x"]), texts),
    st.dictionaries(st.sampled_from(["content-length", "content-type"]), texts),
)
def test_upload_requests(query: dict[str, str], headers: dict[str, str]) -> None:
    api_errors_only(upload_request, QueryParams(urlencode(query)), headers)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*sorted(PARAMS), "x"]), texts))
def test_directory_searches(params: dict[str, str]) -> None:
    api_errors_only(parse_search, params)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_directory_cursors(value: str) -> None:
    api_errors_only(decode_cursor, value)


@settings(max_examples=300, deadline=None)
@given(texts | st.from_regex(r"[08]?\d{9,11}", fullmatch=True))
def test_practitioner_numbers(value: str) -> None:
    for parse in (parse_number, parse_id_nat):
        with contextlib.suppress(InvalidIdentifier):
            parse(value)


@settings(max_examples=300, deadline=None)
@given(texts | st.from_regex(r"\d{2}/\d{2}/\d{4}|\d{4}-\d{2}-\d{2}", fullmatch=True))
def test_birth_dates(value: str) -> None:
    parsed = parse_birth_date(value, dt.date(2026, 1, 1))
    assert parsed is None or dt.date(1895, 1, 1) <= parsed <= dt.date(2026, 1, 1)


@settings(max_examples=300, deadline=None)
@given(
    st.none() | texts | st.sampled_from(["http://a:80", "https://A", "null", "ws://x"]),
    st.none() | texts,
    st.lists(texts, max_size=2).map(tuple),
)
def test_origins(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> None:
    verdict = origin_allowed(origin, host, allowed)
    assert isinstance(verdict, bool)
    if origin is None:
        assert verdict  # non-browser clients send no Origin
    if origin is not None and not allowed and not host:
        assert not verdict


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.1, 1e6),
    st.floats(1.0, 1e6),
    st.lists(st.tuples(st.floats(0, 10), st.floats(0.1, 2e6)), max_size=30),
)
def test_a_bucket_keeps_its_promises(
    rate: float, burst: float, steps: list[tuple[float, float]]
) -> None:
    """Never more than ``rate`` per second beyond the burst, and a refusal's wait is
    enough: after it, the same cost is taken."""
    bucket, now, taken = Bucket(rate, burst, 0.0), 0.0, 0.0
    for pause, cost in steps:
        now += pause
        wait = bucket.take(now, cost)
        if wait == 0.0:
            taken += min(cost, burst)
        else:
            assert wait > 0
            assert bucket.take(now + wait + 1e-9 * (1 + now), cost) == 0.0
            now += wait + 1e-9 * (1 + now)
            taken += min(cost, burst)
        assert taken <= burst + rate * now + 1e-6 * (1 + taken)
