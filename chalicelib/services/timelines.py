"""Timelines that say why: an appointment's journeys as one list in time order, read from the
compact journey records the steps write (store/journey_records.py), never from Step Functions
history. Each planned step with its moment in the patient's zone and what became of it (sent on
which channel, suppressed or skipped and why, escalated, attended...), or that it is still
planned, was passed over, or was never taken (a later version replaced the journey). A patient
sees their own messages only, without internal reasons."""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict, cast
from zoneinfo import ZoneInfo

from chalicelib.domain import appointment_journey as rules
from chalicelib.domain.access import Principal, Role, tenant_of
from chalicelib.domain.appointments import ACTIVE
from chalicelib.domain.common import Document
from chalicelib.services.appointments import AppointmentService
from chalicelib.services.tenants import TenantService
from chalicelib.store.journey_records import JourneyRecordRepository
from chalicelib.store.patients import PatientRepository

# What a step's record may say beyond its status; staff see it all, a patient none of it.
DETAIL = ("channel", "why", "retry_at", "task_id")


class TimelineEntry(TypedDict):
    kind: str  # booked | step
    at: NotRequired[str]  # when it happened
    local_time: str  # when it happened, or is planned, in the patient's zone
    step: NotRequired[str]
    journey_version: NotRequired[int]
    planned_at: NotRequired[str]
    status: NotRequired[str]
    channel: NotRequired[str]
    why: NotRequired[str]
    retry_at: NotRequired[str]
    task_id: NotRequired[str]


class AppointmentTimeline(TypedDict):
    appointment_id: str
    time_zone: str
    status: str
    patient_response: str
    entries: list[TimelineEntry]


def _local(moment: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _with_outcome(entry: TimelineEntry, outcome: Document, zone: ZoneInfo) -> TimelineEntry:
    """The entry as the step's record says it went (its own word: the step handler notes the
    steps it passes over too)."""
    entry["status"], entry["at"] = outcome["status"], outcome["at"]
    entry["local_time"] = _local(outcome["at"], zone)
    entry.update({k: outcome[k] for k in DETAIL if k in outcome})  # type: ignore[typeddict-item]
    return entry


def journey_entries(record: Document, *, current: bool, zone: ZoneInfo) -> list[TimelineEntry]:
    """One journey version's steps: the planned ones in plan order with what became of them,
    then the steps taken beyond the plan (a no-show's follow-ups), in the order they ran."""
    version, done = record["journey_version"], record.get("steps") or {}
    planned = rules.timed_steps(record["plan"]) if record.get("plan") else []
    names = {p["step"] for p in planned}
    entries: list[TimelineEntry] = []
    for step in planned:
        outcome = done.get(step["step"])
        entry: TimelineEntry = {
            "kind": "step",
            "step": step["step"],
            "journey_version": version,
            "planned_at": step["at"],
            "local_time": _local(step["at"], zone),
            "status": "planned" if current else "not_taken",
        }
        entries.append(_with_outcome(entry, outcome, zone) if outcome else entry)
    beyond = sorted(
        ((step, outcome) for step, outcome in done.items() if step not in names),
        key=lambda pair: pair[1]["at"],
    )
    for step_name, outcome in beyond:
        extra: TimelineEntry = {
            "kind": "step",
            "step": step_name,
            "journey_version": version,
            "local_time": "",
        }
        entries.append(_with_outcome(extra, outcome, zone))
    return entries


def for_patient(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """What a patient sees: the booking and the messages, without internal reasons."""
    shown: list[TimelineEntry] = []
    for entry in entries:
        step = entry.get("step", "")
        if entry["kind"] == "step" and not rules.sends_message(step):
            continue
        kept = {k: v for k, v in entry.items() if k not in DETAIL or k == "channel"}
        shown.append(cast(TimelineEntry, kept))
    return shown


class Timelines:
    def __init__(
        self,
        appointments: AppointmentService,
        records: JourneyRecordRepository,
        patients: PatientRepository,
        tenants: TenantService,
    ) -> None:
        self._appointments = appointments
        self._records = records
        self._patients = patients
        self._tenants = tenants

    def appointment(self, principal: Principal, appointment_id: str) -> AppointmentTimeline:
        found = self._appointments.get(principal, appointment_id)  # who may see it, else 404
        tenant = self._tenants.require(tenant_of(principal))
        patient = self._patients.get(tenant["id"], found["patient_id"]) or {}
        zone_name = patient.get("time_zone") or tenant["time_zone"]
        zone = ZoneInfo(zone_name)
        entries: list[TimelineEntry] = [
            {
                "kind": "booked",
                "at": found["created_at"],
                "local_time": _local(found["created_at"], zone),
            }
        ]
        for record in self._records.for_appointment(tenant["id"], found["id"]):
            current = (
                record["journey_version"] == found["journey_version"] and found["status"] in ACTIVE
            )
            entries += journey_entries(record, current=current, zone=zone)
        if principal.role is Role.PATIENT:
            entries = for_patient(entries)
        return {
            "appointment_id": found["id"],
            "time_zone": zone_name,
            "status": found["status"],
            "patient_response": found["patient_response"],
            "entries": entries,
        }
