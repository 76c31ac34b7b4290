"""Importing from the hospital's system (`POST /fhir`, a FHIR transaction Bundle): patients are
upserted by MRN and appointments by the hospital's identifier, the same bundle twice changes
nothing, every failing entry is named before anything is written, and imported appointments stay
the hospital's: they hold a place only in a schedule CareLoop manages, CareLoop never cancels
them, their updates arrive as re-sent resources, future ones get their journeys and past visits
count for recall."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.fhir import validate_resource
from tests.conftest import Api, ClinicCtx, error_code, error_paths, free_slots, payload
from tests.journeys.support import iso, local_moment, move_to, unique_phone

pytestmark = pytest.mark.journey
APPOINTMENT_SYSTEM = "https://renji.example.org/fhir/appointment-id"
PATIENT_URL = "urn:uuid:6f1c2a52-3d0e-4c51-9a5a-0b1a8f0d1e01"


def mrn_system(clinic: ClinicCtx) -> str:
    return f"urn:careloop:{clinic.tenant.id}:mrn"


def patient_resource(clinic: ClinicCtx, mrn: str, phone: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": mrn_system(clinic), "value": mrn}],
        "name": [{"use": "official", "family": "Zhang", "given": ["Wei"]}],
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
        "gender": "male",
        "birthDate": "1961-04-12",
        **extra,
    }


def appointment_resource(
    number: str, start: str, end: str, *, status: str = "booked", **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "identifier": [{"system": APPOINTMENT_SYSTEM, "value": number}],
        "status": status,
        "start": start,
        "end": end,
        "participant": [{"actor": {"reference": PATIENT_URL}, "status": "accepted"}],
        **extra,
    }


def transaction(*resources: dict[str, Any]) -> dict[str, Any]:
    entries = []
    for resource in resources:
        entry: dict[str, Any] = {
            "resource": copy.deepcopy(resource),
            "request": {"method": "PUT", "url": resource["resourceType"]},
        }
        if resource["resourceType"] == "Patient":
            entry["fullUrl"] = PATIENT_URL
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def send(api: Api, clinic: ClinicCtx, bundle: dict[str, Any], runtime: Any) -> dict[str, Any]:
    response = api.call("POST", "/fhir", clinic.tenant.admin, bundle)
    assert response.status_code == 200, response.body
    runtime.settle()
    answer: dict[str, Any] = payload(response)
    validate_resource(answer)
    return answer


def statuses(answer: dict[str, Any]) -> list[str]:
    return [e["response"]["status"] for e in answer.get("entry", [])]


def located(answer: dict[str, Any], index: int) -> tuple[str, str]:
    """(type, id) of an entry's location."""
    kind, resource_id, _, _ = answer["entry"][index]["response"]["location"].split("/")
    return kind, resource_id


@pytest.fixture
def clinic(runtime: Any, make_clinic: Any) -> ClinicCtx:
    made: ClinicCtx = make_clinic(capacity=1, journeys=True)
    return made


def in_cardiology_slot(api: Api, clinic: ClinicCtx) -> tuple[str, str]:
    """A free slot of Dr Li's CareLoop schedule, as the hospital's system would book it."""
    slot = free_slots(api, clinic.tenant.staff, days_ahead=3)[2]
    return slot["start"], slot["end"]


def test_a_bundle_imports_and_the_same_bundle_again_changes_nothing(
    runtime: Any, api: Api, clinic: ClinicCtx
) -> None:
    move_to(runtime, local_moment(days=1, hour=9))
    phone = unique_phone()
    start, end = in_cardiology_slot(api, clinic)
    bundle = transaction(
        patient_resource(clinic, "MRN-1001", f"+86{phone}"),
        appointment_resource(
            "APT-1",
            start,
            end,
            participant=[
                {"actor": {"reference": PATIENT_URL}, "status": "accepted"},
                {
                    "actor": {"reference": "Practitioner/dr-li", "display": "Dr Li"},
                    "status": "accepted",
                },
            ],
            patientInstruction="Please come fasting",
        ),
    )
    first = send(api, clinic, bundle, runtime)
    assert statuses(first) == ["201 Created", "201 Created"]
    (_, patient_id), (_, appointment_id) = located(first, 0), located(first, 1)

    staff = clinic.tenant.staff
    appointment = payload(api.call("GET", f"/appointments/{appointment_id}", staff))
    assert appointment["owner"] == "hospital_system"
    assert appointment["external_id"] == {"system": APPOINTMENT_SYSTEM, "value": "APT-1"}
    assert (appointment["patient_id"], appointment["schedule_id"]) == (patient_id, "cardio")
    assert (appointment["department"], appointment["clinician"]) == ("cardiology", "dr-li")
    assert appointment["notes_for_patient"] == "Please come fasting"
    patient = payload(api.call("GET", f"/patients/{patient_id}", staff))
    assert patient["external_ids"]["mrn"] == "MRN-1001"
    assert patient["phone"] == f"+86{phone}"

    again = send(api, clinic, bundle, runtime)
    assert statuses(again) == ["200 OK", "200 OK"]
    assert again["entry"][0]["response"]["location"] == first["entry"][0]["response"]["location"]
    # (The journey has written to the appointment since: its answer token.)
    version = appointment["version"]
    assert again["entry"][1]["response"]["location"].endswith(f"/_history/{version}")
    assert payload(api.call("GET", f"/appointments/{appointment_id}", staff)) == appointment
    # The import is in the patient's audit trail, as the admin's, with no values.
    audit = payload(api.call("GET", f"/patients/{patient_id}/audit", clinic.tenant.admin))
    imports = [e for e in audit["items"] if e["action"] == "post_fhir_transaction"]
    assert len(imports) == 2 and {e["actor"]["role"] for e in imports} == {"admin"}
    assert phone not in str(imports) and "Zhang" not in str(imports)
    # The journey of the imported future appointment sent its confirmation, once.
    sms = runtime.outbox.messages(to=f"+86{phone}", channel="sms")
    assert len(sms) == 1, sms


