"""FHIR R4 reads and a patient's export: our records, read under the API's own access rules and
mapped by `chalicelib.domain.fhir` (FHIR_VERSION).

Who may see what is decided where it is for every other read: `PatientService.require` scopes
the tenant and the patient (a patient token reaches its own record only; anything else is a
404) and asks a staff member for a break-glass reason outside their departments. Every search
names its patient, so a search is a read of that patient's record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypedDict

from chalicelib import clock
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document
from chalicelib.domain.errors import NotFound, ValidationFailed, invalid
from chalicelib.domain.fhir import (
    Resource,
    appointment_to_fhir,
    capability_statement,
    patient_export_bundle,
    patient_to_fhir,
    questionnaire_from_fhir,
    questionnaire_response_to_fhir,
    questionnaire_to_fhir,
    searchset_bundle,
    validate_resource,
)
from chalicelib.domain.fhir.common import mrn_system_of
from chalicelib.schemas import validate
from chalicelib.services.patients import PatientService
from chalicelib.services.questionnaires import QuestionnaireService
from chalicelib.services.tenants import TenantService
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.care import CareRepository
from chalicelib.store.config import ConfigRepository
from chalicelib.store.messages import DeliveryRepository
from chalicelib.store.responses import ResponseRepository

CLINIC_OR_SELF = CLINIC_ROLES | {Role.PATIENT}
# A patient's whole history of appointments and messages, far beyond any real one, yet bounded:
# an export leaves nothing out, and one request never reads without end.
HISTORY_LIMIT = 5000
PATIENT_REFERENCE = "Patient/"

# (appointment, tenant) -> the appointment as the API shows it (with its local times).
PresentAppointment = Callable[[Document, Document], Document]


class PatientRecords(TypedDict):
    """What the export holds besides the patient: the keyword arguments of
    `patient_export_bundle`."""

    appointments: list[Document]
    clinicians: list[Document]
    responses: list[Document]
    questionnaires: dict[str, Document]
    deliveries: list[Document]
    journeys: list[Document]


class InvalidExport(RuntimeError):
    """Our own mapping made a Bundle that is not valid FHIR: a bug of ours (a 500), never the
    caller's bad request. Named by JSON paths only, so no value of the record reaches a log."""


def searched_patient(raw: str | None) -> str:
    """The patient a search names: `Patient/<id>` or `<id>`. Without one a search would span the
    hospital, which FHIR reads here never do."""
    if not raw:
        raise invalid("patient", "is required: the patient's id (Patient/<id> or <id>)")
    return raw.removeprefix(PATIENT_REFERENCE)


