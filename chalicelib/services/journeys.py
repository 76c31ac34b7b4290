"""What the appointment journey's tasks do. Each is safe to replay: sends are claimed by key,
staff tasks are created once by id, and a step of a superseded journey version does nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from chalicelib import clock
from chalicelib.adapters.executions import Executions
from chalicelib.domain import journey as rules
from chalicelib.domain.appointments import ACTIVE, day_of
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.deliveries import SendResult
from chalicelib.domain.errors import Conflict, Retryable
from chalicelib.domain.hospital_appointments import is_hospital_owned
from chalicelib.domain.task_results import (
    AnswerHeld,
    DeadlineChecked,
    JourneyPlan,
    RebookChecked,
    StaffTaskOpened,
    VisitOutcome,
)
from chalicelib.observability import count, run_hooks
from chalicelib.services.deliveries import Deliveries, Message, appointment_fields
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.messages import SendGuard
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository

ATTENDED = frozenset({"arrived", "fulfilled"})
NOSHOW_STEP_STATUSES = frozenset({"noshow"})


class JourneyService:
    def __init__(
        self,
        tenants: TenantRepository,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        deliveries: Deliveries,
        queue: StaffQueue,
        executions: Executions,
        on_status_changed: Sequence[Callable[[str, Document], None]] = (),
    ) -> None:
        self._executions = executions
        self._on_status_changed = on_status_changed
        self._tenants = tenants
        self._patients = patients
        self._appointments = appointments
        self._deliveries = deliveries
        self._queue = queue

    def _load(
        self, ref: Document, *, with_patient: bool = True
    ) -> tuple[Document, Document, Document] | None:
        """Tenant, appointment and patient, or None when this journey version is over. Tasks
        that send nothing skip the patient read (an empty patient stands in)."""
        appointment = self._appointments.get(ref["tenant_id"], ref["appointment_id"])
        if appointment is None or appointment["journey_version"] != ref["journey_version"]:
            return None
        tenant = self._tenants.get(ref["tenant_id"])
        patient = (
            self._patients.get(ref["tenant_id"], appointment["patient_id"]) if with_patient else {}
        )
        if tenant is None or patient is None:
            return None
        return tenant, appointment, patient

    def plan(self, ref: Document) -> JourneyPlan:
        loaded = self._load(ref)
        if loaded is None or loaded[1]["status"] not in ACTIVE:
            return {"proceed": False}
        tenant, appointment, patient = loaded
        return {
            "proceed": True,
            **rules.plan(appointment, tenant, patient["time_zone"], clock.now()),
        }

    def send(self, ref: Document, step: str) -> SendResult:
        """The step's message, if it still makes sense: the appointment is still booked (or,
        for a no-show follow-up, missed) at this journey version, and a confirmation or
        reminder goes out only before the visit begins, however late this task runs."""
        loaded = self._load(ref)
        if loaded is None:
            return SendResult(status="skipped", why="superseded")
        tenant, appointment, patient = loaded
        statuses = NOSHOW_STEP_STATUSES if step.startswith("noshow") else ACTIVE
        before_visit = not step.startswith("noshow")
        message = Message(
            step=step,
            key=f"{appointment['id']}#v{appointment['journey_version']}#{step}",
            fields=appointment_fields(tenant, patient, appointment),
            about={"appointment_id": appointment["id"]},
            guard=SendGuard(appointment["id"], appointment["journey_version"], statuses),
            not_after=datetime.fromisoformat(appointment["start"]) if before_visit else None,
            invites_reply=before_visit,
            confirmed=appointment.get("patient_response") == "confirmed",
        )
        if appointment["status"] not in statuses:
            # Logged, so staff can see why the patient got no message for this step.
            why = f"the appointment is {appointment['status']}"
            return self._deliveries.skip(tenant, patient, message, clock.now(), why)
        if before_visit and appointment.get("patient_response") == "declined":
            # They cancelled one the hospital's system keeps; its cancellation is on its way.
            why = "the patient asked to cancel"
            return self._deliveries.skip(tenant, patient, message, clock.now(), why)
        return self._deliveries.deliver(tenant, patient, message, clock.now())

    def hold_answer(self, ref: Document, token: str, deadline: str | None = None) -> AnswerHeld:
        """Keep the task token on the appointment, where a reply (app or SMS) finds it.

        The deadline check runs in a parallel branch and may come first; so once the token is
        stored, a deadline already past releases it here (whichever comes second releases)."""
        for _ in range(3):
            loaded = self._load(ref, with_patient=False)
            if loaded is None or loaded[1]["status"] not in ACTIVE:
                self._executions.resume(token, {"answer": "none"})
                return {"held": False}
            tenant, appointment, _ = loaded
            if appointment["patient_response"] != "pending":
                self._executions.resume(token, {"answer": appointment["patient_response"]})
                return {"held": False}
            try:
                self._appointments.save(
                    tenant["id"],
                    appointment,
                    {**appointment, "answer_token": token},
                    day_of(appointment, tenant),
                )
            except Conflict:
                continue  # the patient answered meanwhile: look again
            if deadline is not None and utc_iso(clock.now()) >= deadline:
                self._executions.resume(token, {"answer": "none"})
            return {"held": True}
        raise Retryable("the appointment kept changing while the answer token was stored")

    def answer_deadline(self, ref: Document) -> DeadlineChecked:
        loaded = self._load(ref, with_patient=False)
        if loaded is None:
            return {"escalated": False}
        tenant, appointment, _ = loaded
        # The answer's wait is released first: if opening the task then keeps failing, the
        # journey still goes on to the visit check (and the failure reaches staff anyway).
        token = appointment.get("answer_token")
        if token:
            self._executions.resume(token, {"answer": "none"})
        escalated = False
        if appointment["status"] in ACTIVE and appointment["patient_response"] == "pending":
            self._queue.open(tenant["id"], appointment, "no_answer", tenant)
            escalated = True
        return {"escalated": escalated}

    def visit_outcome(self, ref: Document) -> VisitOutcome:
        """At the visit plus the grace period: an appointment still `booked` is a no-show."""
        for _ in range(3):
            loaded = self._load(ref, with_patient=False)
            if loaded is None:
                return {"outcome": "superseded"}
            tenant, appointment, _ = loaded
            status = appointment["status"]
            if is_hospital_owned(appointment):
                # Attendance is the hospital system's to say, and its update that says so
                # publishes the visit (the import): nothing is marked or published here.
                return {"outcome": "kept_by_hospital"}
            if status == "booked":
                # Nobody checked the patient in by the end of the grace period: a no-show.
                changed = {
                    **appointment,
                    "status": "noshow",
                    "noshow_marked_by": "journey",
                    "updated_at": utc_iso(clock.now()),
                }
                try:
                    saved = self._appointments.save(
                        tenant["id"], appointment, changed, day_of(appointment, tenant)
                    )
                except Conflict:
                    continue  # checked in (or changed) at this very moment: look again
                count("AppointmentNoshow")
                # As every status change made through AppointmentService (outbound webhooks).
                run_hooks(self._on_status_changed, tenant["id"], saved)
                status = "noshow"
            if status in ATTENDED:
                event = {
                    "type": "appointment.fulfilled",
                    "tenant_id": tenant["id"],
                    "appointment_id": appointment["id"],
                    "patient_id": appointment["patient_id"],
                    "department": appointment["department"],
                    "appointment_type": appointment["type"],
                    "start": appointment["start"],
                }
                return {"outcome": "attended", "event": event}
            return {"outcome": status}
        raise Retryable("the appointment kept changing during the visit check")

    def rebooked(self, ref: Document) -> RebookChecked:
        loaded = self._load(ref, with_patient=False)
        if loaded is None:
            return {"rebooked": True}  # nothing more to chase
        tenant, appointment, _ = loaded
        upcoming = self._appointments.for_patient(
            tenant["id"], appointment["patient_id"], after=utc_iso(clock.now())
        )
        found = any(
            a["department"] == appointment["department"] and a["status"] in ACTIVE for a in upcoming
        )
        return {"rebooked": found}

    def staff_task(self, ref: Document, kind: str) -> StaffTaskOpened:
        loaded = self._load(ref, with_patient=False)
        if loaded is None:
            return {"created": False}
        tenant, appointment, _ = loaded
        task = self._queue.open(tenant["id"], appointment, kind, tenant)
        return {"created": True, "task_id": task["id"]}
