"""FHIR views of our records, and our records from FHIR: pure mapping, no I/O.

One FHIR version throughout (`FHIR_VERSION`, R4B = 4.3.0, wire-compatible with R4 for every
resource used here). The models of `fhir.resources` that check resources are imported only
when a check runs (`validation`; pydantic costs a cold start about half a second): importing
this package or any mapping module never loads them.

- `export`: patient, appointments, responses, messages, consent, flags, journeys -> resources, a
  patient's export as a `collection` Bundle, and a search's answer as a `searchset` Bundle.
- `questionnaires`: our questionnaires to FHIR Questionnaires and back.
- `imports`: a hospital's transaction Bundle or bulk NDJSON lines -> our create documents.
- `capability`: the CapabilityStatement of `GET /fhir/metadata`.
- `validation`: a resource checked against the FHIR models, failures named by JSON path.
"""

from __future__ import annotations

from chalicelib.domain.fhir.capability import capability_statement
from chalicelib.domain.fhir.common import FHIR_VERSION, Resource, tenant_mrn_system
from chalicelib.domain.fhir.export import (
    appointment_to_fhir,
    care_journey_to_fhir,
    clinician_to_fhir,
    delivery_to_communication,
    patient_consents,
    patient_export_bundle,
    patient_flags,
    patient_to_fhir,
    questionnaire_response_to_fhir,
    searchset_bundle,
)
from chalicelib.domain.fhir.imports import ParsedBundle, parse_ndjson_line, parse_transaction_bundle
from chalicelib.domain.fhir.questionnaires import (
    QuestionnaireDefinition,
    questionnaire_from_fhir,
    questionnaire_to_fhir,
)
from chalicelib.domain.fhir.validation import validate_resource

__all__ = [
    "FHIR_VERSION",
    "ParsedBundle",
    "QuestionnaireDefinition",
    "Resource",
    "appointment_to_fhir",
    "capability_statement",
    "care_journey_to_fhir",
    "clinician_to_fhir",
    "delivery_to_communication",
    "parse_ndjson_line",
    "parse_transaction_bundle",
    "patient_consents",
    "patient_export_bundle",
    "patient_flags",
    "patient_to_fhir",
    "questionnaire_from_fhir",
    "questionnaire_response_to_fhir",
    "questionnaire_to_fhir",
    "searchset_bundle",
    "tenant_mrn_system",
    "validate_resource",
]
