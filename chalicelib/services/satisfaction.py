"""The satisfaction survey after a fulfilled visit, and what its answer sets off.

- A fulfilled visit (the journey-events topic) starts the built-in satisfaction plan when the
  tenant has it on, the visit still stands as fulfilled (a no-show or a cancelled visit never
  sends one: no event comes for them, and a visit changed since is checked here), and the
  patient's survey claim is taken: one conditional write per patient, which a visit takes only
  if the last visit asked about is older than `min_days_between` days, or is this very event (a
  replay). Two visits at once cannot both ask; a replayed event asks nothing twice (its journey
  and execution are named after it).
- A submitted satisfaction response: a detractor or a flagged comment opens a recovery
  complaint for the visit's department (once per response); a promoter is thanked with the
  review link when the tenant configured it (once per response). Nothing is posted anywhere.
"""

from __future__ import annotations

from chalicelib import clock
from chalicelib.domain import satisfaction as rules
from chalicelib.domain.common import Document, parse_timestamp, utc_iso
from chalicelib.observability import count
from chalicelib.services.complaints import ComplaintService
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.care import AFTERCARE, CareRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.satisfaction import SatisfactionRepository
from chalicelib.store.tenants import TenantRepository


class SatisfactionService:
    def __init__(
        self,
        claims: SatisfactionRepository,
        complaints: ComplaintService,
        tenants: TenantRepository,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        care: CareRepository,
    ) -> None:
        self._claims = claims
        self._complaints = complaints
        self._tenants = tenants
        self._patients = patients
        self._appointments = appointments
        self._care = care

    def plans_for(
        self, tenant: Document, patient: Document, event: Document, event_key: str
    ) -> list[Document]:
        """The built-in plan this event starts: [] or [the satisfaction plan]."""
        settings = rules.settings_of(tenant)
        if not settings["enabled"] or event.get("type") != "appointment.fulfilled":
            return []
        appointment = self._appointments.get(tenant["id"], event["appointment_id"])
        if appointment is None or appointment["status"] != "fulfilled":
            count("SatisfactionNotForThisVisit")
            return []
        visit_at = parse_timestamp("$.start", event["start"])
        if not self._claims.claim(
            tenant["id"],
            patient["id"],
            visit_at=utc_iso(visit_at),
            window_start=rules.window_start(visit_at, settings["min_days_between"]),
            event_key=event_key,
            now=utc_iso(clock.now()),
        ):
            count("SatisfactionAskedRecently")
            return []
        return [rules.builtin_plan(settings)]

    def submitted(self, tenant_id: str, response: Document) -> None:
        """A satisfaction response was submitted (before it is saved: a failure here makes the
        patient submit again, and both reactions are once per response)."""
        if response.get("questionnaire") != rules.QUESTIONNAIRE or "score" not in response.get(
            "answers", {}
        ):
            return
        tenant = self._tenants.get(tenant_id)
        patient = self._patients.get(tenant_id, response["patient_id"])
        if tenant is None or patient is None:
            return
        settings = rules.settings_of(tenant)
        if not settings["enabled"]:
            return
        verdict = rules.verdict(response["answers"], settings)
        if verdict["recovery"]:
            department, appointment = self._visit_of(tenant, patient, response)
            if department:
                self._complaints.open_recovery(
                    tenant, patient, response, verdict, department, appointment
                )
            else:
                count("SatisfactionRecoveryWithoutDepartment")
        elif verdict["thank_you"]:
            self._complaints.owe_thanks(tenant_id, patient["id"], response["id"])
            count("SatisfactionThanked")

    def _visit_of(
        self, tenant: Document, patient: Document, response: Document
    ) -> tuple[str, Document | None]:
        """The visit a response is about: the survey journey's event (its department and
        appointment); an answer from the app's list is about the patient's first department."""
        link = response.get("journey")
        journey = (
            self._care.get(tenant["id"], patient["id"], AFTERCARE, link["id"]) if link else None
        )
        if journey is not None:
            event = journey.get("event") or {}
            appointment_id = event.get("appointment_id")
            appointment = (
                self._appointments.get(tenant["id"], appointment_id) if appointment_id else None
            )
            return str(journey.get("department") or ""), appointment
        departments = patient.get("departments") or [d["id"] for d in tenant.get("departments", [])]
        return (departments[0] if departments else ""), None
