"""Booking and the life of an appointment, for patients (their own) and staff (their tenant's)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.adapters.executions import Executions
from chalicelib.domain import appointments as rules
from chalicelib.domain.access import (
    CLINIC_ROLES,
    Principal,
    Role,
    check_patient_visible,
    require_role,
    tenant_of,
)
from chalicelib.domain.appointment_journey import execution_name, start_input
from chalicelib.domain.common import Document, is_valid_id, parse_timestamp, utc_iso
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, Retryable, invalid
from chalicelib.domain.hospital_appointments import check_changeable_here, is_hospital_owned
from chalicelib.domain.scheduling import Slot, check_within_horizon, find_slot
from chalicelib.domain.tenants import department_names
from chalicelib.observability import count, logger, run_hooks
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.services.tenants import TenantService
from chalicelib.settings import get_settings
from chalicelib.store.appointments import (
    AppointmentExists,
    AppointmentRepository,
    SendInProgress,
)
from chalicelib.store.config import ConfigRepository
from chalicelib.store.messages import DeliveryRepository
from chalicelib.store.patients import PatientRepository

EVERYONE = CLINIC_ROLES | {Role.PATIENT}
# A change's own request settles its journeys within a second; the sweep leaves it that long.
REPAIR_AFTER = timedelta(minutes=2)
INTERNAL_FIELDS = ("patient_time_zone", "history")  # the history: the timeline's


def journeys_on(tenant: Document) -> bool:
    enabled: bool = tenant.get("journey", {}).get("enabled", True)
    return enabled


def present_appointment(doc: Document, tenant: Document) -> Document:
    """An appointment as it is shown (the API, FHIR, webhooks): its local times, not the
    journey's internals."""
    shown = {k: v for k, v in doc.items() if k not in INTERNAL_FIELDS}
    shown["local"] = rules.local_times(
        doc, tenant["time_zone"], str(doc.get("patient_time_zone") or tenant["time_zone"])
    )
    return shown


def same_booking(existing: Document, requested: Document) -> bool:
    """Whether a booking found under an Idempotency-Key's appointment id is this request's."""
    if any(existing[k] != requested[k] for k in ("patient_id", "type")):
        return False
    # A rescheduled appointment has moved on from the slot it was booked in.
    moved = existing["journey_version"] > 1
    return moved or (existing["schedule_id"], existing["start"]) == (
        requested["schedule_id"],
        requested["start"],
    )


def appointment_id_for(principal: Principal, idempotency_key: str | None) -> str:
    """A retried booking with the same Idempotency-Key maps to the same appointment id, so even
    a retry after a crash cannot create a second appointment."""
    if idempotency_key is None:
        return "a-" + secrets.token_hex(8)
    seed = f"{principal.tenant_id}|{principal.subject}|{idempotency_key}".encode()
    return "a-" + hashlib.sha256(seed).hexdigest()[:16]


# A cancel or reschedule waits this long (wall time) for a message that is leaving; a send
# holds its claim for at most its lease (30 s), usually for a fraction of a second.
SEND_WAIT_SECONDS = 10.0


