"""What the appointment journey's tasks do. Each is safe to replay: sends are claimed by key,
staff tasks are created once by id, and a step of a superseded journey version does nothing."""

from __future__ import annotations

from chalicelib import clock, journeys
from chalicelib.domain import journey as rules
from chalicelib.domain.appointments import ACTIVE, day_of
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict
from chalicelib.messaging.delivery import Deliveries, appointment_fields
from chalicelib.observability import count
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository

ATTENDED = frozenset({"arrived", "fulfilled"})


class JourneyService:
    def __init__(
        self,
        tenants: TenantRepository,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        deliveries: Deliveries,
        queue: StaffQueue,
    ) -> None:
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

    def plan(self, ref: Document) -> Document:
        loaded = self._load(ref)
        if loaded is None or loaded[1]["status"] not in ACTIVE:
            return {"proceed": False}
        tenant, appointment, patient = loaded
        return {
            "proceed": True,
            **rules.plan(appointment, tenant, patient["time_zone"], clock.now()),
        }

    def send(self, ref: Document, step: str) -> Document:
        loaded = self._load(ref)
        if loaded is None:
            return {"status": "skipped", "why": "superseded"}
        tenant, appointment, patient = loaded
        still_due = appointment["status"] in ACTIVE or (
            step.startswith("noshow") and appointment["status"] == "noshow"
        )
        if not still_due:
            return {"status": "skipped", "why": f"appointment is {appointment['status']}"}
        key = f"{appointment['id']}#v{appointment['journey_version']}#{step}"
        return self._deliveries.deliver(
            tenant,
            patient,
            step,
            key,
            appointment_fields(tenant, patient, appointment),
            {"appointment_id": appointment["id"]},
            clock.now(),
        )

    def hold_answer(self, ref: Document, token: str, deadline: str | None = None) -> Document:
        """Keep the task token on the appointment, where a reply (app or SMS) finds it.

        The deadline check runs in a parallel branch and may come first; so once the token is
        stored, a deadline already past releases it here (whichever comes second releases)."""
        for _ in range(3):
            loaded = self._load(ref, with_patient=False)
            if loaded is None or loaded[1]["status"] not in ACTIVE:
                journeys.resume(token, {"answer": "none"})
                return {"held": False}
            tenant, appointment, _ = loaded
            if appointment["patient_response"] != "pending":
                journeys.resume(token, {"answer": appointment["patient_response"]})
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
                journeys.resume(token, {"answer": "none"})
            return {"held": True}
        raise RuntimeError("could not hold the answer token")

    def answer_deadline(self, ref: Document) -> Document:
        loaded = self._load(ref, with_patient=False)
        if loaded is None:
            return {"escalated": False}
        tenant, appointment, _ = loaded
        escalated = False
        if appointment["status"] in ACTIVE and appointment["patient_response"] == "pending":
            self._queue.open(tenant["id"], appointment, "no_answer", tenant)
            escalated = True
        token = appointment.get("answer_token")
        if token:
            journeys.resume(token, {"answer": "none"})
        return {"escalated": escalated}

    def visit_outcome(self, ref: Document) -> Document:
        loaded = self._load(ref, with_patient=False)
        if loaded is None:
            return {"outcome": "superseded"}
        tenant, appointment, _ = loaded
        status = appointment["status"]
        if status == "booked":
            # Nobody checked the patient in by the end of the grace period: a no-show.
            changed = {
                **appointment,
                "status": "noshow",
                "noshow_marked_by": "journey",
                "updated_at": utc_iso(clock.now()),
            }
            self._appointments.save(
                tenant["id"],
                appointment,
                changed,
                day_of(appointment, tenant),
            )
            count("AppointmentNoshow")
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

    def rebooked(self, ref: Document) -> Document:
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

    def staff_task(self, ref: Document, kind: str) -> Document:
        loaded = self._load(ref, with_patient=False)
        if loaded is None:
            return {"created": False}
        tenant, appointment, _ = loaded
        task = self._queue.open(tenant["id"], appointment, kind, tenant)
        return {"created": True, "task_id": task["id"]}
