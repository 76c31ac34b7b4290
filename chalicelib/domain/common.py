"""Small pure rules shared by several records: time zones, phone numbers, merge patches."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.domain.errors import invalid

Document = dict[str, Any]

# Ids of tenants, patients and departments: what the schemas allow, and all that keys may hold.
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


def is_valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def check_time_zone(path: str, name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Asia" is a folder
        raise invalid(path, f"unknown IANA time zone {name!r}") from exc


def to_e164(path: str, raw: str, default_region: str | None) -> str:
    """Normalise a phone number to E.164. National numbers are read in the tenant's country."""
    import phonenumbers  # ~25 ms; only writes and lookups need it, not the read path

    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise invalid(path, "not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise invalid(path, "not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def utc_iso(moment: datetime) -> str:
    """UTC ISO-8601 with a Z suffix and second precision: how every time is stored and returned."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Dates outside these years are typing mistakes, and near the ends of Python's range the
# arithmetic of time zones overflows.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200


def parse_timestamp(path: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise invalid(path, "not an ISO-8601 date-time") from exc
    if moment.tzinfo is None:
        raise invalid(path, "needs a time zone offset or Z")
    check_year(path, moment.year)
    return moment


def check_year(path: str, year: int) -> None:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise invalid(path, f"the year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")


def merge_patch(target: Document, patch: Document) -> Document:
    """JSON Merge Patch (RFC 7386): objects merge, null removes, anything else replaces."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
