"""JSON Schema validation errors and paging cursors."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ValidationFailed
from chalicelib.schemas import load_schema, schema_names, validate
from chalicelib.services.patients import decode_cursor, encode_cursor, parse_limit


def paths(schema: str, body: object) -> list[str]:
    with pytest.raises(ValidationFailed) as exc:
        validate(schema, body)
    return [d.path for d in exc.value.details]


def test_every_failing_field_is_named_by_its_json_path() -> None:
    body = {"name": {"family": "Z"}, "sex": "robot", "phone": 5, "colour": "blue"}
    assert paths("patient-create", body) == ["$.colour", "$.name.given", "$.phone", "$.sex"]


def test_nested_and_array_paths() -> None:
    body = {
        "name": {"given": "W"},
        "departments": ["ok", "Not Valid"],
        "consent": {"sms": {"status": "granted"}},
    }
    assert paths("patient-create", body) == ["$.consent.sms.method", "$.departments[1]"]


def test_body_must_be_an_object() -> None:
    assert paths("patient-create", ["not", "an", "object"]) == ["$"]


def test_every_schema_example_is_valid() -> None:
    for name in schema_names():
        for example in load_schema(name).get("examples", []):
            validate(name, example)


def test_cursor_round_trip_and_garbage() -> None:
    position = ("2026-11-23T01:00:00Z#p-1", "p-1")
    assert decode_cursor(encode_cursor(position)) == position
    for garbage in ("%%%", "bm90IGpzb24", encode_cursor(("a", "b"))[:-3] + "x"):
        with pytest.raises(ValidationFailed):
            decode_cursor(garbage)


@pytest.mark.parametrize("raw", ["0", "201", "-1", "ten", "1.5"])
def test_page_size_bounds(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_limit(raw)
    assert parse_limit(None) == 50
    assert parse_limit("200") == 200
