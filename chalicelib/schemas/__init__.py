"""JSON Schemas: the one source of truth for request and response bodies.

`validate(name, instance)` checks an instance against `v1/<name>.json` and raises
`ValidationFailed` listing every failing field by its JSON path. jsonschema is imported on first
use only, so read-only requests do not pay for it at cold start.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.domain.common import check_time_zone
from chalicelib.domain.errors import FieldError, Problems, ValidationFailed

if TYPE_CHECKING:
    from jsonschema import FormatChecker
    from jsonschema.protocols import Validator

SCHEMA_DIR = Path(__file__).parent / "v1"
BASE_URI = "https://schemas.careloop.dev/v1/"


@cache
def load_schema(name: str) -> dict[str, Any]:
    with (SCHEMA_DIR / f"{name}.json").open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def schema_names() -> list[str]:
    return sorted(path.stem for path in SCHEMA_DIR.glob("*.json"))


def _strict_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """`pattern`, with `$` meaning the end of the string. Python's `re.search` also lets `$` match
    before a final newline, which would let "MRN-1\n" pass as a second, different MRN."""
    import re

    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "string"):
        return
    anchored = (
        pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
    )
    if re.search(anchored, instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _is_time_zone(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        check_time_zone("$", value)
    except ValidationFailed:
        return False
    return True


def _is_email(value: object) -> bool:
    """A real address check: jsonschema's own only looks for an "@", so `6hx#5@f9anknoh.info*`
    would be stored. Syntax only; whether the domain receives mail is the sender's business."""
    if not isinstance(value, str):
        return True
    from email_validator import EmailNotValidError, validate_email  # ~65 ms, first email only

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _is_uri(value: object) -> bool:
    """RFC 3986 absolute URI (jsonschema checks `uri` only when a URI package happens to be
    installed; this does not depend on that)."""
    if not isinstance(value, str):
        return True
    from rfc3986_validator import validate_rfc3986

    return validate_rfc3986(value, rule="URI") is not None


@cache
def format_checker() -> FormatChecker:
    """The formats our schemas use, checked for real: what requests are validated with and what
    tests check responses with."""
    from jsonschema import Draft202012Validator, FormatChecker

    formats = FormatChecker(list(Draft202012Validator.FORMAT_CHECKER.checkers))
    formats.checks("iana-time-zone")(_is_time_zone)
    formats.checks("email")(_is_email)
    formats.checks("uri")(_is_uri)
    return formats


@cache
def _validator(name: str) -> Validator:
    from jsonschema import Draft202012Validator, validators
    from referencing import Registry, Resource

    formats = format_checker()
    strict = validators.extend(Draft202012Validator, {"pattern": _strict_pattern})
    registry: Registry[Any] = Registry().with_resources(
        (BASE_URI + f"{other}.json", Resource.from_contents(load_schema(other)))
        for other in schema_names()
    )
    return strict(load_schema(name), registry=registry, format_checker=formats)


def _field_errors(error: Any) -> list[FieldError]:
    """Name the field itself, also for `required` and `additionalProperties` failures, whose
    jsonschema path is the parent object."""
    base = error.json_path
    if error.validator == "required" and isinstance(error.instance, dict):
        return [
            FieldError(f"{base}.{key}", "is required")
            for key in error.validator_value
            if key not in error.instance
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        return [
            FieldError(f"{base}.{key}", "is not a known field")
            for key in error.instance
            if key not in known
        ]
    if error.validator in ("anyOf", "oneOf") and error.context:
        return _closest_branch(error)
    return [FieldError(base, error.message)]


def _closest_branch(error: Any) -> list[FieldError]:
    """For "an X or null" and similar, report every failure of the alternative whose type the
    value has, rather than "is not valid under any of the given schemas"."""
    branches: dict[int, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)

    def wrong_type(failures: list[Any]) -> bool:
        return any(f.validator == "type" and not f.relative_path for f in failures)

    matching = [failures for _, failures in sorted(branches.items()) if not wrong_type(failures)]
    if not matching:
        return [FieldError(error.json_path, error.message)]
    return [detail for failure in matching[0] for detail in _field_errors(failure)]


def validate(name: str, instance: Any) -> None:
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    problems = Problems()
    for error in errors:
        for detail in _field_errors(error):
            if detail not in problems.details:
                problems.details.append(detail)
    problems.raise_if_any()
