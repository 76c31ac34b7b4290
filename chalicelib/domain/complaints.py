"""Complaints: what a patient (or staff for them) files, and what a low satisfaction score opens
for staff to recover. One model, one list and one escalation for both.

A complaint is `open` when filed, `in_progress` once someone works on it, and ends `resolved` or
`closed_without_resolution`. Every change is kept in its history with who, when and a note.
Its deadline is `recovery_hours` after it was filed (the tenant's setting); a complaint still
open or in progress at its deadline escalates, once, to the leads of its department.

Pure: records and times in, records out. Text fields (the complaint's text, the notes in its
history, the closing message) are PHI: the store seals them (`SEALED_FIELDS`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import NotRequired, TypedDict

from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, invalid


class ComplaintStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED_WITHOUT_RESOLUTION = "closed_without_resolution"


class ComplaintCategory(StrEnum):
    WAITING_TIME = "waiting_time"
    STAFF_ATTITUDE = "staff_attitude"
    TREATMENT = "treatment"
    BILLING = "billing"
    FACILITIES = "facilities"
    COMMUNICATION = "communication"
    OTHER = "other"


class ComplaintSource(StrEnum):
    PATIENT = "patient"  # filed in the app
    STAFF = "staff"  # filed by staff for the patient (a call, the desk)
    SATISFACTION = "satisfaction"  # a low score or a flagged comment: a recovery task


CS = ComplaintStatus
# Where a complaint may go next. Ended complaints stay ended: a new concern is a new complaint.
NEXT_STATUSES: dict[ComplaintStatus, frozenset[ComplaintStatus]] = {
    CS.OPEN: frozenset({CS.IN_PROGRESS, CS.RESOLVED, CS.CLOSED_WITHOUT_RESOLUTION}),
    CS.IN_PROGRESS: frozenset({CS.RESOLVED, CS.CLOSED_WITHOUT_RESOLUTION}),
    CS.RESOLVED: frozenset(),
    CS.CLOSED_WITHOUT_RESOLUTION: frozenset(),
}
ACTIVE = frozenset({CS.OPEN, CS.IN_PROGRESS})  # still owed an answer: may escalate
ENDED = frozenset({CS.RESOLVED, CS.CLOSED_WITHOUT_RESOLUTION})

DEFAULT_RECOVERY_HOURS = 48
# The store seals these (PHI: what the patient wrote, staff's notes, the answer to the patient).
SEALED_FIELDS = ("text", "history", "closing_message")
TEXT_MAX = 4000


class ComplaintChange(TypedDict):
    at: str
    status: str  # a ComplaintStatus
    by: str  # the account (`sub`), or "system"
    role: str  # patient | staff | admin | system
    note: NotRequired[str]  # staff's note: internal, never shown to the patient


class Complaint(TypedDict):
    id: str
    reference: str  # C-<year>-<seq, 6 digits>: what the patient and staff quote
    patient_id: str
    source: str  # a ComplaintSource
    category: str  # a ComplaintCategory
    department: str
    text: str
    status: str  # a ComplaintStatus
    created_at: str
    created_by: str
    deadline: str
    history: list[ComplaintChange]
    appointment_id: NotRequired[str]
    clinician: NotRequired[str]
    response_id: NotRequired[str]  # source satisfaction: the response that opened it
    score: NotRequired[int]  # source satisfaction: the 0-10 likelihood to recommend
    flagged_by: NotRequired[list[str]]  # source satisfaction: "score" and/or "keyword"
    acknowledged_at: NotRequired[str]  # first moved to in_progress
    resolved_at: NotRequired[str]
    closed_at: NotRequired[str]  # resolved or closed without resolution
    escalated_at: NotRequired[str]
    escalated_to: NotRequired[list[str]]  # staff ids of the department's leads, when escalated
    closing_message: NotRequired[str]
    version: NotRequired[int]


def deadline_of(created_at: datetime, recovery_hours: int) -> str:
    """When a complaint filed at `created_at` must have been answered."""
    return utc_iso(created_at + timedelta(hours=recovery_hours))


def reference_of(year: int, sequence: int) -> str:
    """A tenant's complaints are numbered per year: `C-2026-000123`."""
    return f"C-{year:04d}-{sequence:06d}"


