"""Tenants: a hospital or clinic, with its time zone, language, quiet hours, sender identity and
departments."""

from __future__ import annotations

from datetime import datetime, time

from chalicelib.domain.common import Document, check_time_zone, merge_patch
from chalicelib.domain.errors import invalid

DEFAULT_QUIET_HOURS = {"start": "21:00", "end": "08:00"}

# Fields only the platform operator may change: they decide routing and identity.
OPERATOR_ONLY_FIELDS = frozenset({"id"})


def _check(doc: Document) -> None:
    check_time_zone("$.time_zone", doc["time_zone"])
    quiet = doc["quiet_hours"]
    if time.fromisoformat(quiet["start"]) == time.fromisoformat(quiet["end"]):
        raise invalid("$.quiet_hours", "start and end must differ")
    department_ids = [d["id"] for d in doc.get("departments", [])]
    if len(department_ids) != len(set(department_ids)):
        raise invalid("$.departments", "department ids must be unique")


def new_tenant(body: Document, now: datetime, now_iso: str) -> Document:
    """A tenant from a schema-valid creation body, with defaults filled in."""
    doc: Document = {
        "quiet_hours": dict(DEFAULT_QUIET_HOURS),
        "departments": [],
        **body,
        "created_at": now_iso,
        "updated_at": now_iso,
    }
    _check(doc)
    return doc


def patched_tenant(current: Document, patch: Document, now_iso: str) -> Document:
    for key in ("id", "created_at", "updated_at", "version"):
        if key in patch:
            raise invalid(f"$.{key}", "is read-only")
    doc = merge_patch(current, patch)
    doc["updated_at"] = now_iso
    _check(doc)
    return doc


def is_quiet(local_time: time, quiet_hours: Document) -> bool:
    """Whether a local wall-clock time falls inside quiet hours (which may span midnight)."""
    start = time.fromisoformat(quiet_hours["start"])
    end = time.fromisoformat(quiet_hours["end"])
    if start < end:
        return start <= local_time < end
    return local_time >= start or local_time < end
