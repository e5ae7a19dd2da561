"""Body declarations (server/bodies.py): one class gives both the checks of a request
body and its JSON Schema, and the two agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from jsonschema import Draft202012Validator

from server.bodies import Choice, Email, Flag, Pattern, Text, parse_body, schema_of
from server.errors import ApiError
from server.routes.account_lifecycle import ChangeBody, ResetBody
from server.routes.accounts import LogInBody, SignUpBody
from server.routes.admin import VerifiedBody
from server.routes.review import DecisionBody
from server.routes.verification import ManualBody


@dataclass(frozen=True, slots=True)
class Sample:
    email: Annotated[str, Email()]
    kind: Annotated[str, Choice(("a", "b"))]
    code: Annotated[str, Pattern(r"^\d{6}$", "must be six digits", "code_malformed")]
    on: Annotated[bool, Flag()]
    note: Annotated[str | None, Text(10)] = None


GOOD: dict[str, Any] = {"email": " Anne@Example.ORG ", "kind": "a", "code": "123456", "on": True}


def refusal(body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_body(Sample, body)
    return caught.value


def test_a_good_body_is_parsed_and_normalised() -> None:
    assert parse_body(Sample, {**GOOD, "extra": 1}) == Sample(
        "anne@example.org", "a", "123456", True, None
    )
    assert parse_body(Sample, {**GOOD, "note": " hi "}).note == "hi"
    assert parse_body(Sample, {**GOOD, "note": None}).note is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": "nope"}, "email", "field 'email' is not a valid e-mail address"),
        ({"kind": "c"}, "kind", "field 'kind' must be one of a, b"),
        ({"kind": ["a"]}, "kind", "field 'kind' must be one of a, b"),
        ({"code": "12345"}, "code", "field 'code' must be six digits"),
        ({"code": 123456}, "code", "field 'code' must be six digits"),
        ({"on": "true"}, "on", "field 'on' is required and must be a boolean"),
        ({"on": 1}, "on", "field 'on' is required and must be a boolean"),
        ({"note": "x" * 11}, "note", "field 'note' must have at most 10 characters"),
        ({"note": "a\nb"}, "note", "field 'note' must not contain control characters"),
    ],
)
def test_a_bad_field_is_named(change: dict[str, Any], field: str, message: str) -> None:
    error = refusal({**GOOD, **change})
    assert (error.status, error.field, error.message) == (400, field, message)


def test_fields_are_checked_in_the_order_declared() -> None:
    assert refusal({}).field == "email"
    assert refusal({"email": "a@b.fr"}).field == "kind"
    assert refusal({**GOOD, "code": "x"}).reason == "code_malformed"


def test_the_schema_says_what_the_checks_require() -> None:
    schema = schema_of(Sample)
    assert schema["required"] == ["email", "kind", "code", "on"]
    assert schema["properties"]["kind"]["enum"] == ["a", "b"]
    assert schema["properties"]["note"] == {
        "anyOf": [{"type": "string", "maxLength": 10}, {"type": "null"}]
    }
    validator = Draft202012Validator(schema)
    validator.validate(GOOD)
    validator.validate({**GOOD, "note": None})
    for bad in ({**GOOD, "on": "true"}, {**GOOD, "kind": "c"}, {"email": "a@b.fr"}):
        assert not validator.is_valid(bad)
        with pytest.raises(ApiError):
            parse_body(Sample, bad)


@pytest.mark.parametrize(
    "cls", [ResetBody, ChangeBody, VerifiedBody, SignUpBody, LogInBody, DecisionBody, ManualBody]
)
def test_route_bodies_are_declared_once(cls: type[Any]) -> None:
    """The routes' documented schema is the declaration's."""
    from server.routes import routes

    documented = [
        r.openapi.body  # type: ignore[attr-defined]
        for r in routes
        if getattr(r, "openapi", None) is not None
    ]
    assert schema_of(cls) in documented


def test_a_field_without_one_rule_is_refused_at_declaration() -> None:
    @dataclass(frozen=True)
    class Bare:
        name: str

    with pytest.raises(TypeError):
        schema_of(Bare)
