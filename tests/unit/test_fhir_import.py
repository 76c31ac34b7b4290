"""A hospital's FHIR data as our documents: transaction Bundles and bulk NDJSON lines, checked by
the FHIR models, mapped to what our services create, every failing entry and field named."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.fhir import parse_ndjson_line, parse_transaction_bundle, patient_to_fhir
from chalicelib.domain.fhir.common import TIME_ZONE_EXTENSION
from chalicelib.schemas import validate

MRN_SYSTEM = "https://renji.example.org/fhir/mrn"
APPOINTMENT_SYSTEM = "https://renji.example.org/fhir/appointment-id"
PATIENT_URL = "urn:uuid:6f1c2a52-3d0e-4c51-9a5a-0b1a8f0d1e01"
PRACTITIONER_URL = "urn:uuid:6f1c2a52-3d0e-4c51-9a5a-0b1a8f0d1e02"
SCHEDULE_URL = "urn:uuid:6f1c2a52-3d0e-4c51-9a5a-0b1a8f0d1e03"
SLOT_URL = "urn:uuid:6f1c2a52-3d0e-4c51-9a5a-0b1a8f0d1e04"


def paths(error: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [d.path for d in error.value.details]


PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "extension": [{"url": TIME_ZONE_EXTENSION, "valueCode": "Asia/Shanghai"}],
    "identifier": [
        {"system": "urn:oid:2.16.156.10011.1.3", "value": "310101196104120011"},
        {
            "use": "usual",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ]
            },
            "system": MRN_SYSTEM,
            "value": "MRN-0012345",
        },
    ],
    "active": True,
    "name": [
        {"use": "nickname", "given": ["Ah Wei"]},
        {"use": "official", "family": "Zhang", "given": ["Wei"]},
    ],
    "telecom": [
        {"system": "phone", "value": "021 6437 0045", "use": "home"},
        {"system": "phone", "value": "138 0013 8000", "use": "mobile"},
        {"system": "email", "value": "Zhang.Wei@Example.com"},
    ],
    "gender": "male",
    "birthDate": "1961-04-12",
    "contact": [
        {
            "relationship": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                            "code": "DAU",
                        }
                    ]
                }
            ],
            "name": {"family": "Zhang", "given": ["Min"]},
            "telecom": [{"system": "phone", "value": "139 0013 9000", "use": "mobile"}],
        }
    ],
    "communication": [
        {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}},
        {
            "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "zh-cn"}]},
            "preferred": True,
        },
    ],
}

PRACTITIONER: dict[str, Any] = {
    "resourceType": "Practitioner",
    "identifier": [{"system": "https://renji.example.org/fhir/staff-id", "value": "D-1024"}],
    "name": [{"family": "Li", "given": ["Ming"], "prefix": ["Dr."]}],
}

SCHEDULE: dict[str, Any] = {
    "resourceType": "Schedule",
    "active": True,
    "serviceType": [{"text": "Cardiology outpatients"}],
    "actor": [{"reference": PRACTITIONER_URL}, {"display": "Building 2, Room 301"}],
}

SLOT: dict[str, Any] = {
    "resourceType": "Slot",
    "schedule": {"reference": SCHEDULE_URL},
    "status": "busy",
    "start": "2027-03-01T09:00:00+08:00",
    "end": "2027-03-01T09:15:00+08:00",
}

APPOINTMENT: dict[str, Any] = {
    "resourceType": "Appointment",
    "identifier": [{"system": APPOINTMENT_SYSTEM, "value": "APT-778899"}],
    "status": "booked",
    "serviceType": [
        {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "394579002", "display": "Cardiology"}
            ]
        }
    ],
    "appointmentType": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "FOLLOWUP"}],
        "text": "Follow-up visit",
    },
    "start": "2027-03-01T09:00:00+08:00",
    "end": "2027-03-01T09:15:00+08:00",
    "slot": [{"reference": SLOT_URL}],
    "patientInstruction": "请空腹 Please come fasting.",
    "participant": [
        {"actor": {"reference": PATIENT_URL}, "status": "accepted"},
        {"actor": {"reference": PRACTITIONER_URL}, "status": "accepted"},
        {
            "actor": {"reference": "Location/room-301", "display": "Building 2, Room 301"},
            "status": "accepted",
        },
    ],
}

# Booked before, for a patient the hospital sends by MRN only; cancelled, so no times needed.
CANCELLED_BY_MRN: dict[str, Any] = {
    "resourceType": "Appointment",
    "identifier": [{"system": APPOINTMENT_SYSTEM, "value": "APT-100200"}],
    "status": "cancelled",
    "participant": [
        {
            "actor": {"reference": f"Patient?identifier={MRN_SYSTEM}|MRN-0099999"},
            "status": "declined",
        }
    ],
}

# For a patient imported earlier, named by the hospital server's own id.
CHECKED_IN_BY_ID: dict[str, Any] = {
    "resourceType": "Appointment",
    "identifier": [
        {"use": "secondary", "system": "urn:other", "value": "X1"},
        {"use": "official", "system": APPOINTMENT_SYSTEM, "value": "APT-100300"},
    ],
    "status": "checked-in",
    "start": "2026-12-07T02:00:00Z",
    "end": "2026-12-07T02:20:00Z",
    "participant": [{"actor": {"reference": "Patient/48213"}, "status": "accepted"}],
}


def entry(full_url: str | None, resource: dict[str, Any], method: str = "POST") -> dict[str, Any]:
    built: dict[str, Any] = {
        "resource": copy.deepcopy(resource),
        "request": {"method": method, "url": resource["resourceType"]},
    }
    if full_url:
        built["fullUrl"] = full_url
    return built


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


BUNDLE = transaction(
    entry(PATIENT_URL, PATIENT),
    entry(PRACTITIONER_URL, PRACTITIONER),
    entry(SCHEDULE_URL, SCHEDULE),
    entry(SLOT_URL, SLOT),
    entry(None, APPOINTMENT, "PUT"),
    entry(None, CANCELLED_BY_MRN, "PUT"),
    entry(None, CHECKED_IN_BY_ID, "PUT"),
)


def test_a_transaction_bundle_becomes_our_documents() -> None:
    parsed = parse_transaction_bundle(BUNDLE, MRN_SYSTEM)
    [patient] = parsed["patients"]
    assert patient["source"] == "$.entry[0]" and patient["mrn"] == "MRN-0012345"
    validate("patient-create", patient["create"])
    assert patient["create"] == {
        "name": {"given": "Wei", "family": "Zhang", "preferred": "Ah Wei"},
        "external_ids": {"mrn": "MRN-0012345"},
        "birth_date": "1961-04-12",
        "sex": "male",
        "language": "zh-CN",
        "time_zone": "Asia/Shanghai",
        "phone": "138 0013 8000",  # the mobile; normalised by the service in the tenant's country
        "email": "zhang.wei@example.com",
        "guardian": {"name": "Zhang Min", "relationship": "child", "phone": "139 0013 9000"},
    }
    booked, cancelled, checked_in = parsed["appointments"]
    assert booked == {
        "source": "$.entry[4]",
        "external_id": {"system": APPOINTMENT_SYSTEM, "value": "APT-778899"},
        "status": "booked",
        "patient": {"mrn": "MRN-0012345"},
        "start": "2027-03-01T01:00:00Z",
        "end": "2027-03-01T01:15:00Z",
        "practitioner": PRACTITIONER_URL,
        "location": "Building 2, Room 301",
        "slot": SLOT_URL,
        "type": "follow_up",
        "appointment_type_text": "Follow-up visit",
        "service_type_text": "Cardiology",
        "department_hints": ["394579002", "Cardiology"],
        "notes_for_patient": "请空腹 Please come fasting.",
    }
    assert cancelled["patient"] == {"mrn": "MRN-0099999"}
    assert cancelled["status"] == "cancelled" and "start" not in cancelled
    assert checked_in["patient"] == {"fhir_id": "48213"}
    assert checked_in["status"] == "arrived"
    assert checked_in["external_id"]["value"] == "APT-100300"  # the official one
    assert parsed["practitioners"] == [
        {
            "source": "$.entry[1]",
            "ref": PRACTITIONER_URL,
            "identifiers": [
                {"system": "https://renji.example.org/fhir/staff-id", "value": "D-1024"}
            ],
            "name": "Ming Li",
        }
    ]
    assert parsed["schedules"] == [
        {
            "source": "$.entry[2]",
            "ref": SCHEDULE_URL,
            "active": True,
            "actors": [PRACTITIONER_URL, "Building 2, Room 301"],
            "service_type_text": "Cardiology outpatients",
        }
    ]
    assert parsed["slots"] == [
        {
            "source": "$.entry[3]",
            "ref": SLOT_URL,
            "schedule": SCHEDULE_URL,
            "status": "busy",
            "start": "2027-03-01T01:00:00Z",
            "end": "2027-03-01T01:15:00Z",
        }
    ]


def test_the_same_bundle_gives_the_same_documents() -> None:
    first = parse_transaction_bundle(BUNDLE, MRN_SYSTEM)
    resent = json.loads(json.dumps(BUNDLE))
    assert parse_transaction_bundle(resent, MRN_SYSTEM) == first
    assert parse_transaction_bundle(BUNDLE, MRN_SYSTEM) == first


def test_references_resolve_against_absolute_full_urls() -> None:
    base = "https://his.renji.example.org/fhir"
    appointment = copy.deepcopy(APPOINTMENT)
    appointment["participant"][0]["actor"] = {"reference": "Patient/48213"}
    appointment["participant"][1]["actor"] = {"reference": f"{base}/Practitioner/d1024"}
    del appointment["slot"]
    bundle = transaction(
        entry(f"{base}/Patient/48213", {**PATIENT, "id": "48213"}, "PUT"),
        entry(f"{base}/Practitioner/d1024", {**PRACTITIONER, "id": "d1024"}, "PUT"),
        entry(None, appointment, "PUT"),
    )
    parsed = parse_transaction_bundle(bundle, MRN_SYSTEM)
    assert parsed["patients"][0]["create"]["external_ids"] == {
        "mrn": "MRN-0012345",
        "fhir_id": "48213",
    }
    [booked] = parsed["appointments"]
    assert booked["patient"] == {"mrn": "MRN-0012345"}  # in the bundle: by its MRN
    assert booked["practitioner"] == f"{base}/Practitioner/d1024"


def test_phones_in_e164_with_the_tenants_country() -> None:
    parsed = parse_transaction_bundle(BUNDLE, MRN_SYSTEM, phone_region="CN")
    create = parsed["patients"][0]["create"]
    assert create["phone"] == "+8613800138000"
    assert create["guardian"]["phone"] == "+8613900139000"
    broken = copy.deepcopy(BUNDLE)
    broken["entry"][0]["resource"]["telecom"][1]["value"] = "12345"
    with pytest.raises(ValidationFailed) as error:
        parse_transaction_bundle(broken, MRN_SYSTEM, phone_region="CN")
    assert paths(error) == ["$.entry[0].resource.telecom[1].value"]


def test_our_own_patient_export_imports_back() -> None:
    ours = {
        "id": "p-0123456789abcdef",
        "name": {"given": "伟", "family": "张", "preferred": "阿伟"},
        "birth_date": "2015-04-12",
        "sex": "female",
        "phone": "+8613800138000",
        "email": "zhang.wei@example.com",
        "language": "zh-TW",
        "time_zone": "Asia/Taipei",
        "guardian": {"name": "张敏", "relationship": "parent", "email": "min@example.com"},
        "external_ids": {"mrn": "MRN-0012345"},
    }
    exported = patient_to_fhir({**ours, "departments": [], "version": 1}, mrn_system=MRN_SYSTEM)
    parsed = parse_transaction_bundle(transaction(entry(None, exported, "PUT")), MRN_SYSTEM)
    create = parsed["patients"][0]["create"]
    assert create == {
        **{k: v for k, v in ours.items() if k != "id"},
        "external_ids": {"mrn": "MRN-0012345", "fhir_id": "p-0123456789abcdef"},
    }


def test_every_failing_entry_and_field_is_named() -> None:
    partial_date = copy.deepcopy(PATIENT)
    partial_date["birthDate"] = "1961"
    partial_date["gender"] = "robot"
    partial_date["identifier"] = partial_date["identifier"][:1]  # no MRN
    partial_date["telecom"][2]["value"] = "not an address"
    bad_format = copy.deepcopy(PATIENT)
    bad_format["birthDate"] = "12/04/1961"
    deceased = {**copy.deepcopy(PATIENT), "deceasedBoolean": True}
    deceased["communication"] = [{"language": {"text": "French"}}]
    waitlisted = {**copy.deepcopy(APPOINTMENT), "status": "waitlist"}
    del waitlisted["identifier"]
    dangling = copy.deepcopy(APPOINTMENT)
    dangling["participant"][0]["actor"]["reference"] = "urn:uuid:0000"
    dangling["identifier"][0]["value"] = "APT-2"
    no_participants = copy.deepcopy(APPOINTMENT)
    del no_participants["participant"], no_participants["start"]
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Blood pressure"},
    }
    bundle = transaction(
        entry(PATIENT_URL, partial_date),
        entry(None, bad_format),
        entry(None, observation),
        entry(None, waitlisted),
        entry(None, dangling),
        {**entry(None, CANCELLED_BY_MRN), "request": {"method": "DELETE", "url": "Appointment"}},
        entry(None, no_participants),
        entry(None, deceased),
    )
    with pytest.raises(ValidationFailed) as error:
        parse_transaction_bundle(bundle, MRN_SYSTEM)
    assert paths(error) == [
        "$.entry[1].resource.birthDate",
        "$.entry[2].resource.resourceType",
        "$.entry[5].request.method",
        "$.entry[6].resource.participant",  # not FHIR: its other gaps are looked at once it is
        "$.entry[0].resource.identifier",
        "$.entry[7].resource.deceasedBoolean",
        "$.entry[7].resource.communication[0].language",
        "$.entry[3].resource.identifier",
        "$.entry[3].resource.status",
        "$.entry[4].resource.participant[0].actor.reference",
        "$.entry[4].resource.participant[1].actor.reference",  # its practitioner is not sent
        "$.entry[4].resource.slot[0].reference",  # nor its slot
    ]
    # The MRN is missing: the rest of that patient is still looked at once it has one.
    with_mrn = copy.deepcopy(bundle)
    with_mrn["entry"][0]["resource"]["identifier"] = PATIENT["identifier"]
    with pytest.raises(ValidationFailed) as error:
        parse_transaction_bundle(with_mrn, MRN_SYSTEM)
    assert [p for p in paths(error) if p.startswith("$.entry[0]")] == [
        "$.entry[0].resource.birthDate",
        "$.entry[0].resource.gender",
        "$.entry[0].resource.telecom[2].value",
    ]


def test_the_bundle_itself() -> None:
    with pytest.raises(ValidationFailed) as error:
        parse_transaction_bundle({**BUNDLE, "type": "batch"}, MRN_SYSTEM)
    assert paths(error) == ["$.type"]
    with pytest.raises(ValidationFailed) as error:
        parse_transaction_bundle(PATIENT, MRN_SYSTEM)
    assert paths(error) == ["$.resourceType"]
    no_request = transaction(entry(None, PATIENT))
    del no_request["entry"][0]["request"]
    no_request["entry"].append({"fullUrl": "urn:uuid:1", "request": {"method": "POST", "url": "X"}})
    with pytest.raises(ValidationFailed) as error:
        parse_transaction_bundle(no_request, MRN_SYSTEM)
    assert paths(error) == ["$.entry[0].request", "$.entry[1].resource"]
    assert parse_transaction_bundle(transaction(), MRN_SYSTEM)["patients"] == []


def test_one_patient_per_mrn_and_one_appointment_per_identifier() -> None:
    bundle = transaction(
        entry(PATIENT_URL, PATIENT),
        entry("urn:uuid:other", PATIENT),
        entry(None, CHECKED_IN_BY_ID),
        entry(None, CHECKED_IN_BY_ID),
    )
    with pytest.raises(ValidationFailed) as error:
        parse_transaction_bundle(bundle, MRN_SYSTEM)
    assert paths(error) == ["$.entry[1].resource.identifier", "$.entry[3].resource.identifier"]
    assert "the same MRN as $.entry[0]" in str(error.value)


def test_a_conditional_reference_must_use_the_mrn_system() -> None:
    other = copy.deepcopy(CANCELLED_BY_MRN)
    other["participant"][0]["actor"]["reference"] = "Patient?identifier=urn:other|7"
    with pytest.raises(ValidationFailed) as error:
        parse_transaction_bundle(transaction(entry(None, other, "PUT")), MRN_SYSTEM)
    assert paths(error) == ["$.entry[0].resource.participant[0].actor.reference"]
    assert MRN_SYSTEM in error.value.details[0].message


def test_ndjson_lines() -> None:
    patient_line = json.dumps({**PATIENT, "id": "48213"})
    [patient] = parse_ndjson_line(patient_line, 1, MRN_SYSTEM)["patients"]
    assert patient["source"] == "line[1]"
    assert patient["create"]["external_ids"] == {"mrn": "MRN-0012345", "fhir_id": "48213"}
    by_mrn = parse_ndjson_line(json.dumps(CANCELLED_BY_MRN), 2, MRN_SYSTEM)
    assert by_mrn["appointments"][0]["patient"] == {"mrn": "MRN-0099999"}
    by_id = parse_ndjson_line(json.dumps(CHECKED_IN_BY_ID), 3, MRN_SYSTEM)
    assert by_id["appointments"][0]["patient"] == {"fhir_id": "48213"}
    assert parse_ndjson_line("   \n", 4, MRN_SYSTEM) == parse_ndjson_line("", 5, MRN_SYSTEM)
    assert parse_ndjson_line(patient_line, 1, MRN_SYSTEM) == parse_ndjson_line(
        patient_line, 1, MRN_SYSTEM
    )


def test_ndjson_errors_name_the_line() -> None:
    with pytest.raises(ValidationFailed) as error:
        parse_ndjson_line('{"resourceType": "Patient", ', 7, MRN_SYSTEM)
    assert paths(error) == ["line[7]"]
    broken = {**PATIENT, "birthDate": "12/04/1961", "gender": "robot"}
    with pytest.raises(ValidationFailed) as error:
        parse_ndjson_line(json.dumps(broken), 8, MRN_SYSTEM)
    assert paths(error) == ["line[8].birthDate"]
    unbundled = copy.deepcopy(APPOINTMENT)  # its references point into a bundle it is not in
    with pytest.raises(ValidationFailed) as error:
        parse_ndjson_line(json.dumps(unbundled), 9, MRN_SYSTEM)
    assert paths(error) == [
        "line[9].participant[0].actor.reference",
        "line[9].participant[1].actor.reference",
        "line[9].slot[0].reference",
    ]
    with pytest.raises(ValidationFailed) as error:
        parse_ndjson_line('["not", "a", "resource"]', 10, MRN_SYSTEM)
    assert paths(error) == ["line[10]"]