class FhirService:
    def __init__(
        self,
        patients: PatientService,
        tenants: TenantService,
        appointments: AppointmentRepository,
        present_appointment: PresentAppointment,
        responses: ResponseRepository,
        deliveries: DeliveryRepository,
        care: CareRepository,
        questionnaires: QuestionnaireService,
        config: ConfigRepository,
    ) -> None:
        self._patients = patients
        self._tenants = tenants
        self._appointments = appointments
        self._present_appointment = present_appointment
        self._responses = responses
        self._deliveries = deliveries
        self._care = care
        self._questionnaires = questionnaires
        self._config = config

    # -- what the endpoint does ----------------------------------------------------------------

    def metadata(self, base_url: str, software_version: str) -> Resource:
        return capability_statement(base_url=base_url, software_version=software_version)

    # -- reads ---------------------------------------------------------------------------------

    def patient(self, principal: Principal, patient_id: str) -> Resource:
        patient = self._patients.require(principal, patient_id)
        tenant = self._tenants.require(tenant_of(principal))
        return patient_to_fhir(patient, mrn_system=mrn_system_of(tenant))

    def questionnaire(self, principal: Principal, questionnaire_id: str) -> Resource:
        definition = self._questionnaires.get(principal, questionnaire_id)
        tenant = self._tenants.require(tenant_of(principal))
        return questionnaire_to_fhir(definition, tenant["default_language"])

    def import_questionnaire(
        self, principal: Principal, questionnaire_id: str, resource: Document, if_match: str | None
    ) -> Resource:
        """A hospital's own FHIR Questionnaire, saved as the tenant's questionnaire under
        `questionnaire_id` (its texts' language is the resource's, else the tenant's), and
        answered as FHIR again. What our questionnaires cannot do is a 400 naming its path."""
        tenant = self._tenants.require(tenant_of(principal))
        definition = dict(
            questionnaire_from_fhir(resource, default_language=tenant["default_language"])
        )
        definition.pop("id", None)  # the path names it
        validate("questionnaire-put", definition)
        saved = self._questionnaires.put(principal, questionnaire_id, definition, if_match)
        return questionnaire_to_fhir(saved, tenant["default_language"])

    # -- searches by patient -------------------------------------------------------------------

    def appointments(self, principal: Principal, patient: str | None, base_url: str) -> Resource:
        patient_id = self._patients.require(principal, searched_patient(patient))["id"]
        tenant = self._tenants.require(tenant_of(principal))
        found = [appointment_to_fhir(a) for a in self._appointments_of(tenant, patient_id)]
        return self._searchset(found, base_url, f"Appointment?patient={patient_id}")

    def questionnaire_responses(
        self, principal: Principal, patient: str | None, base_url: str
    ) -> Resource:
        patient_id = self._patients.require(principal, searched_patient(patient))["id"]
        responses = self._responses_of(tenant_of(principal), patient_id)
        definitions = self._definitions(principal, (r["questionnaire"] for r in responses))
        found = [
            questionnaire_response_to_fhir(r, definitions.get(r["questionnaire"]))
            for r in responses
        ]
        return self._searchset(found, base_url, f"QuestionnaireResponse?patient={patient_id}")

    # -- the export ------------------------------------------------------------------------------

    def export(self, principal: Principal, patient_id: str | None, base_url: str) -> Resource:
        """Everything we hold on the patient as a FHIR `collection` Bundle, checked against the
        FHIR models before it leaves."""
        require_role(principal, CLINIC_OR_SELF)
        patient_id = patient_id or principal.patient_id
        if patient_id is None:
            raise NotFound("patient not found")
        # The record as staff read it: with its contacts' opt-outs, which become Flags.
        patient = self._patients.get(principal, patient_id)
        tenant = self._tenants.require(tenant_of(principal))
        bundle = patient_export_bundle(
            patient,
            mrn_system=mrn_system_of(tenant),
            base_url=base_url,
            timestamp=clock.iso(clock.now()),
            default_language=tenant["default_language"],
            **self._records(principal, tenant, patient_id),
        )
        try:
            validate_resource(bundle)
        except ValidationFailed as failure:
            # Paths only, and not chained: the models' messages may quote the record's values.
            paths = ", ".join(d.path for d in failure.details[:10])
            raise InvalidExport(f"a patient's export is not valid FHIR at {paths}") from None
        return bundle

    def _records(self, principal: Principal, tenant: Document, patient_id: str) -> PatientRecords:
        tenant_id = tenant["id"]
        appointments = self._appointments_of(tenant, patient_id)
        responses = self._responses_of(tenant_id, patient_id)
        journeys = self._care.for_patient(tenant_id, patient_id)
        # The questionnaires answered, and those the journeys ask: their items type the
        # answers, and the references to them resolve inside the bundle.
        asked = (
            step["questionnaire"]
            for journey in journeys
            for step in journey.get("steps", [])
            if step.get("questionnaire")
        )
        questionnaire_ids = [*(r["questionnaire"] for r in responses), *asked]
        # The clinicians the appointments name: each appointment refers to its Practitioner.
        named = {a["clinician"] for a in appointments}
        clinicians = [c for c in self._config.records(tenant_id, "CLINICIAN") if c["id"] in named]
        return {
            "appointments": appointments,
            "clinicians": clinicians,
            "responses": responses,
            "questionnaires": self._definitions(principal, questionnaire_ids),
            "deliveries": self._deliveries.for_patient(tenant_id, patient_id, HISTORY_LIMIT),
            "journeys": journeys,
        }

    # -- reading helpers -----------------------------------------------------------------------

    def _appointments_of(self, tenant: Document, patient_id: str) -> list[Document]:
        """Every appointment of the patient, past and upcoming, by start time."""
        found = self._appointments.for_patient(tenant["id"], patient_id, limit=HISTORY_LIMIT)
        return [self._present_appointment(a, tenant) for a in found]

    def _responses_of(self, tenant_id: str, patient_id: str) -> list[Document]:
        found = self._responses.for_patient(tenant_id, patient_id)
        return sorted(found, key=lambda r: (r.get("created_at", ""), r["id"]))

    def _definitions(self, principal: Principal, ids: Iterable[str]) -> dict[str, Document]:
        """The questionnaires of these ids that can be found. A response whose questionnaire
        cannot be is exported all the same, its answers typed by their JSON type."""
        definitions: dict[str, Document] = {}
        for questionnaire_id in dict.fromkeys(ids):
            try:
                definitions[questionnaire_id] = self._questionnaires.get(
                    principal, questionnaire_id
                )
            except NotFound:
                continue
        return definitions

    def _searchset(self, found: list[Resource], base_url: str, search: str) -> Resource:
        return searchset_bundle(
            found,
            base_url=base_url,
            self_url=f"{base_url.rstrip('/')}/{search}",
            timestamp=clock.iso(clock.now()),
        )
