"""Our records as FHIR resources: every one valid against the fhir.resources models of our FHIR
version, with stable ids and references, and only what the records hold."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.appointments import NEXT_STATUSES
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.fhir import (
    FHIR_VERSION,
    appointment_to_fhir,
    capability_statement,
    care_journey_to_fhir,
    clinician_to_fhir,
    delivery_to_communication,
    patient_consents,
    patient_export_bundle,
    patient_flags,
    patient_to_fhir,
    questionnaire_response_to_fhir,
    validate_resource,
)
from chalicelib.domain.fhir.common import TIME_ZONE_EXTENSION
from chalicelib.domain.fhir.export import (
    COMMUNICATION_STATUS,
    JOURNEY_STATUS,
    RISK_EXTENSION,
    STEP_STATUS,
    recall_id,
)
from chalicelib.domain.questionnaire_starters import POST_OPERATIVE
from chalicelib.schemas import load_schema, validate

MRN_SYSTEM = "https://renji.example.org/fhir/mrn"
BASE = "https://api.careloop.example/fhir"

PATIENT: dict[str, Any] = {
    "id": "p-0123456789abcdef",
    "name": {"given": "Wei", "family": "Zhang", "preferred": "Ah Wei"},
    "birth_date": "1961-04-12",
    "sex": "male",
    "phone": "+8613800138000",
    "email": "zhang.wei@example.com",
    "language": "zh-CN",
    "time_zone": "Asia/Shanghai",
    "preferred_channels": ["sms", "email"],
    "consent": {
        "sms": {"status": "granted", "method": "paper_form", "at": "2026-11-20T02:00:00Z"},
        "email": {"status": "withdrawn", "method": "app", "at": "2026-11-21T08:30:00Z"},
    },
    "guardian": {
        "name": "Zhang Min",
        "relationship": "child",
        "phone": "+8613900139000",
        "preferred_channels": ["sms"],
        "consent": {"sms": {"status": "granted", "method": "verbal", "at": "2026-11-20T02:05:00Z"}},
    },
    "medical": {
        "conditions": ["type2-diabetes", "hypertension"],
        "allergies": ["penicillin"],
        "risk_flags": ["fall-risk"],
    },
    "departments": ["endocrinology"],
    "external_ids": {"mrn": "MRN-0012345"},
    "member_class": "vip",
    "opt_outs": [
        {
            "channel": "sms",
            "address": "+8613800138000",
            "whose": "patient",
            "opted_out": False,
            "at": "2026-11-25T01:00:00Z",
            "how": "sms_reply",
            "keyword": "STOP",
            "scope": "this_hospital",
            "lifted_at": "2026-11-26T01:00:00Z",
            "lifted_how": "sms_reply",
            "lifted_keyword": "START",
        },
        {
            "channel": "email",
            "address": "zhang.wei@example.com",
            "whose": "patient",
            "opted_out": True,
            "at": "2026-11-27T01:00:00Z",
            "how": "bounce",
        },
        {
            "channel": "sms",
            "address": "+8613900139000",
            "whose": "guardian",
            "opted_out": False,
        },
    ],
    "version": 3,
    "created_at": "2026-11-20T02:00:00Z",
    "updated_at": "2026-11-27T01:00:00Z",
}

APPOINTMENT: dict[str, Any] = {
    "id": "a-0123456789abcdef",
    "patient_id": "p-0123456789abcdef",
    "department": "cardiology",
    "clinician": "dr-li",
    "schedule_id": "dr-li-cardiology",
    "type": "follow_up",
    "location": "Building 2, Room 301",
    "start": "2027-03-01T01:00:00Z",
    "end": "2027-03-01T01:15:00Z",
    "status": "booked",
    "patient_response": "confirmed",
    "notes_for_patient": "请空腹 Please come fasting.",
    "journey_version": 1,
    "local": {
        "tenant": {
            "time_zone": "Asia/Shanghai",
            "start": "2027-03-01T09:00:00+08:00",
            "end": "2027-03-01T09:15:00+08:00",
        },
        "patient": {
            "time_zone": "Asia/Shanghai",
            "start": "2027-03-01T09:00:00+08:00",
            "end": "2027-03-01T09:15:00+08:00",
        },
    },
    "booked_by": "staff",
    "version": 2,
    "created_at": "2026-12-01T02:00:00Z",
    "updated_at": "2026-12-02T02:00:00Z",
}

# The visit that converted last year's recall.
LAST_VISIT: dict[str, Any] = {
    **APPOINTMENT,
    "id": "a-00000000000000aa",
    "type": "check_up",
    "start": "2025-01-20T01:00:00Z",
    "end": "2025-01-20T01:15:00Z",
    "status": "fulfilled",
    "created_at": "2025-01-12T02:00:00Z",
    "updated_at": "2025-01-20T02:00:00Z",
}

CLINICIAN: dict[str, Any] = {
    "id": "dr-li",
    "name": "李明 Dr. Li Ming",
    "department": "cardiology",
    "title": "Attending physician",
    "version": 1,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}

RESPONSE: dict[str, Any] = {
    "id": "qr-89abcdef01234567",
    "questionnaire": "post-operative",
    "patient_id": "p-0123456789abcdef",
    "status": "completed",
    "answers": {
        "pain": 8,
        "wound": "red_swollen",
        "fever": True,
        "fever_since": "2026-12-03",
        "mobility": "limited",
    },
    "risk": "urgent",
    "authored_at": "2026-12-04T02:00:00Z",
    "journey": {"id": "ac-0123456789abcdef", "step": "checkin-d1"},
    "created_at": "2026-12-04T01:00:00Z",
    "updated_at": "2026-12-04T02:00:00Z",
    "version": 2,
}

DELIVERIES: list[dict[str, Any]] = [
    {
        "key": "a-0123456789abcdef#v1#reminder-1440",
        "patient_id": "p-0123456789abcdef",
        "appointment_id": "a-0123456789abcdef",
        "step": "reminder-1440",
        "status": "delivered",
        "attempt": 1,
        "channel": "sms",
        "message_id": "m-1",
        "sent_at": "2027-02-28T02:00:00Z",
        "delivered_at": "2027-02-28T02:00:05Z",
        "created_at": "2027-02-28T02:00:00Z",
        "sms_segments": 1,
        "sms_encoding": "UCS-2",
    },
    {
        "key": "ac-0123456789abcdef#checkin-d1",
        "patient_id": "p-0123456789abcdef",
        "journey_id": "ac-0123456789abcdef",
        "step": "checkin-d1",
        "status": "bounced",
        "attempt": 1,
        "channel": "email",
        "sent_at": "2026-12-04T02:00:00Z",
        "bounced_at": "2026-12-04T02:01:00Z",
        "created_at": "2026-12-04T02:00:00Z",
    },
    {
        "key": "recall#annual-check#2027-01-10#invite",
        "patient_id": "p-0123456789abcdef",
        "recall_rule": "annual-check",
        "step": "recall-invite",
        "status": "skipped",
        "why": "already booked",
        "attempt": 1,
        "created_at": "2027-01-10T02:00:00Z",
    },
    {
        "key": "c-0123456789abcdef#p-0123456789abcdef#1",
        "patient_id": "p-0123456789abcdef",
        "campaign_id": "c-0123456789abcdef",
        "step": "flu-season",
        "status": "suppressed",
        "reasons": ["sms: no consent", "email: opted out"],
        "attempt": 1,
        "to_guardian": True,
        "created_at": "2026-12-05T02:00:00Z",
    },
]

AFTERCARE: dict[str, Any] = {
    "id": "ac-0123456789abcdef",
    "kind": "aftercare",
    "patient_id": "p-0123456789abcdef",
    "care_plan": "cardiac-recovery",
    "plan": {"name": "Cardiac procedure recovery"},
    "department": "cardiology",
    "status": "running",
    "started_at": "2026-12-03T02:00:00Z",
    "steps": [
        {
            "id": "checkin-d1",
            "kind": "checkin",
            "questionnaire": "post-operative",
            "at": "2026-12-04T02:00:00Z",
            "status": "answered",
            "response_id": "qr-89abcdef01234567",
            "risk": "urgent",
        },
        {
            "id": "education-d2-1",
            "kind": "education",
            "at": "2026-12-05T02:00:00Z",
            "status": "done",
        },
        {
            "id": "recheck-d30",
            "kind": "recheck",
            "at": "2027-01-02T02:00:00Z",
            "status": "planned",
        },
    ],
    "version": 4,
    "updated_at": "2026-12-05T02:00:00Z",
}

RECALL: dict[str, Any] = {
    "id": "annual-check",
    "kind": "recall",
    "rule_id": "annual-check",
    "patient_id": "p-0123456789abcdef",
    "status": "invited",
    "due_date": "2027-01-10",
    "unanswered_cycles": 1,
    "cycles": [
        {
            "due_date": "2025-01-10",
            "outcome": "converted",
            "settled_at": "2025-01-12T02:00:00Z",
            "appointment_id": "a-00000000000000aa",
        },
        {"due_date": "2026-01-10", "outcome": "unconverted", "settled_at": "2026-02-01T02:00:00Z"},
    ],
    "version": 7,
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2027-01-10T02:00:00Z",
}


def test_the_examples_are_our_records() -> None:
    """The fixtures are records as our schemas describe them, not inventions."""
    validate("patient", PATIENT)
    validate("appointment", APPOINTMENT)
    validate("appointment", LAST_VISIT)
    validate("clinician", CLINICIAN)
    validate("questionnaire-response", RESPONSE)
    for delivery in DELIVERIES:
        validate("delivery", delivery)
    validate("care-journey-list", {"items": [AFTERCARE, RECALL]})


def test_fhir_version_is_the_models_version() -> None:
    from fhir.resources.R4B import __fhir_version__

    assert __fhir_version__ == FHIR_VERSION
    assert capability_statement()["fhirVersion"] == FHIR_VERSION


def test_importing_the_mappers_loads_no_models() -> None:
    """The models cost a cold start; only a check may load them."""
    code = (
        "import sys, chalicelib.domain.fhir, chalicelib.domain.fhir.export, "
        "chalicelib.domain.fhir.imports, chalicelib.domain.fhir.questionnaires, "
        "chalicelib.domain.fhir.validation; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fhir', 'fhir_core', "
        "'pydantic', 'pydantic_core')))"
    )
    root = Path(__file__).resolve().parents[2]
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    ).stdout
    assert loaded.strip() == "[]"


def test_patient() -> None:
    resource = patient_to_fhir(PATIENT, mrn_system=MRN_SYSTEM)
    validate_resource(resource)
    assert resource["id"] == PATIENT["id"]
    assert resource["meta"] == {"versionId": "3", "lastUpdated": "2026-11-27T01:00:00Z"}
    assert resource["identifier"][0]["system"] == MRN_SYSTEM
    assert resource["identifier"][0]["value"] == "MRN-0012345"
    assert resource["name"] == [
        {"use": "official", "family": "Zhang", "given": ["Wei"]},
        {"use": "usual", "given": ["Ah Wei"]},
    ]
    assert resource["telecom"] == [
        {"system": "phone", "value": "+8613800138000", "use": "mobile", "rank": 1},
        {"system": "email", "value": "zhang.wei@example.com", "rank": 2},
    ]
    assert resource["gender"] == "male"
    assert resource["birthDate"] == "1961-04-12"
    assert resource["communication"][0]["language"]["coding"][0]["code"] == "zh-CN"
    assert {"url": TIME_ZONE_EXTENSION, "valueCode": "Asia/Shanghai"} in resource["extension"]
    contact = resource["contact"][0]
    assert contact["name"] == {"text": "Zhang Min"}
    assert contact["relationship"][0]["coding"][0]["code"] == "CHILD"
    # No FHIR home and no need: member class, departments, condition tags stay out.
    assert "vip" not in str(resource) and "endocrinology" not in str(resource)


def test_a_minimal_patient() -> None:
    minimal = {
        "id": "p-1",
        "name": {"given": "伟"},
        "language": "zh-CN",
        "time_zone": "Asia/Shanghai",
        "departments": [],
        "version": 1,
        "created_at": "2026-11-20T02:00:00Z",
        "updated_at": "2026-11-20T02:00:00Z",
    }
    validate("patient", minimal)
    resource = patient_to_fhir(minimal, mrn_system=MRN_SYSTEM)
    validate_resource(resource)
    assert "identifier" not in resource and "telecom" not in resource


def test_consents_permit_or_deny_per_channel() -> None:
    consents = patient_consents(PATIENT)
    for consent in consents:
        validate_resource(consent)
    by_channel = {
        (c["performer"][0].get("display", "patient"), c["extension"][0]["valueCode"]): c
        for c in consents
    }
    assert set(by_channel) == {("patient", "email"), ("patient", "sms"), ("Zhang Min", "sms")}
    assert by_channel["patient", "sms"]["provision"] == {"type": "permit"}
    assert by_channel["patient", "email"]["provision"] == {"type": "deny"}
    assert by_channel["patient", "email"]["dateTime"] == "2026-11-21T08:30:00Z"
    assert by_channel["patient", "sms"]["patient"] == {"reference": f"Patient/{PATIENT['id']}"}
    assert len({c["id"] for c in consents}) == 3


def test_flags_for_risks_allergies_and_opt_outs() -> None:
    flags = patient_flags(PATIENT)
    for flag in flags:
        validate_resource(flag)
    texts = {f["code"]["text"]: f for f in flags}
    assert set(texts) == {
        "fall-risk",
        "Allergy: penicillin",
        "No SMS to +8613800138000 (texted STOP)",
        "No email to zhang.wei@example.com (bounced)",
    }
    lifted = texts["No SMS to +8613800138000 (texted STOP)"]
    assert lifted["status"] == "inactive"
    assert lifted["period"] == {"start": "2026-11-25T01:00:00Z", "end": "2026-11-26T01:00:00Z"}
    assert texts["No email to zhang.wei@example.com (bounced)"]["status"] == "active"
    assert all(f["subject"] == {"reference": f"Patient/{PATIENT['id']}"} for f in flags)


@pytest.mark.parametrize("status", sorted(NEXT_STATUSES))
def test_every_appointment_status_maps(status: str) -> None:
    appointment = {**APPOINTMENT, "status": status}
    if status == "cancelled":
        appointment["cancelled_by"] = "patient"
    resource = appointment_to_fhir(appointment)
    validate_resource(resource)
    assert resource["status"] == status  # ours are FHIR's codes
    if status == "cancelled":
        assert resource["cancelationReason"]["coding"][0]["code"] == "pat"


def test_appointment() -> None:
    resource = appointment_to_fhir(APPOINTMENT)
    validate_resource(resource)
    actors = [p["actor"] for p in resource["participant"]]
    assert actors == [
        {"reference": "Patient/p-0123456789abcdef"},
        {"reference": "Practitioner/dr-li"},
        {"type": "Location", "display": "Building 2, Room 301"},
    ]
    assert resource["participant"][0]["status"] == "accepted"  # the patient confirmed
    assert resource["start"] == "2027-03-01T01:00:00Z"
    assert resource["extension"] == [{"url": TIME_ZONE_EXTENSION, "valueCode": "Asia/Shanghai"}]
    codes = {c["code"] for c in resource["appointmentType"]["coding"]}
    assert codes == {"follow_up", "FOLLOWUP"}
    assert resource["patientInstruction"] == APPOINTMENT["notes_for_patient"]


def test_every_patient_response_maps() -> None:
    responses = load_schema("appointment")["properties"]["patient_response"]["enum"]
    for response in responses:
        resource = appointment_to_fhir({**APPOINTMENT, "patient_response": response})
        validate_resource(resource)


def test_clinician() -> None:
    resource = clinician_to_fhir(CLINICIAN)
    validate_resource(resource)
    assert resource["name"] == [{"text": "李明 Dr. Li Ming"}]


def test_questionnaire_response_is_typed_by_its_questionnaire() -> None:
    resource = questionnaire_response_to_fhir(RESPONSE, POST_OPERATIVE)
    validate_resource(resource)
    answers = {item["linkId"]: item["answer"][0] for item in resource["item"]}
    assert [item["linkId"] for item in resource["item"]] == [
        "pain",
        "wound",
        "fever",
        "fever_since",
        "mobility",
    ]
    assert answers["pain"] == {"valueInteger": 8}
    assert answers["wound"] == {"valueCoding": {"code": "red_swollen"}}
    assert answers["fever"] == {"valueBoolean": True}
    assert answers["fever_since"] == {"valueDate": "2026-12-03"}
    assert resource["extension"] == [{"url": RISK_EXTENSION, "valueCode": "urgent"}]
    assert resource["basedOn"] == [{"reference": "CarePlan/ac-0123456789abcdef"}]
    assert resource["questionnaire"] == "Questionnaire/post-operative"
    assert resource["subject"] == {"reference": "Patient/p-0123456789abcdef"}


def test_an_open_response_without_its_questionnaire() -> None:
    response = {**RESPONSE, "status": "in-progress", "answers": {"pain": 2, "note": "ok"}}
    del response["risk"], response["authored_at"]
    resource = questionnaire_response_to_fhir(response)
    validate_resource(resource)
    assert resource["status"] == "in-progress"
    assert resource["item"][1] == {"linkId": "pain", "answer": [{"valueInteger": 2}]}


@pytest.mark.parametrize("delivery", DELIVERIES, ids=lambda d: d["status"])
def test_messages_as_communications(delivery: dict[str, Any]) -> None:
    resource = delivery_to_communication(delivery)
    validate_resource(resource)
    assert resource["status"] == COMMUNICATION_STATUS[delivery["status"]]
    assert resource["subject"] == {"reference": "Patient/p-0123456789abcdef"}
    assert delivery_to_communication(copy.deepcopy(delivery))["id"] == resource["id"]


def test_message_links_and_reasons() -> None:
    reminder, bounced, skipped, suppressed = (delivery_to_communication(d) for d in DELIVERIES)
    assert reminder["about"] == [{"reference": "Appointment/a-0123456789abcdef"}]
    assert reminder["received"] == "2027-02-28T02:00:05Z"
    assert bounced["basedOn"] == [{"reference": "CarePlan/ac-0123456789abcdef"}]
    assert bounced["statusReason"] == {"text": "bounced"} and "received" not in bounced
    assert skipped["basedOn"] == [
        {"reference": f"CarePlan/{recall_id('p-0123456789abcdef', 'annual-check')}"}
    ]
    assert skipped["statusReason"] == {"text": "already booked"}
    assert suppressed["recipient"][0]["type"] == "RelatedPerson"
    assert len({r["id"] for r in (reminder, bounced, skipped, suppressed)}) == 4


def test_every_delivery_status_maps() -> None:
    statuses = load_schema("delivery")["properties"]["status"]["enum"]
    assert set(statuses) == set(COMMUNICATION_STATUS)


def test_aftercare_journey_as_care_plan() -> None:
    resource = care_journey_to_fhir(AFTERCARE)
    validate_resource(resource)
    assert resource["id"] == "ac-0123456789abcdef"
    assert resource["status"] == "active" and resource["intent"] == "plan"
    assert resource["title"] == "Cardiac procedure recovery"
    checkin, education, recheck = resource["activity"]
    assert checkin["detail"]["status"] == "completed"
    assert checkin["detail"]["instantiatesCanonical"] == ["Questionnaire/post-operative"]
    assert checkin["outcomeReference"] == [
        {"reference": "QuestionnaireResponse/qr-89abcdef01234567"}
    ]
    assert education["detail"]["status"] == "completed"
    assert recheck["detail"]["status"] == "scheduled"


def test_recall_as_care_plan() -> None:
    resource = care_journey_to_fhir(RECALL)
    validate_resource(resource)
    assert resource["id"] == recall_id("p-0123456789abcdef", "annual-check")
    assert [a["detail"]["status"] for a in resource["activity"]] == [
        "completed",
        "stopped",
        "in-progress",
    ]
    assert resource["activity"][0]["outcomeReference"] == [
        {"reference": "Appointment/a-00000000000000aa"}
    ]
    assert resource["activity"][2]["detail"]["scheduledPeriod"] == {"start": "2027-01-10"}


def test_every_journey_and_step_status_maps() -> None:
    item = load_schema("care-journey-list")["properties"]["items"]["items"]
    assert set(item["properties"]["status"]["enum"]) == set(JOURNEY_STATUS)
    steps = item["properties"]["steps"]["items"]["properties"]["status"]["enum"]
    assert set(steps) == set(STEP_STATUS)


def _export() -> dict[str, Any]:
    return patient_export_bundle(
        PATIENT,
        mrn_system=MRN_SYSTEM,
        base_url=BASE + "/",
        timestamp="2026-12-07T03:00:00Z",
        appointments=[APPOINTMENT, LAST_VISIT],
        clinicians=[CLINICIAN],
        responses=[RESPONSE],
        questionnaires={"post-operative": POST_OPERATIVE},
        deliveries=DELIVERIES,
        journeys=[AFTERCARE, RECALL],
    )


def test_patient_export_bundle() -> None:
    bundle = _export()
    validate_resource(bundle)
    assert bundle["type"] == "collection"
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert full_urls[0] == f"{BASE}/Patient/{PATIENT['id']}"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Communication") == 4 and kinds.count("CarePlan") == 2
    assert {
        "Patient",
        "Consent",
        "Flag",
        "Practitioner",
        "Appointment",
        "Questionnaire",
        "QuestionnaireResponse",
    } <= set(kinds)
    # Every reference to one of ours resolves within the bundle.
    targets = {url.removeprefix(BASE + "/") for url in full_urls}
    references = _references(bundle)
    assert references and references <= targets


def _references(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["reference"]} if isinstance(node.get("reference"), str) else set()
        for value in node.values():
            found |= _references(value)
        return found
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node)) if node else set()
    return set()


def test_the_same_records_export_the_same_bundle() -> None:
    assert _export() == _export()


def test_capability_statement() -> None:
    statement = capability_statement(base_url=BASE, software_version="1.0")
    validate_resource(statement)
    assert statement["format"] == ["json"]
    rest = statement["rest"][0]
    interactions = {r["type"]: [i["code"] for i in r["interaction"]] for r in rest["resource"]}
    assert interactions == {
        "Patient": ["read"],
        "Appointment": ["search-type"],
        "Questionnaire": ["read", "update"],
        "QuestionnaireResponse": ["search-type"],
    }
    searches = {r["type"]: [p["name"] for p in r.get("searchParam", [])] for r in rest["resource"]}
    assert searches["Appointment"] == ["patient"] == searches["QuestionnaireResponse"]
    assert [i["code"] for i in rest["interaction"]] == ["transaction"]


def test_validation_names_every_failing_field() -> None:
    broken = patient_to_fhir(PATIENT, mrn_system=MRN_SYSTEM)
    broken["birthDate"] = "12/04/1961"
    broken["telecom"][0]["value"] = ""
    broken["colour"] = "blue"
    with pytest.raises(ValidationFailed) as error:
        validate_resource(broken)
    assert sorted(d.path for d in error.value.details) == [
        "$.birthDate",
        "$.colour",
        "$.telecom[0].value",
    ]


def test_validation_of_unknown_and_nested_resource_types() -> None:
    with pytest.raises(ValidationFailed) as error:
        validate_resource({"resourceType": "HumanName"})
    assert [d.path for d in error.value.details] == ["$.resourceType"]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Nonsense"}},
            {"resource": {"resourceType": "Flag"}},
        ],
    }
    with pytest.raises(ValidationFailed) as error:
        validate_resource(bundle)
    assert [d.path for d in error.value.details] == ["$.entry[0].resource.resourceType"]
    del bundle["entry"][0]
    with pytest.raises(ValidationFailed) as error:
        validate_resource(bundle)
    assert sorted(d.path for d in error.value.details) == [
        "$.entry[0].resource.code",
        "$.entry[0].resource.subject",
    ]
    with pytest.raises(ValidationFailed):
        validate_resource(["not", "a", "resource"])


def test_validation_names_missing_elements_beside_invalid_ones() -> None:
    """The models check required elements only once the fields pass; both come in one answer."""
    broken = appointment_to_fhir(APPOINTMENT)
    del broken["status"], broken["participant"]
    broken["start"] = "1 March 2027"
    with pytest.raises(ValidationFailed) as error:
        validate_resource(broken)
    assert sorted(d.path for d in error.value.details) == [
        "$.participant",
        "$.start",
        "$.status",
    ]
