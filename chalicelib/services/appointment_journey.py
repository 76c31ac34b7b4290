"""The appointment journey's one task: take the step the state machine waited for, then say which
step follows and when (domain.appointment_journey). Every step is safe to replay: sends are
claimed by key, staff tasks are opened once by id, the visit event's consumers act once per
appointment, and a step of a superseded journey version does nothing and ends its journey.

Reads: the appointment on every step (its status decides), the patient on the steps that send
(contact details and consent are never cached); the tenant's settings come from a brief cache
(`TENANT_SETTINGS_FOR`), as a warm container keeps them between the many journeys of a busy
hospital. The plan travels in the execution's state, so no step recomputes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from chalicelib import clock
from chalicelib.domain import appointment_journey as rules
from chalicelib.domain.appointment_journey import Step
from chalicelib.domain.appointments import (
    ACTIVE,
    Actor,
    Change,
    day_of,
    fulfilled_event,
    with_change,
)
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.deliveries import SendResult
from chalicelib.domain.errors import Conflict, Retryable
from chalicelib.domain.hospital_appointments import is_hospital_owned
from chalicelib.domain.step_results import JourneyState, NextStep, Timetable
from chalicelib.observability import count, run_hooks
from chalicelib.services.brief_cache import TENANT_SETTINGS_FOR, BriefCache
from chalicelib.services.deliveries import Deliveries, Message, appointment_fields
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.journey_records import JourneyRecordRepository
from chalicelib.store.messages import SendGuard
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository

ATTENDED = frozenset({"arrived", "fulfilled"})
NOSHOW_STATUSES = frozenset({"noshow"})


def sent_outcome(sent: SendResult) -> Document:
    """A message step's outcome as its journey's record keeps it: codes, never the text."""
    return {k: v for k, v in sent.items() if k in ("status", "channel", "why", "retry_at")}


class AppointmentJourneyService:
    def __init__(
        self,
        tenants: TenantRepository,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        deliveries: Deliveries,
        queue: StaffQueue,
        records: JourneyRecordRepository,
        publish_event: Callable[[Document], None],
        on_status_changed: Sequence[Callable[[str, Document], None]] = (),
    ) -> None:
        self._records = records
        self._tenants = tenants
        self._patients = patients
        self._appointments = appointments
        self._deliveries = deliveries
        self._queue = queue
        self._publish_event = publish_event
        self._on_status_changed = on_status_changed
        self._tenant_settings: BriefCache[Document] = BriefCache(TENANT_SETTINGS_FOR)

    # -- the step task -------------------------------------------------------------------------

    def take(self, ref: Document) -> JourneyState:
        """Take `ref["journey"]["next"]` and return the plan with the step after it."""
        journey, now = ref["journey"], clock.now()
        step = journey["next"]["step"]
        appointment = self._current(ref)
        tenant = self._tenant(ref["tenant_id"]) if appointment is not None else None
        if appointment is None or tenant is None:
            return {"plan": journey["plan"], "next": rules.done(now)}  # superseded
        if step == Step.START:
            return self._start(tenant, appointment, now)
        plan: Timetable = journey["plan"]
        following, outcome = self._after(tenant, appointment, plan, step, now)
        passed_over = rules.between(plan, step, following["step"])
        self._note(ref["tenant_id"], appointment, step, outcome, now, passed_over)
        return {"plan": plan, "next": following}

    def skip(self, ref: Document) -> JourneyState:
        """After `ref["journey"]["next"]` failed every retry (its staff task is open): the step
        the journey goes on with. A failed start is planned again, and the confirmation taken
        as a step of its own."""
        journey, now = ref["journey"], clock.now()
        step = journey["next"]["step"]
        if step != Step.START:
            plan: Timetable = journey["plan"]
            current = self._current(ref)
            if current is not None:
                self._note(ref["tenant_id"], current, step, {"status": "failed"}, now)
            return {"plan": plan, "next": rules.after_failure(plan, step, now)}
        appointment = self._current(ref)
        tenant = self._tenant(ref["tenant_id"]) if appointment is not None else None
        patient = self._patient(ref["tenant_id"], appointment) if appointment else None
        if (
            appointment is None
            or tenant is None
            or patient is None
            or appointment["status"] not in ACTIVE
        ):
            return {"plan": journey["plan"], "next": rules.done(now)}
        planned = rules.plan(appointment, tenant, patient["time_zone"], now)
        # The start may have failed anywhere in it: the confirmation gets a step of its own (its
        # own retries, and if it fails too, a staff task that names it).
        return {"plan": planned, "next": rules.at(Step.CONFIRMATION, planned["confirmation_at"])}

    def _start(self, tenant: Document, appointment: Document, now: datetime) -> JourneyState:
        if appointment["status"] not in ACTIVE:
            return {"plan": {}, "next": rules.done(now)}
        patient = self._patient(tenant["id"], appointment)
        if patient is None:
            return {"plan": {}, "next": rules.done(now)}
        plan, left_out = rules.plan_and_left_out(appointment, tenant, patient["time_zone"], now)
        self._records.started(
            tenant["id"],
            appointment["id"],
            appointment["journey_version"],
            {
                "plan": dict(plan),
                # For the timeline: the reminders left out and the messages quiet hours moved.
                "left_out": list(left_out),
                "moved": rules.moved_by_quiet_hours(
                    plan, datetime.fromisoformat(appointment["start"]), now
                ),
            },
            utc_iso(now),
        )
        if plan["confirmation_at"] > utc_iso(now):
            return {"plan": plan, "next": rules.at(Step.CONFIRMATION, plan["confirmation_at"])}
        # Due at once (the usual case): sent in this same task, a loop's turn saved.
        sent = self._send(tenant, appointment, patient, Step.CONFIRMATION, now)
        following = self._after_message(plan, appointment, Step.CONFIRMATION, sent, now)
        passed_over = rules.between(plan, Step.CONFIRMATION, following["step"])
        self._note(
            tenant["id"], appointment, Step.CONFIRMATION, sent_outcome(sent), now, passed_over
        )
        return {"plan": plan, "next": following}

    def _after(
        self, tenant: Document, appointment: Document, plan: Timetable, step: str, now: datetime
    ) -> tuple[NextStep, Document]:
        """What `step` does: the step after it, and what it did (for the journey's record)."""
        if rules.sends_message(step):
            patient = self._patient(tenant["id"], appointment)
            if patient is None:
                return rules.done(now), {"status": "skipped", "why": "the patient is gone"}
            sent = self._send(tenant, appointment, patient, step, now)
            return self._after_message(plan, appointment, step, sent, now), sent_outcome(sent)
        if step == Step.ANSWER_DEADLINE:
            escalated = self._escalate_if_unanswered(tenant, appointment)
            status = "escalated" if escalated else "answered"
            return rules.following(plan, step, answered=True, now=now), {"status": status}
        if step == Step.VISIT_CHECK:
            outcome = self._visit_outcome(tenant, appointment)
            return rules.after_visit(outcome, now), {"status": outcome}
        if step in rules.NOT_REBOOKED_NEXT:
            rebooked = self._rebooked(tenant, appointment)
            status = "rebooked" if rebooked else "not_rebooked"
            return rules.after_rebook_check(step, rebooked, now), {"status": status}
        if step == Step.NOSHOW_TASK:
            task = self._queue.open(tenant["id"], appointment, "noshow_unrebooked", tenant)
            return rules.done(now), {"status": "task_opened", "task_id": task["id"]}
        raise ValueError(f"an appointment journey has no step {step!r}")

    def _note(
        self,
        tenant_id: str,
        appointment: Document,
        step: str,
        outcome: Document,
        now: datetime,
        passed_over: Sequence[str] = (),
    ) -> None:
        """The step's outcome in the journey's record, with the planned steps the journey went
        past without taking (the answer's deadline once the patient answered), in one write."""
        at = utc_iso(now)
        outcomes = {str(step): {**outcome, "at": at}}
        for skipped in passed_over:
            outcomes[skipped] = {
                "status": "passed_over",
                "why": "the patient had answered",
                "at": at,
            }
        self._records.noted(tenant_id, appointment["id"], appointment["journey_version"], outcomes)

    def _after_message(
        self, plan: Timetable, appointment: Document, step: str, sent: SendResult, now: datetime
    ) -> NextStep:
        if sent["status"] == "deferred":
            return rules.at(step, sent["retry_at"])  # the same step, once quiet hours end
        if step in rules.REBOOK_CHECK_AFTER:
            return rules.after_noshow_message(plan, step, now)
        answered = appointment["patient_response"] != "pending"
        return rules.following(plan, step, answered=answered, now=now)

    # -- reads -----------------------------------------------------------------------------------

    def _current(self, ref: Document) -> Document | None:
        """The appointment, if this journey version is still its journey."""
        appointment = self._appointments.get(ref["tenant_id"], ref["appointment_id"])
        if appointment is None or appointment["journey_version"] != ref["journey_version"]:
            return None
        return appointment

    def _tenant(self, tenant_id: str) -> Document | None:
        return self._tenant_settings.get(tenant_id, lambda: self._tenants.get(tenant_id))

    def _patient(self, tenant_id: str, appointment: Document) -> Document | None:
        return self._patients.get(tenant_id, appointment["patient_id"])

    # -- what the steps do -----------------------------------------------------------------------

    def _send(
        self, tenant: Document, appointment: Document, patient: Document, step: str, now: datetime
    ) -> SendResult:
        """The step's message, if it still makes sense: the appointment is still booked (or,
        for a no-show follow-up, missed) at this journey version, and a confirmation or
        reminder goes out only before the visit begins, however late this task runs."""
        step = str(step)  # stored in the message's record as a plain string
        noshow_step = step in rules.REBOOK_CHECK_AFTER
        statuses = NOSHOW_STATUSES if noshow_step else ACTIVE
        message = Message(
            step=step,
            key=f"{appointment['id']}#v{appointment['journey_version']}#{step}",
            fields=appointment_fields(tenant, patient, appointment),
            about={"appointment_id": appointment["id"]},
            guard=SendGuard(appointment["id"], appointment["journey_version"], statuses),
            not_after=None if noshow_step else datetime.fromisoformat(appointment["start"]),
            invites_reply=not noshow_step,
            confirmed=appointment.get("patient_response") == "confirmed",
        )
        if appointment["status"] not in statuses:
            # Logged, so staff can see why the patient got no message for this step.
            why = f"the appointment is {appointment['status']}"
            return self._deliveries.skip(tenant, patient, message, now, why)
        if not noshow_step and appointment.get("patient_response") == "declined":
            # They cancelled one the hospital's system keeps; its cancellation is on its way.
            return self._deliveries.skip(
                tenant, patient, message, now, "the patient asked to cancel"
            )
        return self._deliveries.deliver(tenant, patient, message, now)

    def _escalate_if_unanswered(self, tenant: Document, appointment: Document) -> bool:
        if appointment["status"] in ACTIVE and appointment["patient_response"] == "pending":
            self._queue.open(tenant["id"], appointment, "no_answer", tenant)
            return True
        return False

    def _visit_outcome(self, tenant: Document, appointment: Document) -> str:
        """At the visit plus the grace period: an appointment still `booked` is a no-show; an
        attended one publishes `appointment.fulfilled` (its consumers act once per visit)."""
        for _ in range(3):
            status = appointment["status"]
            if is_hospital_owned(appointment):
                # Attendance is the hospital system's to say, and its update that says so
                # publishes the visit (the import): nothing is marked or published here.
                return "kept_by_hospital"
            if status == "booked":
                now_iso = utc_iso(clock.now())
                changed = with_change(
                    {
                        **appointment,
                        "status": "noshow",
                        "noshow_marked_by": "journey",
                        "updated_at": now_iso,
                    },
                    Change.NOSHOW,
                    by=Actor.JOURNEY,
                    at=now_iso,
                )
                try:
                    saved = self._appointments.save(
                        tenant["id"], appointment, changed, day_of(appointment, tenant)
                    )
                except Conflict:
                    # Checked in (or changed) at this very moment: look again.
                    current = self._appointments.get(tenant["id"], appointment["id"])
                    if (
                        current is None
                        or current["journey_version"] != appointment["journey_version"]
                    ):
                        return "superseded"
                    appointment = current
                    continue
                count("AppointmentNoshow")
                # As every status change made through AppointmentService (outbound webhooks).
                run_hooks(self._on_status_changed, tenant["id"], saved)
                return "noshow"
            if status in ATTENDED:
                self._publish_event(fulfilled_event(tenant["id"], appointment))
                return "attended"
            return str(status)
        raise Retryable("the appointment kept changing during the visit check")

    def _rebooked(self, tenant: Document, appointment: Document) -> bool:
        upcoming = self._appointments.for_patient(
            tenant["id"], appointment["patient_id"], after=utc_iso(clock.now())
        )
        return any(
            a["department"] == appointment["department"] and a["status"] in ACTIVE for a in upcoming
        )
