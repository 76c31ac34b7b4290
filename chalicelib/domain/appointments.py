"""Appointments: the statuses FHIR uses, which change is allowed when, and by whom."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from chalicelib.domain.access import Principal, Role
from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict

TYPES = ("first_visit", "follow_up", "procedure", "check_up")

# FHIR Appointment.status values used here, and where each may go next.
NEXT_STATUSES: dict[str, frozenset[str]] = {
    "proposed": frozenset({"booked", "cancelled"}),
    "booked": frozenset({"arrived", "fulfilled", "cancelled", "noshow"}),
    "arrived": frozenset({"fulfilled"}),
    "fulfilled": frozenset(),
    "cancelled": frozenset(),
    "noshow": frozenset(),
}
ACTIVE = frozenset({"proposed", "booked"})  # the slot is held; the journey runs


# What an appointment's "status change" is to those told of it (outbound webhooks): its FHIR
# status, the patient's participation (their answer), or its time (a reschedule).
STATUS_FIELDS = ("status", "patient_response", "start")


def status_changed(before: Document | None, after: Document) -> bool:
    """Whether a saved change is one of those: a booking always is; an answer token stored by
    the journey, say, is not."""
    return before is None or any(before.get(k) != after.get(k) for k in STATUS_FIELDS)


class Change(StrEnum):
    """What happened to an appointment, as its timeline tells it."""

    BOOKED = "booked"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    CANCEL_REQUESTED = "cancel_requested"  # a patient's, of one the hospital's system keeps
    RESCHEDULED = "rescheduled"
    RESCHEDULE_REQUESTED = "reschedule_requested"
    ARRIVED = "arrived"
    FULFILLED = "fulfilled"
    NOSHOW = "noshow"
    UPDATED = "updated"  # by the hospital's system, neither its time nor its status


class Actor(StrEnum):
    PATIENT = "patient"
    STAFF = "staff"
    ADMIN = "admin"
    JOURNEY = "journey"  # the appointment journey (a no-show it marked)
    HOSPITAL = "hospital"  # the hospital's own system (a FHIR import)


class AppointmentChange(TypedDict):
    at: str
    change: str  # a Change
    by: str  # an Actor
    via: NotRequired[str]  # a patient's: app | sms
    keyword: NotRequired[str]  # by sms: the word of the reply (`C`, `确认`)
    asked_at: NotRequired[str]  # a patient's answer: when the message it answers left


HISTORY_KEPT = 30  # the appointment's last changes: a few in any ordinary life of one


# A patient's answers to the hospital's messages about an appointment.
ANSWERS = frozenset(
    {"confirmed", "cancelled", "rescheduled", "cancel_requested", "reschedule_requested"}
)
# The message answered is the latest about the appointment that left within this time before
# the answer (an answer to nothing recent is not timed).
ANSWER_LOOKBACK = timedelta(days=30)
MESSAGE_LEFT = frozenset({"sent", "delivered", "bounced"})


def last_message_about(appointment_id: str, log: Iterable[Document], at: str) -> str | None:
    """When the latest message about the appointment that left by `at` was claimed, among a
    patient's delivery log (None: none within ANSWER_LOOKBACK)."""
    moment = datetime.fromisoformat(at)
    left = [
        entry["created_at"]
        for entry in log
        if entry.get("appointment_id") == appointment_id
        and entry.get("status") in MESSAGE_LEFT
        and moment - ANSWER_LOOKBACK <= datetime.fromisoformat(entry["created_at"]) <= moment
    ]
    return max(left, key=datetime.fromisoformat) if left else None


def keyword_of(principal: Principal) -> str | None:
    """The word of the SMS reply a patient acted by (None: not by a reply)."""
    return principal.reply_keyword if principal.role is Role.PATIENT else None


def actor_of(principal: Principal) -> tuple[Actor, str | None]:
    """Who made a change through the API, and for a patient how: a reply to a text acts as the
    patient under an `sms:` subject (services/inbound.py)."""
    if principal.role is Role.PATIENT:
        return Actor.PATIENT, "sms" if principal.subject.startswith("sms:") else "app"
    return (Actor.ADMIN if principal.role is Role.ADMIN else Actor.STAFF), None


def with_change(
    doc: Document,
    change: Change,
    *,
    by: Actor,
    at: str,
    via: str | None = None,
    keyword: str | None = None,
    asked_at: str | None = None,
) -> Document:
    """The appointment with `change` added to its history (ids, times and roles only: the
    timeline reads it; the API does not show it)."""
    entry: AppointmentChange = {"at": at, "change": change.value, "by": by.value}
    if via:
        entry["via"] = via
    if keyword and via == "sms":
        entry["keyword"] = keyword
    if asked_at:
        entry["asked_at"] = asked_at
    return {**doc, "history": [*doc.get("history", []), entry][-HISTORY_KEPT:]}


def check_transition(appointment: Document, to: str) -> None:
    current = appointment["status"]
    if to not in NEXT_STATUSES[current]:
        raise Conflict(
            f"an appointment that is {current} cannot become {to}", code="invalid_status_change"
        )


def check_can_change_time(appointment: Document, now: datetime) -> None:
    if appointment["status"] not in ACTIVE:
        raise Conflict(
            f"an appointment that is {appointment['status']} cannot be rescheduled",
            code="invalid_status_change",
        )
    check_not_started(appointment, now)


def check_not_started(appointment: Document, now: datetime) -> None:
    """After the start a patient can no longer cancel: a missed visit is a no-show."""
    if datetime.fromisoformat(appointment["start"]) <= now:
        raise Conflict("the appointment has already started", code="appointment_started")


def check_noshow_allowed(appointment: Document, now: datetime) -> None:
    check_transition(appointment, "noshow")
    if datetime.fromisoformat(appointment["start"]) > now:
        raise Conflict(
            "a patient cannot miss an appointment that has not started yet",
            code="appointment_not_started",
        )


def local_times(appointment: Document, tenant_zone: str, patient_zone: str) -> Document:
    """Start and end as wall-clock times of the hospital and of the patient."""
    start = datetime.fromisoformat(appointment["start"])
    end = datetime.fromisoformat(appointment["end"])
    shown: Document = {}
    for who, zone_name in (("tenant", tenant_zone), ("patient", patient_zone)):
        zone = ZoneInfo(zone_name)
        shown[who] = {
            "time_zone": zone_name,
            "start": start.astimezone(zone).isoformat(),
            "end": end.astimezone(zone).isoformat(),
        }
    return shown


def local_date(start: str, zone_name: str) -> str:
    """The hospital's calendar day of an appointment: the key of its department's day list."""
    return datetime.fromisoformat(start).astimezone(ZoneInfo(zone_name)).date().isoformat()


def day_of(appointment: Document, tenant: Document) -> str:
    """The day list an appointment belongs to."""
    return local_date(appointment["start"], tenant["time_zone"])


def fulfilled_event(tenant_id: str, appointment: Document) -> Document:
    """`appointment.fulfilled` on the journey-events topic: a visit took place (care plans start
    and recall restarts from it). Ids and codes only."""
    return {
        "type": "appointment.fulfilled",
        "tenant_id": tenant_id,
        "appointment_id": appointment["id"],
        "patient_id": appointment["patient_id"],
        "department": appointment["department"],
        "appointment_type": appointment["type"],
        "start": appointment["start"],
        "clinician": appointment.get("clinician", ""),
    }
