"""Timelines that say why: a patient's journeys (appointments, aftercare, recalls, campaigns) as
one list in time order, or one appointment's; read from the compact records the journeys write
(the appointment journey's records, the aftercare and recall records, the delivery log, staff
tasks, questionnaire responses, each appointment's history), never from Step Functions history.
The entries are built in `domain/timelines.py`; here they are read, within a bounded window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypedDict
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import aftercare, recall
from chalicelib.domain.access import Principal, Role, tenant_of
from chalicelib.domain.appointments import ACTIVE
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import invalid
from chalicelib.domain.timelines import (
    TimelineEntry,
    aftercare_entries,
    answer_entry,
    answered_journeys,
    appointment_changes,
    for_patient,
    in_order,
    journey_entries,
    merged_with_deliveries,
    moment_of,
    opt_out_entries,
    recall_entries,
    task_entry,
)
from chalicelib.services.appointments import AppointmentService
from chalicelib.services.patients import PatientService
from chalicelib.services.tenants import TenantService
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.care import CareRepository
from chalicelib.store.journey_records import JourneyRecordRepository
from chalicelib.store.messages import DeliveryRepository, StaffTaskRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.responses import ResponseRepository

# The window a patient's timeline covers unless asked otherwise, and the widest it may be.
DEFAULT_BEFORE = timedelta(days=90)
DEFAULT_AFTER = timedelta(days=90)
LONGEST_WINDOW = timedelta(days=400)
# An appointment's steps reach this far from its visit (a 30-day reminder; a no-show's last
# rebooking check): appointments this far outside the window may still have entries in it.
STEPS_REACH = timedelta(days=35)
MOST_APPOINTMENTS = 100  # in one window; more is not one patient's ordinary year


class AppointmentTimeline(TypedDict):
    appointment_id: str
    time_zone: str
    status: str
    patient_response: str
    entries: list[TimelineEntry]


# The window (`from`, `to`): entries whose moment (planned, else happened) falls in it.
PatientTimeline = TypedDict(
    "PatientTimeline",
    {
        "patient_id": str,
        "time_zone": str,
        "from": str,
        "to": str,
        "entries": list[TimelineEntry],
    },
)


class Timelines:
    def __init__(
        self,
        appointments: AppointmentService,
        appointment_records: AppointmentRepository,
        journey_records: JourneyRecordRepository,
        patients: PatientService,
        patient_records: PatientRepository,
        tenants: TenantService,
        care: CareRepository,
        deliveries: DeliveryRepository,
        tasks: StaffTaskRepository,
        responses: ResponseRepository,
    ) -> None:
        self._appointments = appointments
        self._appointment_records = appointment_records
        self._journey_records = journey_records
        self._patients = patients
        self._patient_records = patient_records
        self._tenants = tenants
        self._care = care
        self._deliveries = deliveries
        self._tasks = tasks
        self._responses = responses

    def _zone(self, tenant: Document, patient: Document | None) -> tuple[str, ZoneInfo]:
        name = str((patient or {}).get("time_zone") or tenant["time_zone"])
        return name, ZoneInfo(name)

    def _appointment_entries(
        self, tenant_id: str, appointment: Document, zone: ZoneInfo
    ) -> list[TimelineEntry]:
        entries = appointment_changes(appointment, zone)
        for record in self._journey_records.for_appointment(tenant_id, appointment["id"]):
            current = (
                record["journey_version"] == appointment["journey_version"]
                and appointment["status"] in ACTIVE
            )
            entries += journey_entries(record, current=current, zone=zone)
        return entries

    def appointment(self, principal: Principal, appointment_id: str) -> AppointmentTimeline:
        found = self._appointments.get(principal, appointment_id)  # who may see it, else 404
        tenant = self._tenants.require(tenant_of(principal))
        patient = self._patient_records.get(tenant["id"], found["patient_id"])
        zone_name, zone = self._zone(tenant, patient)
        entries = self._appointment_entries(tenant["id"], found, zone)
        since = found["created_at"]
        deliveries = [
            d
            for d in self._deliveries.for_patient(
                tenant["id"], found["patient_id"], 500, between=(since, "~")
            )
            if d.get("appointment_id") == found["id"]
        ]
        entries = in_order(merged_with_deliveries(entries, deliveries, zone))
        if principal.role is Role.PATIENT:
            entries = for_patient(entries)
        return {
            "appointment_id": found["id"],
            "time_zone": zone_name,
            "status": found["status"],
            "patient_response": found["patient_response"],
            "entries": entries,
        }

    def patient(
        self, principal: Principal, patient_id: str | None, since: str | None, until: str | None
    ) -> PatientTimeline:
        """Every journey of the patient in the window (default: 90 days either side of now)."""
        # Who may see it, else 404; with its contacts' opt-outs as they stand.
        patient = self._patients.get(principal, patient_id or str(principal.patient_id))
        tenant = self._tenants.require(tenant_of(principal))
        zone_name, zone = self._zone(tenant, patient)
        start, end = _window(since, until)
        tenant_id, pid = tenant["id"], patient["id"]
        entries: list[TimelineEntry] = []
        for appointment in self._appointment_records.for_patient(
            tenant_id,
            pid,
            after=utc_iso(start - STEPS_REACH),
            before=utc_iso(end + STEPS_REACH),
            limit=MOST_APPOINTMENTS,
        ):
            entries += self._appointment_entries(tenant_id, appointment, zone)
        care = self._care.for_patient(tenant_id, pid)
        for record in care:
            if record.get("kind") == aftercare.KIND:
                entries += aftercare_entries(record, zone)
            elif record.get("kind") == recall.KIND:
                entries += recall_entries(record, zone)
        window = (utc_iso(start), utc_iso(end))
        entries = merged_with_deliveries(
            entries, self._deliveries.for_patient(tenant_id, pid, 500, between=window), zone
        )
        entries += [task_entry(t, zone) for t in self._tasks.for_patient(tenant_id, pid, window)]
        entries += opt_out_entries(patient.get("opt_outs", []), zone)
        journeys_answered = answered_journeys(care)
        for response in self._responses.for_patient(tenant_id, pid):
            answer = answer_entry(response, zone, journeys_answered)
            if answer is not None:
                entries.append(answer)
        entries = [e for e in in_order(entries) if window[0] <= moment_of(e) <= window[1]]
        if principal.role is Role.PATIENT:
            entries = for_patient(entries)
        return {
            "patient_id": pid,
            "time_zone": zone_name,
            "from": window[0],
            "to": window[1],
            "entries": entries,
        }


def _window(since: str | None, until: str | None) -> tuple[datetime, datetime]:
    now = clock.now()
    start = _moment("from", since) if since else now - DEFAULT_BEFORE
    end = _moment("to", until) if until else max(start, now) + DEFAULT_AFTER
    if end <= start:
        raise invalid("to", "must be after from")
    if end - start > LONGEST_WINDOW:
        raise invalid("to", f"the window may span at most {LONGEST_WINDOW.days} days")
    return start, end


def _moment(name: str, raw: str) -> datetime:
    # A "+" left unencoded in a query string arrives as a space.
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "+").replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(name, "must be a moment, e.g. 2027-03-01T00:00:00Z") from exc
    if moment.tzinfo is None:
        raise invalid(name, "must name its offset, e.g. 2027-03-01T00:00:00+08:00")
    return moment