def new_complaint(
    *,
    complaint_id: str,
    reference: str,
    patient_id: str,
    source: ComplaintSource,
    category: ComplaintCategory,
    department: str,
    text: str,
    now: datetime,
    recovery_hours: int,
    by: str,
    role: str,
    extra: Document | None = None,
) -> Complaint:
    at = utc_iso(now)
    complaint = Complaint(
        id=complaint_id,
        reference=reference,
        patient_id=patient_id,
        source=source.value,
        category=category.value,
        department=department,
        text=text,
        status=CS.OPEN.value,
        created_at=at,
        created_by=by,
        deadline=deadline_of(now, recovery_hours),
        history=[ComplaintChange(at=at, status=CS.OPEN.value, by=by, role=role)],
    )
    complaint.update(extra or {})  # type: ignore[typeddict-item]
    return complaint


def changed_status(
    complaint: Complaint,
    status: ComplaintStatus,
    *,
    note: str | None,
    closing_message: str | None,
    by: str,
    role: str,
    now: datetime,
) -> Complaint:
    """The complaint after staff moved it to `status` (with their note). A change the table
    does not allow is a Conflict (409 `invalid_status_change`)."""
    current = ComplaintStatus(complaint["status"])
    if status not in NEXT_STATUSES[current]:
        raise Conflict(
            f"a complaint that is {current} cannot become {status}", code="invalid_status_change"
        )
    if closing_message is not None and status not in ENDED:
        raise invalid("$.closing_message", "only a change that ends the complaint has one")
    at = utc_iso(now)
    change = ComplaintChange(at=at, status=status.value, by=by, role=role)
    if note:
        change["note"] = note
    changed = Complaint(**{**complaint, "status": status.value})
    changed["history"] = [*complaint["history"], change]
    if status is CS.IN_PROGRESS:
        changed.setdefault("acknowledged_at", at)
    if status in ENDED:
        changed["closed_at"] = at
        if status is CS.RESOLVED:
            changed["resolved_at"] = at
        if closing_message:
            changed["closing_message"] = closing_message
    return changed


def closing_message_due(complaint: Complaint) -> bool:
    """Whether the patient is told the complaint ended. Resolved: always for a complaint they
    (or staff for them) filed, with the staff's words or the template's; a recovery task from a
    survey only with the staff's own words (the patient filed nothing). Closed without
    resolution: only with the staff's own words."""
    status = complaint["status"]
    if status not in ENDED:
        return False
    if "closing_message" in complaint:
        return True
    return status == CS.RESOLVED and complaint["source"] != ComplaintSource.SATISFACTION


def is_overdue(complaint: Complaint, now: datetime) -> bool:
    """Still owed an answer at its deadline, and not escalated yet."""
    return (
        complaint["status"] in ACTIVE
        and "escalated_at" not in complaint
        and datetime.fromisoformat(complaint["deadline"]) <= now
    )


def escalated(complaint: Complaint, leads: list[str], now: datetime) -> Complaint:
    changed = Complaint(**complaint)
    changed["escalated_at"] = utc_iso(now)
    changed["escalated_to"] = sorted(leads)
    return changed


# What the patient sees of their complaint: never staff's notes, who handled it, or escalation.
PATIENT_FIELDS = (
    "id",
    "reference",
    "category",
    "department",
    "text",
    "status",
    "created_at",
    "deadline",
    "appointment_id",
    "resolved_at",
    "closed_at",
    "closing_message",
    "version",
)


def patient_view(complaint: Complaint) -> Document:
    whole: Document = dict(complaint)
    shown: Document = {k: whole[k] for k in PATIENT_FIELDS if k in whole}
    shown["history"] = [{"at": c["at"], "status": c["status"]} for c in complaint["history"]]
    return shown


def visible_to_patient(complaint: Complaint) -> bool:
    """A recovery task opened from a survey is staff's work, not a complaint the patient made."""
    return complaint["source"] != ComplaintSource.SATISFACTION
