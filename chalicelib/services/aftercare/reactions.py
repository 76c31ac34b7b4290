"""What aftercare journeys do when something happens elsewhere: a questionnaire submitted (an
answer to a check-in, or an urgent one to alert staff about) or an appointment booked (a
re-check invitation answered).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import care_plans as rules
from chalicelib.domain.aftercare import (
    JourneyStatus,
    StepKind,
    StepStatus,
    answered_status,
    step_of,
)
from chalicelib.domain.common import Document, parse_timestamp, utc_iso
from chalicelib.domain.errors import NotFound
from chalicelib.observability import count, run_hooks
from chalicelib.services.aftercare.records import JourneyRecords, ref_of, zone_of
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository

S = StepStatus


class AftercareReactions:
    def __init__(
        self,
        journeys: JourneyRecords,
        tenants: TenantRepository,
        patients: PatientRepository,
        queue: StaffQueue,
        on_urgent: Sequence[Callable[[str, Document], None]] = (),
    ) -> None:
        self._journeys = journeys
        self._tenants = tenants
        self._patients = patients
        self._queue = queue
        self._on_urgent = on_urgent

    def submitted(self, tenant_id: str, response: Document) -> None:
        """A questionnaire was submitted. An urgent answer alerts the department's staff at once
        (whether or not a journey asked for it). A check-in's own response answers its step; any
        other response to the same questionnaire answers the check-in whose window holds it."""
        tenant = self._tenants.get(tenant_id)
        patient = self._patients.get(tenant_id, response["patient_id"])
        link = response.get("journey")
        journey = (
            self._journeys.get(ref_of(tenant_id, response["patient_id"], link["id"]))
            if link
            else None
        )
        if response["risk"] == "urgent":
            self._alert(tenant_id, tenant, patient or {}, response, journey)
        if tenant is None or patient is None:
            return
        zone = zone_of(tenant, patient)
        if link is not None:
            if journey is not None:
                self._answered(tenant, zone, response, link["id"], link["step"])
            return
        authored = parse_timestamp("$.authored_at", response["authored_at"])
        for found in self._journeys.running(tenant_id, response["patient_id"]):
            step = rules.check_in_answered_by(
                found["plan"], found["steps"], response["questionnaire"], authored, zone
            )
            if step is not None:
                self._answered(tenant, zone, response, found["id"], step["id"])

    def _alert(
        self,
        tenant_id: str,
        tenant: Document | None,
        patient: Document,
        response: Document,
        journey: Document | None,
    ) -> None:
        """Staff of the journey's department (else the patient's first) get an urgent task."""
        department = journey["department"] if journey else (patient.get("departments") or [None])[0]
        about: Document = {
            "patient_id": response["patient_id"],
            "response_id": response["id"],
            "questionnaire": response["questionnaire"],
        }
        if department:
            about["department"] = department
        if journey:
            about["journey_id"] = journey["id"]
        self._queue.open_task(
            tenant_id,
            f"{response['id']}-urgent",
            "urgent_answer",
            about,
            tenant=tenant,
            priority="urgent",
        )
        count("UrgentAnswerAlerted")
        run_hooks(self._on_urgent, tenant_id, response)  # the high-risk segment

    def _answered(
        self, tenant: Document, zone: ZoneInfo, response: Document, journey_id: str, step_id: str
    ) -> None:
        """Record the answer in its step; an urgent answer in time takes the plan's branch (one
        more check-in), which the journey's next look finds."""
        answered_at = parse_timestamp("$.authored_at", response["authored_at"])

        def change(journey: Document) -> Document | None:
            step = step_of(journey, step_id)
            becomes = answered_status(step["status"])
            if becomes is None:
                return None
            step.update(status=becomes, risk=response["risk"], answered_at=response["authored_at"])
            if response.get("journey") is None:
                step["answered_by"] = response["id"]  # not the check-in's own response
            branches = becomes == S.ANSWERED and journey["status"] == JourneyStatus.RUNNING
            if branches and response["risk"] == "urgent" and "branched" not in step:
                extra = rules.extra_check_in(
                    journey["plan"],
                    step,
                    journey["steps"],
                    answered_at,
                    zone,
                    tenant["quiet_hours"],
                )
                step["branched"] = extra["id"] if extra else "none"
                if extra:
                    journey["steps"].append(extra)
            return journey

        with suppress(NotFound):
            self._journeys.update(ref_of(tenant["id"], response["patient_id"], journey_id), change)

    def on_booked(self, tenant_id: str, appointment: Document) -> None:
        """A booking closes an open re-check invitation of the same department as a success."""
        for journey in self._journeys.running(tenant_id, appointment["patient_id"]):
            recheck = journey["plan"].get("recheck", {})
            if (recheck.get("department") or journey["department"]) != appointment["department"]:
                continue
            if recheck.get("appointment_type") not in (None, appointment["type"]):
                continue
            ref = ref_of(tenant_id, appointment["patient_id"], journey["id"])
            for step in journey["steps"]:
                if step["kind"] != StepKind.RECHECK or step["status"] != S.AWAITING_BOOKING:
                    continue
                if self._journeys.move_step(
                    ref,
                    step["id"],
                    S.BOOKED,
                    appointment_id=appointment["id"],
                    booked_at=utc_iso(clock.now()),
                ):
                    count("RecheckBooked")