def test_a_place_is_held_only_in_a_schedule_careloop_manages(
    runtime: Any, api: Api, clinic: ClinicCtx, make_patient: Any
) -> None:
    move_to(runtime, local_moment(days=1, hour=9))
    start, end = in_cardiology_slot(api, clinic)
    in_our_schedule = appointment_resource(
        "APT-2",
        start,
        end,
        participant=[
            {"actor": {"reference": PATIENT_URL}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/dr-li"}, "status": "accepted"},
        ],
    )
    elsewhere = appointment_resource(
        "APT-3",
        start,
        end,
        serviceType=[{"text": "皮肤科"}],  # dermatology by its name, at a time of its own
    )
    answer = send(
        api,
        clinic,
        transaction(
            patient_resource(clinic, "MRN-2", f"+86{unique_phone()}"), in_our_schedule, elsewhere
        ),
        runtime,
    )
    assert statuses(answer) == ["201 Created"] * 3
    staff = clinic.tenant.staff
    outside = payload(api.call("GET", f"/appointments/{located(answer, 2)[1]}", staff))
    assert (outside["department"], outside["schedule_id"]) == ("dermatology", "hospital-system")

    # The hospital's booking took the only place of that slot: an online booking cannot.
    taken = [s["start"] for s in free_slots(api, staff, days_ahead=3)]
    assert start not in taken
    other = make_patient(clinic.tenant, phone=unique_phone())
    booking = api.call(
        "POST",
        "/appointments",
        staff,
        {
            "patient_id": other["id"],
            "slot": {"schedule_id": "cardio", "start": start},
            "type": "follow_up",
        },
    )
    assert booking.status_code == 409 and error_code(booking) == "slot_full"

    # The hospital cancels it (an update): the place is free again, the journey stops.
    cancelled = transaction(
        patient_resource(clinic, "MRN-2", f"+86{unique_phone()}"),
        {**in_our_schedule, "status": "cancelled"},
    )
    answer = send(api, clinic, cancelled, runtime)
    assert statuses(answer) == ["200 OK", "200 OK"]
    assert start in [s["start"] for s in free_slots(api, staff, days_ahead=3)]
    appointment = payload(api.call("GET", f"/appointments/{located(answer, 1)[1]}", staff))
    assert appointment["status"] == "cancelled"


def test_careloop_never_cancels_a_hospital_appointment_itself(
    runtime: Any, api: Api, clinic: ClinicCtx
) -> None:
    move_to(runtime, local_moment(days=1, hour=9))
    phone = unique_phone()
    start, end = in_cardiology_slot(api, clinic)
    answer = send(
        api,
        clinic,
        transaction(
            patient_resource(clinic, "MRN-3", f"+86{phone}"),
            appointment_resource("APT-4", start, end, serviceType=[{"text": "cardiology"}]),
        ),
        runtime,
    )
    (_, patient_id), (_, appointment_id) = located(answer, 0), located(answer, 1)
    staff = clinic.tenant.staff
    path = f"/appointments/{appointment_id}"
    for action, body in (
        ("cancel", None),
        ("reschedule", {"slot": {"schedule_id": "cardio", "start": start}}),
        ("check-in", None),
        ("no-show", None),
    ):
        refused = api.call("POST", f"{path}/{action}", staff, body)
        assert refused.status_code == 409, (action, refused.body)
        assert error_code(refused) == "hospital_owned"

    # The patient cancels in the app: staff are asked to cancel it in the hospital's system,
    # and no reminder follows.
    token = runtime.token("patient", clinic.tenant.id, patient_id)
    asked = api.call("POST", f"{path}/cancel", token)
    assert asked.status_code == 200, asked.body
    runtime.settle()
    shown = payload(asked)
    assert (shown["status"], shown["patient_response"]) == ("booked", "declined")
    tasks = payload(api.call("GET", "/tasks", staff))["items"]
    assert [t["kind"] for t in tasks if t["patient_id"] == patient_id] == ["cancel_requested"]
    before = len(runtime.outbox.messages(to=f"+86{phone}", channel="sms"))
    move_to(runtime, local_moment(days=3, hour=7))
    assert len(runtime.outbox.messages(to=f"+86{phone}", channel="sms")) == before

    # Past the visit nothing marks it missed: attendance is the hospital's to say.
    move_to(runtime, local_moment(days=4, hour=9))
    assert payload(api.call("GET", path, staff))["status"] == "booked"


def test_every_failing_entry_is_named_and_nothing_is_written(
    runtime: Any, api: Api, clinic: ClinicCtx
) -> None:
    start, end = in_cardiology_slot(api, clinic)
    good_patient = patient_resource(clinic, "MRN-4", f"+86{unique_phone()}")
    bundle = transaction(
        good_patient,
        patient_resource(clinic, "MRN-5", f"+86{unique_phone()}", birthDate="1961-13-45"),
        appointment_resource("APT-5", start, end, serviceType=[{"text": "Oncology"}]),
        appointment_resource("APT-6", end, start),
    )
    refused = api.call("POST", "/fhir", clinic.tenant.admin, bundle)
    assert refused.status_code == 400, refused.body
    named = error_paths(refused)
    assert "$.entry[1].resource.birthDate" in named
    assert "$.entry[3].resource.end" in named
    refused_again = api.call(
        "POST",
        "/fhir",
        clinic.tenant.admin,
        transaction(
            good_patient,
            appointment_resource("APT-5", start, end, serviceType=[{"text": "Oncology"}]),
        ),
    )
    assert refused_again.status_code == 400
    assert error_paths(refused_again) == ["$.entry[1].resource.serviceType"]
    found = api.call("POST", "/patients/search", clinic.tenant.staff, {"mrn": "MRN-4"})
    assert payload(found)["items"] == []

    not_a_transaction = api.call(
        "POST", "/fhir", clinic.tenant.admin, {"resourceType": "Bundle", "type": "batch"}
    )
    assert not_a_transaction.status_code == 400
    assert api.call("POST", "/fhir", clinic.tenant.staff, bundle).status_code == 403


def test_a_past_visit_counts_for_recall_without_a_message(
    runtime: Any, api: Api, clinic: ClinicCtx
) -> None:
    from chalicelib import clock

    rule = {
        "name": "Cardiology review a year after a visit",
        "match": {"appointment_type": "follow_up"},
        "after_days": 365,
        "book": {"department": "cardiology", "appointment_type": "follow_up"},
    }
    assert api.call("PUT", "/recall-rules/yearly", clinic.tenant.admin, rule).status_code == 200
    phone = unique_phone()
    visits = [(f"APT-H{days}", clock.now() - timedelta(days=days)) for days in (200, 400, 30 * 9)]
    bundle = transaction(
        patient_resource(clinic, "MRN-6", f"+86{phone}"),
        *(
            appointment_resource(
                number,
                iso(at),
                iso(at + timedelta(minutes=15)),
                status="fulfilled",
                serviceType=[{"text": "cardiology"}],
            )
            for number, at in visits
        ),
    )
    answer = send(api, clinic, bundle, runtime)
    patient_id = located(answer, 0)[1]
    journeys = payload(
        api.call("GET", f"/patients/{patient_id}/care-journeys", clinic.tenant.staff)
    )["items"]
    [recall] = [j for j in journeys if j["kind"] == "recall"]
    latest = clock.now() - timedelta(days=200)
    due = latest.astimezone(clinic_zone()).date() + timedelta(days=365)
    assert recall["due_date"] == due.isoformat()
    assert runtime.outbox.messages(to=f"+86{phone}", channel="sms") == []


def clinic_zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def test_the_hospitals_own_mrn_system(runtime: Any, api: Api, clinic: ClinicCtx) -> None:
    """A hospital that names its MRNs with its own OID imports and reads them under it."""
    tenant = clinic.tenant
    oid = "urn:oid:1.2.156.112604.1.2.1"
    current = payload(api.call("GET", f"/tenants/{tenant.id}", tenant.admin))
    patched = api.call(
        "PATCH",
        f"/tenants/{tenant.id}",
        tenant.admin,
        {"fhir": {"mrn_system": oid}},
        headers={"If-Match": f'"{current["version"]}"'},
    )
    assert patched.status_code == 200, patched.body
    theirs = patient_resource(clinic, "H-778", f"+86{unique_phone()}")
    theirs["identifier"] = [{"system": oid, "value": "H-778"}]
    answer = send(api, clinic, transaction(theirs), runtime)
    patient_id = located(answer, 0)[1]
    read = payload(api.call("GET", f"/fhir/Patient/{patient_id}", tenant.staff))
    assert {"system": oid, "value": "H-778"} in [
        {k: i[k] for k in ("system", "value")} for i in read["identifier"]
    ]
    ours = api.call(
        "POST", "/fhir", tenant.admin, transaction(patient_resource(clinic, "X", "+8613800138000"))
    )
    assert ours.status_code == 400
    assert error_paths(ours) == ["$.entry[0].resource.identifier"]
