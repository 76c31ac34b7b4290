"""The CapabilityStatement `GET /fhir/metadata` answers: what our FHIR endpoint does, no more."""

from __future__ import annotations

from chalicelib.domain.fhir.common import FHIR_VERSION, Resource

# When what the statement says last changed (FHIR's `date`): move it with the statement.
STATEMENT_DATE = "2026-12-07"
SEARCH_PARAMETER_BASE = "http://hl7.org/fhir/SearchParameter/"


def _by_patient(resource_type: str) -> Resource:
    """A type searched by its patient (`GET /fhir/<type>?patient=<id>`)."""
    return {
        "type": resource_type,
        "interaction": [{"code": "search-type"}],
        "searchParam": [
            {
                "name": "patient",
                "definition": f"{SEARCH_PARAMETER_BASE}{resource_type}-patient",
                "type": "reference",
                "documentation": "The patient's id: Patient/<id> or <id>",
            }
        ],
    }


def _read(resource_type: str) -> Resource:
    return {"type": resource_type, "interaction": [{"code": "read"}]}


def capability_statement(
    *,
    base_url: str | None = None,
    software_version: str | None = None,
    transaction: bool = True,
) -> Resource:
    """Read Patient and Questionnaire (and update Questionnaire), search Appointment and
    QuestionnaireResponse by patient, and a system `transaction` (`POST /fhir`) to import
    patients and appointments: only where the API takes it (`transaction=False` leaves it out),
    as the statement says no more than the endpoint does."""
    implementation: Resource = {"description": "CareLoop patient-relationship FHIR endpoint"}
    if base_url:
        implementation["url"] = base_url.rstrip("/")
    software: Resource = {"name": "CareLoop"}
    if software_version:
        software["version"] = software_version
    rest: Resource = {
        "mode": "server",
        "documentation": "Every request reads and writes the caller's own hospital only.",
        "security": {
            "description": "A bearer token from the hospital's CareLoop sign-in: staff reach "
            "their hospital's patients, a patient their own record only."
        },
        "resource": [
            _read("Patient"),
            _by_patient("Appointment"),
            # A hospital's own questionnaire is taken as a FHIR Questionnaire (PUT by id).
            {"type": "Questionnaire", "interaction": [{"code": "read"}, {"code": "update"}]},
            _by_patient("QuestionnaireResponse"),
        ],
    }
    if transaction:
        rest["interaction"] = [
            {
                "code": "transaction",
                "documentation": "POST /fhir: a transaction Bundle of Patient and "
                "Appointment entries (with Practitioner, Schedule, Slot), keyed by the "
                "hospital's MRN and appointment identifiers",
            }
        ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STATEMENT_DATE,
        "publisher": "CareLoop",
        "kind": "instance",
        "software": software,
        "implementation": implementation,
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [rest],
    }
