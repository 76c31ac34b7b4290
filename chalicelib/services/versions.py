"""Optimistic concurrency as the API exposes it: the ETag is the record's version."""

from __future__ import annotations

import re

from chalicelib.domain.common import Document
from chalicelib.domain.errors import PreconditionRequired, invalid
from chalicelib.store.errors import version_conflict

VERSION = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²".isdigit() is True


def parse_if_match(header: str | None) -> int:
    if header is None:
        raise PreconditionRequired(
            "send If-Match with the version you read (the ETag of GET) to change this record"
        )
    value = header.strip().removeprefix("W/").strip('"')
    if not VERSION.fullmatch(value):
        raise invalid("If-Match", 'must be the quoted version number from the ETag, e.g. "3"')
    return int(value)


def check_expected_version(current: Document, if_match: str | None) -> None:
    if parse_if_match(if_match) != current["version"]:
        raise version_conflict()


def revise(
    current: Document | None, body: Document, record_id: str, if_match: str | None, now_iso: str
) -> Document:
    """The next revision of a configuration record (a schedule, a care plan...): a replacement
    must name the version it replaces; the creation time is kept."""
    if current is not None:
        check_expected_version(current, if_match)
    return {
        **body,
        "id": record_id,
        "updated_at": now_iso,
        "created_at": current["created_at"] if current else now_iso,
    }
