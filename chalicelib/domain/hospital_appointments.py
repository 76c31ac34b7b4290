"""Appointments a hospital's own system keeps, imported over FHIR (`POST /fhir`, bulk imports).

The hospital's system owns them: a change or a cancellation reaches CareLoop as an update of
the same appointment (keyed by the hospital's identifier), and CareLoop never cancels,
reschedules or marks one missed by itself. One takes a place in a slot only when it sits in a
schedule CareLoop manages (so an online booking cannot take the same place); elsewhere it holds
no place, as CareLoop has no capacity to keep there. A future one gets its journey like any
booking; a past fulfilled one counts as a visit (recall, analytics), without any message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain.appointments import ACTIVE, Actor, Change, with_change
from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict

OWNER_HOSPITAL = "hospital_system"
# The schedule and clinician of an appointment in a place CareLoop does not manage.
HOSPITAL_SCHEDULE = "hospital-system"
# Without an appointmentType coding we know, a visit is taken as a follow-up.
DEFAULT_TYPE = "follow_up"
# What a re-sent appointment is compared by: a change in none of these is no change.
COMPARED_FIELDS = (
    "patient_id",
    "department",
    "clinician",
    "clinician_name",
    "schedule_id",
    "type",
    "location",
    "start",
    "end",
    "status",
    "notes_for_patient",
    "external_id",
)


def hospital_appointment_id(tenant_id: str, system: str, value: str) -> str:
    """The same hospital identifier always names the same appointment, so a re-sent one (or a
    retried import that crashed half-way) updates it and never makes a second."""
    digest = hashlib.sha256(f"{tenant_id}|{system}|{value}".encode()).hexdigest()
    return "a-" + digest[:16]


def is_hospital_owned(appointment: Document) -> bool:
    return appointment.get("owner") == OWNER_HOSPITAL


def check_changeable_here(appointment: Document) -> None:
    """Staff change or cancel a hospital-owned appointment in the hospital's system; the change
    arrives here as an update."""
    if is_hospital_owned(appointment):
        raise Conflict(
            "this appointment is kept in the hospital's own system: change or cancel it there",
            code="hospital_owned",
        )


def holds_place(appointment: Document) -> bool:
    return appointment["status"] in ACTIVE and appointment["schedule_id"] != HOSPITAL_SCHEDULE


@dataclass(frozen=True)
class ImportedChange:
    """One imported appointment's write: the record, the places it frees and takes, and what
    its journeys are owed (as a booking, a reschedule or a cancellation would owe them)."""

    doc: Document
    created: bool
    free_previous: bool
    take_place: bool
    stop_version: int | None
    start_version: int | None
    became_fulfilled: bool


def _same(previous: Document, incoming: Document) -> bool:
    return all(previous.get(k) == incoming.get(k) for k in COMPARED_FIELDS)


def imported_change(
    previous: Document | None, incoming: Document, now: datetime, now_iso: str
) -> ImportedChange | None:
    """What writing `incoming` (built from the hospital's resource) over `previous` means, or
    None when it changes nothing (the same bundle sent again)."""
    if previous is not None and _same(previous, incoming):
        return None
    future = "start" in incoming and datetime.fromisoformat(incoming["start"]) > now
    wants_journey = incoming["status"] in ACTIVE and future
    if previous is None:
        doc = {
            **incoming,
            "patient_response": "pending",
            "journey_version": 1,
            "created_at": now_iso,
            "updated_at": now_iso,
        }
        doc = with_change(doc, Change.BOOKED, by=Actor.HOSPITAL, at=now_iso)
        return ImportedChange(
            doc=doc,
            created=True,
            free_previous=False,
            take_place=holds_place(doc),
            stop_version=None,
            start_version=1 if wants_journey else None,
            became_fulfilled=False,
        )
    moved = (previous["start"], previous["schedule_id"]) != (
        incoming["start"],
        incoming["schedule_id"],
    )
    was_active = previous["status"] in ACTIVE
    # A new time, or an appointment brought back from cancelled, is a new journey.
    new_journey = moved or (not was_active and incoming["status"] in ACTIVE)
    version = previous["journey_version"] + (1 if new_journey else 0)
    doc = {
        **previous,
        **incoming,
        "patient_response": "pending" if new_journey else previous["patient_response"],
        "journey_version": version,
        "updated_at": now_iso,
    }
    for optional in ("notes_for_patient", "clinician_name"):
        if optional not in incoming:
            doc.pop(optional, None)
    doc = with_change(doc, _what_changed(previous, doc, moved), by=Actor.HOSPITAL, at=now_iso)
    ends_journey = was_active and (new_journey or incoming["status"] not in ACTIVE)
    kept, held = holds_place(previous), holds_place(doc)
    return ImportedChange(
        doc=doc,
        created=False,
        free_previous=kept and (not held or moved),
        take_place=held and (not kept or moved),
        stop_version=previous["journey_version"] if ends_journey else None,
        start_version=version if new_journey and wants_journey else None,
        became_fulfilled=incoming["status"] == "fulfilled" and previous["status"] != "fulfilled",
    )


def _what_changed(previous: Document, doc: Document, moved: bool) -> Change:
    if doc["status"] != previous["status"] and doc["status"] in set(Change):
        return Change(doc["status"])  # cancelled, arrived, fulfilled, noshow, booked again
    return Change.RESCHEDULED if moved else Change.UPDATED


def department_from_hints(hints: list[str], departments: dict[str, str]) -> str | None:
    """The tenant's department a hospital's codes and texts name (best hint first): by our id,
    else by its name or id in any case."""
    for hint in hints:
        if hint in departments:
            return hint
    folded = {name.casefold(): key for key, name in departments.items()}
    folded.update({key.casefold(): key for key in departments})
    for hint in hints:
        if hint.casefold() in folded:
            return folded[hint.casefold()]
    return None