def waiting_for_sends(change: Callable[[], Document]) -> Document:
    """Run a change that a message being sent holds up, until it goes through; past the wait,
    SendInProgress (503 with Retry-After) lets the caller try again."""
    deadline = time.monotonic() + SEND_WAIT_SECONDS
    while True:
        try:
            return change()
        except SendInProgress:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class AppointmentService:
    def __init__(
        self,
        appointments: AppointmentRepository,
        config: ConfigRepository,
        patients: PatientRepository,
        tenants: TenantService,
        queue: StaffQueue,
        executions: Executions,
        deliveries: DeliveryRepository,
        on_booked: Sequence[Callable[[str, Document], None]] = (),
        on_status_changed: Sequence[Callable[[str, Document], None]] = (),
        # A member's read outside their departments: refused without a reason (break-glass).
        check_access: Callable[[Principal, Document], None] | None = None,
    ) -> None:
        self._check_access = check_access
        self._deliveries = deliveries
        self._executions = executions
        self._on_booked = on_booked
        self._on_status_changed = on_status_changed
        self._appointments = appointments
        self._config = config
        self._patients = patients
        self._tenants = tenants
        self._queue = queue

    def _noted(
        self, tenant_id: str, doc: Document, change: rules.Change, principal: Principal, at: str
    ) -> Document:
        """The change in the appointment's history; a patient's answer with when the message
        it answers left (how long patients take to answer is counted from it)."""
        by, via = rules.actor_of(principal)
        asked_at = None
        if by is rules.Actor.PATIENT and change.value in rules.ANSWERS:
            since = utc_iso(datetime.fromisoformat(at) - rules.ANSWER_LOOKBACK)
            log = self._deliveries.for_patient(
                tenant_id, doc["patient_id"], 500, between=(since, at)
            )
            asked_at = rules.last_message_about(doc["id"], log, at)
        return rules.with_change(
            doc,
            change,
            by=by,
            at=at,
            via=via,
            keyword=rules.keyword_of(principal),
            asked_at=asked_at,
        )

    # -- journeys ----------------------------------------------------------------------------
    def _start_journey(self, tenant_id: str, appointment: Document) -> None:
        """Idempotent by execution name: a retried request re-issues a start that failed."""
        self._executions.start(
            get_settings().appointment_journey_arn,
            execution_name(tenant_id, appointment["id"], appointment["journey_version"]),
            start_input(tenant_id, appointment["id"], appointment["journey_version"], clock.now()),
        )

    def settle_journeys(self, tenant: Document, appointment_id: str) -> bool:
        """Do what committed changes owe the appointment's journeys (the marker written with
        them): stop the superseded executions, start the current version's if it is still
        booked; then drop the marker. Every step is idempotent (executions are named by
        version), so the API's own attempt and the repair sweep may both run it. False if a
        later change rewrote the marker meanwhile (that change settles it)."""
        owed = self._appointments.journey_sync(tenant["id"], appointment_id)
        if owed is None:
            return True
        for version in sorted(owed.stop_versions):
            self._executions.stop(
                get_settings().appointment_journey_arn,
                execution_name(tenant["id"], appointment_id, version),
                "superseded by a change to the appointment",
            )
        if owed.start_version is not None and journeys_on(tenant):
            current = self._appointments.get(tenant["id"], appointment_id)
            if (
                current is not None
                and current["journey_version"] == owed.start_version
                and current["status"] in rules.ACTIVE
            ):
                self._start_journey(tenant["id"], current)
        return self._appointments.journeys_synced(tenant["id"], owed)

    def after_commit(self, tenant: Document, appointment_id: str) -> None:
        """The change has committed, so the caller is answered with it whatever happens next:
        its journeys are settled now, or else by the repair sweep from the marker."""
        try:
            self.settle_journeys(tenant, appointment_id)
        except Exception:
            logger.warning(
                "journeys left to the repair sweep", extra={"appointment_id": appointment_id}
            )
            count("JourneySyncDeferred")

    def repair_journeys(self, settled_for: timedelta = REPAIR_AFTER) -> Document:
        """The repair sweep: every marker older than `settled_for` (its request has long had
        its chance) is acted on, tenant by tenant, through the markers' index."""
        cutoff = utc_iso(clock.now() - settled_for)
        repaired = failed = 0
        for tenant_id in self._tenants.all_ids():
            tenant = self._tenants.require(tenant_id)
            for owed in self._appointments.owed_journeys(tenant_id, cutoff):
                try:
                    self.settle_journeys(tenant, owed.appointment_id)
                except Exception:
                    logger.exception("journey repair failed")
                    failed += 1
                else:
                    repaired += 1
        count("JourneysRepaired", repaired)
        if failed:
            # The schedule's retries and dead-letter queue make a lasting failure seen.
            raise Retryable(f"{failed} appointments' journeys could not be settled yet")
        return {"repaired": repaired}

    def _changed(self, tenant_id: str, before: Document | None, saved: Document) -> None:
        """Every committed change of an appointment passes here: those others hear of (its
        status, the patient's answer, its time) are told (outbound webhooks)."""
        if rules.status_changed(before, saved):
            run_hooks(self._on_status_changed, tenant_id, saved)

    # -- presentation ------------------------------------------------------------------------
    def present(self, doc: Document, tenant: Document) -> Document:
        return present_appointment(doc, tenant)

    # -- reading -----------------------------------------------------------------------------
    def _visible(self, principal: Principal, appointment_id: str) -> tuple[Document, Document]:
        require_role(principal, EVERYONE)
        tenant = self._tenants.require(tenant_of(principal))
        found = (
            self._appointments.get(tenant["id"], appointment_id)
            if is_valid_id(appointment_id)
            else None
        )
        if found is None or (
            principal.role is Role.PATIENT and found["patient_id"] != principal.patient_id
        ):
            raise NotFound("appointment not found")
        return tenant, found

    def get(self, principal: Principal, appointment_id: str) -> Document:
        tenant, found = self._visible(principal, appointment_id)
        return self.present(found, tenant)

    def for_patient(
        self, principal: Principal, patient_id: str | None, when: str | None
    ) -> list[Document]:
        require_role(principal, EVERYONE)
        patient_id = patient_id or principal.patient_id
        if patient_id is None:
            raise Forbidden("name the patient")
        check_patient_visible(principal, patient_id)
        if when not in (None, "upcoming", "past"):
            raise invalid("when", "is upcoming or past")
        tenant = self._tenants.require(tenant_of(principal))
        patient = self._patients.get(tenant["id"], patient_id)
        if patient is None:
            raise NotFound("patient not found")  # not an empty list: ids cannot be probed
        if self._check_access is not None:
            self._check_access(principal, patient)
        now = utc_iso(clock.now())
        if when == "past":
            found = self._appointments.for_patient(
                tenant["id"], patient_id, before=now, newest_first=True
            )
        else:
            found = self._appointments.for_patient(tenant["id"], patient_id, after=now)
        return [self.present(doc, tenant) for doc in found]

    def day_list(
        self, principal: Principal, department: str, local_date: str | None
    ) -> list[Document]:
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        if department not in department_names(tenant):
            raise NotFound("department not found")
        day = local_date or clock.now().astimezone(ZoneInfo(tenant["time_zone"])).date().isoformat()
        try:
            datetime.fromisoformat(day)
        except ValueError as exc:
            raise invalid("date", "is a date such as 2027-03-01") from exc
        found = self._appointments.for_department_day(tenant["id"], department, day)
        return [self.present(doc, tenant) for doc in found]

    # -- booking -----------------------------------------------------------------------------
    def _slot(self, tenant: Document, body: Document, appointment_type: str) -> Slot:
        ref = body["slot"]
        schedule = self._config.get(tenant["id"], "SCHEDULE", ref["schedule_id"])
        if schedule is None:
            raise invalid("$.slot.schedule_id", "no such schedule")
        start = parse_timestamp("$.slot.start", ref["start"])
        slot = find_slot(schedule, ZoneInfo(tenant["time_zone"]), start)
        if slot is None:
            raise invalid("$.slot.start", "the schedule offers no slot starting then")
        if slot.start <= clock.now():
            raise invalid("$.slot.start", "is in the past")
        check_within_horizon(slot.start, tenant, clock.now())
        if appointment_type not in schedule.get("appointment_types", rules.TYPES):
            raise invalid("$.type", "this schedule does not take this type of appointment")
        return slot

    def book(self, principal: Principal, body: Document, idempotency_key: str | None) -> Document:
        require_role(principal, EVERYONE)
        tenant = self._tenants.require(tenant_of(principal))
        if principal.role is Role.PATIENT:
            if body.get("patient_id", principal.patient_id) != principal.patient_id:
                raise Forbidden("a patient books for themselves")
            patient_id = principal.patient_id
        elif "patient_id" not in body:
            raise invalid("$.patient_id", "is required when staff book for a patient")
        else:
            patient_id = body["patient_id"]
        patient = self._patients.get(tenant["id"], str(patient_id)) if patient_id else None
        if patient is None:
            raise invalid("$.patient_id", "no such patient")
        slot = self._slot(tenant, body, body["type"])
        now_iso = utc_iso(clock.now())
        doc: Document = {
            "id": appointment_id_for(principal, idempotency_key),
            "patient_id": patient["id"],
            "department": slot.department,
            "clinician": slot.clinician,
            "schedule_id": slot.schedule_id,
            "type": body["type"],
            "location": slot.location,
            "start": utc_iso(slot.start),
            "end": utc_iso(slot.end),
            "status": "booked",
            "patient_response": "pending",
            "journey_version": 1,
            "patient_time_zone": patient["time_zone"],
            "booked_by": principal.role.value,
            "created_at": now_iso,
            "updated_at": now_iso,
        }
        if "notes_for_patient" in body:
            doc["notes_for_patient"] = body["notes_for_patient"]
        doc = self._noted(tenant["id"], doc, rules.Change.BOOKED, principal, now_iso)
        try:
            saved = self._appointments.book(
                tenant["id"], doc, rules.day_of(doc, tenant), slot.capacity, now_iso
            )
        except AppointmentExists:
            # The same Idempotency-Key again (after the first response was lost): same result.
            existing = self._appointments.get(tenant["id"], doc["id"])
            if existing is None or not same_booking(existing, doc):
                raise Conflict(
                    "this Idempotency-Key was already used for another booking",
                    code="idempotency_key_reused",
                ) from None
            saved = existing
        else:
            count("AppointmentBooked")
            run_hooks(self._on_booked, tenant["id"], saved)  # recalls and re-checks convert
            self._changed(tenant["id"], None, saved)
        self.after_commit(tenant, saved["id"])
        return self.present(saved, tenant)

    # -- changes -----------------------------------------------------------------------------
    def _change(
        self, principal: Principal, appointment_id: str, roles: frozenset[Role]
    ) -> tuple[Document, Document]:
        require_role(principal, roles)
        return self._visible(principal, appointment_id)

    def confirm(self, principal: Principal, appointment_id: str) -> Document:
        tenant, current = self._change(principal, appointment_id, EVERYONE)
        if current["status"] not in rules.ACTIVE:
            rules.check_transition(current, "booked")
        now_iso = utc_iso(clock.now())
        changed = {
            **current,
            "status": "booked",
            "patient_response": "confirmed",
            "updated_at": now_iso,
        }
        changed = self._noted(tenant["id"], changed, rules.Change.CONFIRMED, principal, now_iso)
        saved = self._appointments.save(
            tenant["id"], current, changed, rules.day_of(current, tenant)
        )
        # Staff need not chase an answer that has come, however late.
        self._queue.resolve(tenant["id"], saved, "no_answer", "patient confirmed")
        self._changed(tenant["id"], current, saved)
        return self.present(saved, tenant)

    def cancel(self, principal: Principal, appointment_id: str) -> Document:
        tenant, current = self._change(principal, appointment_id, EVERYONE)
        if is_hospital_owned(current) and principal.role is Role.PATIENT:
            return self._request_cancel(principal, tenant, current)
        check_changeable_here(current)
        if current["status"] == "cancelled":
            # A retry after a cancel whose journey stop failed: settle it, then say so.
            self.after_commit(tenant, current["id"])
        rules.check_transition(current, "cancelled")
        if principal.role is Role.PATIENT:
            rules.check_not_started(current, clock.now())
        now_iso = utc_iso(clock.now())
        changed = {
            **current,
            "status": "cancelled",
            "updated_at": now_iso,
            "cancelled_by": principal.role.value,
        }
        if principal.role is Role.PATIENT:
            changed["patient_response"] = "declined"
        changed = self._noted(tenant["id"], changed, rules.Change.CANCELLED, principal, now_iso)
        saved = waiting_for_sends(
            lambda: self._appointments.release(
                tenant["id"], current, changed, rules.day_of(current, tenant), utc_iso(clock.now())
            )
        )
        count("AppointmentCancelled")
        # The cancel committed only once no message of this appointment was leaving, and a
        # claim checks the appointment's status: nothing more goes out. Stopping the execution
        # ends its timers.
        self.after_commit(tenant, saved["id"])
        self._changed(tenant["id"], current, saved)
        return self.present(saved, tenant)

    def _request_cancel(
        self, principal: Principal, tenant: Document, current: Document
    ) -> Document:
        """A patient cancels an appointment the hospital's system keeps: CareLoop cannot cancel
        it there, so staff are asked to (a task), no reminder follows the patient's answer, and
        the cancellation arrives from the hospital as an update."""
        rules.check_transition(current, "cancelled")
        rules.check_not_started(current, clock.now())
        now_iso = utc_iso(clock.now())
        changed = {
            **current,
            "patient_response": "declined",
            "updated_at": now_iso,
        }
        changed = self._noted(
            tenant["id"], changed, rules.Change.CANCEL_REQUESTED, principal, now_iso
        )
        saved = self._appointments.save(
            tenant["id"], current, changed, rules.day_of(current, tenant)
        )
        self._queue.open(tenant["id"], saved, "cancel_requested", tenant)
        self._changed(tenant["id"], current, saved)
        return self.present(saved, tenant)

    def reschedule(self, principal: Principal, appointment_id: str, body: Document) -> Document:
        tenant, current = self._change(principal, appointment_id, EVERYONE)
        check_changeable_here(current)
        rules.check_can_change_time(current, clock.now())
        slot = self._slot(tenant, body, current["type"])
        if slot.department != current["department"]:
            raise invalid("$.slot.schedule_id", "rescheduling stays in the same department")
        if utc_iso(slot.start) == current["start"] and slot.schedule_id == current["schedule_id"]:
            # Already there (a retried request whose journey start may have failed): settle it.
            self.after_commit(tenant, current["id"])
            return self.present(current, tenant)
        changed = {
            **current,
            "schedule_id": slot.schedule_id,
            "clinician": slot.clinician,
            "location": slot.location,
            "start": utc_iso(slot.start),
            "end": utc_iso(slot.end),
            "status": "booked",
            "patient_response": "pending",
            "journey_version": current["journey_version"] + 1,
            "updated_at": utc_iso(clock.now()),
        }
        changed = self._noted(
            tenant["id"], changed, rules.Change.RESCHEDULED, principal, changed["updated_at"]
        )
        saved = waiting_for_sends(
            lambda: self._appointments.move(
                tenant["id"],
                current,
                changed,
                rules.day_of(changed, tenant),
                slot.capacity,
                utc_iso(clock.now()),
            )
        )
        count("AppointmentRescheduled")
        self.after_commit(tenant, saved["id"])
        self._changed(tenant["id"], current, saved)
        return self.present(saved, tenant)

    def request_reschedule(self, principal: Principal, appointment_id: str) -> Document:
        """The patient wants another time but has not picked one (SMS "R"): staff call back."""
        tenant, current = self._change(principal, appointment_id, EVERYONE)
        rules.check_can_change_time(current, clock.now())
        now_iso = utc_iso(clock.now())
        changed = {
            **current,
            "patient_response": "reschedule_requested",
            "updated_at": now_iso,
        }
        changed = self._noted(
            tenant["id"], changed, rules.Change.RESCHEDULE_REQUESTED, principal, now_iso
        )
        saved = self._appointments.save(
            tenant["id"], current, changed, rules.day_of(current, tenant)
        )
        self._queue.open(tenant["id"], saved, "reschedule_requested", tenant)
        self._changed(tenant["id"], current, saved)
        return self.present(saved, tenant)

    def _set_status(self, principal: Principal, appointment_id: str, status: str) -> Document:
        tenant, current = self._change(principal, appointment_id, CLINIC_ROLES)
        check_changeable_here(current)
        if status == "noshow":
            rules.check_noshow_allowed(current, clock.now())
        else:
            rules.check_transition(current, status)
        now_iso = utc_iso(clock.now())
        changed = self._noted(
            tenant["id"],
            {**current, "status": status, "updated_at": now_iso},
            rules.Change(status),
            principal,
            now_iso,
        )
        saved = self._appointments.save(
            tenant["id"], current, changed, rules.day_of(current, tenant)
        )
        count(f"Appointment{status.capitalize()}")
        self._changed(tenant["id"], current, saved)
        return self.present(saved, tenant)

    def check_in(self, principal: Principal, appointment_id: str) -> Document:
        return self._set_status(principal, appointment_id, "arrived")

    def fulfil(self, principal: Principal, appointment_id: str) -> Document:
        return self._set_status(principal, appointment_id, "fulfilled")

    def no_show(self, principal: Principal, appointment_id: str) -> Document:
        return self._set_status(principal, appointment_id, "noshow")
