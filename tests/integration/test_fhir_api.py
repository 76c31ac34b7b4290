"""FHIR R4 through the API: every resource it answers with is valid FHIR (4.3.0), a patient's
export holds everything we keep on them with every reference resolving inside it, the
CapabilityStatement states what the endpoint does and no more, and ids are the only thing a URL
carries: another tenant's or another patient's are not found."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.fhir import FHIR_VERSION, validate_resource
from tests.conftest import Api, ClinicCtx, error_paths, free_slots, payload, slot_ref

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = "http://localhost/fhir"  # the test client sends no Host: the edge says localhost
PLAN = {
    "name": "Recovery",
    "trigger": {"event": "discharge"},
    "check_ins": [{"day": 2, "questionnaire": "post-discharge"}],
}
CALM_ANSWERS = {"medication": "all", "new_symptoms": False, "breathless": False}


def _in_daytime(runtime: Any) -> None:
    """Messages wait for the morning outside 08:00-21:00 in Shanghai: move the session's clock
    on to 09:00 if another test left it late (an hour to spare), so the booking's confirmation
    leaves now."""
    from chalicelib import clock

    local = clock.now().astimezone(SHANGHAI)
    if 8 <= local.hour < 20:
        return
    day = local.date() + timedelta(days=1 if local.hour >= 20 else 0)
    runtime.clock.set(datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI))
    runtime.settle()


def _get(api: Api, path: str, token: str | None) -> dict[str, Any]:
    response = api.call("GET", path, token)
    assert response.status_code == 200, (path, response.body)
    found: dict[str, Any] = payload(response)
    validate_resource(found)
    return found


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _types(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["resourceType"] for e in bundle.get("entry", [])}


@pytest.fixture
def cared_for(runtime: Any, api: Api, make_clinic: Any, make_patient: Any) -> dict[str, Any]:
    """A patient with all we keep: consents, flags, an appointment (its confirmation sent), a
    discharge's aftercare journey, and a submitted questionnaire."""
    _in_daytime(runtime)
    clinic: ClinicCtx = make_clinic(journeys=True)
    tenant = clinic.tenant
    patient = make_patient(
        tenant,
        external_ids={"mrn": "MRN-77001"},
        consent={"sms": {"status": "granted", "method": "paper_form"}},
        medical={"allergies": ["penicillin"], "risk_flags": ["fall-risk"]},
    )
    token = runtime.token("patient", tenant.id, patient["id"])
    [slot, *_] = free_slots(api, token)
    booked = api.call("POST", "/appointments", token, {"slot": slot_ref(slot), "type": "follow_up"})
    assert booked.status_code == 201, booked.body
    runtime.settle()
    assert api.call("PUT", "/care-plans/recovery", tenant.admin, PLAN).status_code == 200
    from chalicelib import clock

    discharge = {
        "type": "discharge",
        "department": "cardiology",
        "occurred_at": clock.iso(clock.now()),
    }
    event = api.call("POST", f"/patients/{patient['id']}/care-events", tenant.staff, discharge)
    assert event.status_code == 201 and payload(event)["journeys"], event.body
    started = api.call(
        "POST", "/questionnaires/post-discharge/responses", token, {"answers": CALM_ANSWERS}
    )
    assert started.status_code == 201, started.body
    response_id = payload(started)["id"]
    submitted = api.call("POST", f"/me/questionnaire-responses/{response_id}/submit", token)
    assert submitted.status_code == 200, submitted.body
    return {
        "clinic": clinic,
        "patient": patient,
        "token": token,
        "appointment": payload(booked),
        "response_id": response_id,
    }


def test_the_export_holds_everything_and_every_reference_resolves(
    api: Api, cared_for: dict[str, Any]
) -> None:
    tenant, patient = cared_for["clinic"].tenant, cared_for["patient"]
    bundle = _get(api, f"/patients/{patient['id']}/export", tenant.staff)

    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
    assert {
        "Patient",
        "Appointment",
        "Practitioner",
        "QuestionnaireResponse",
        "Questionnaire",
        "Communication",
        "Consent",
        "Flag",
        "CarePlan",
    } <= _types(bundle)
    resources = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}": e for e in bundle["entry"]
    }
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"{BASE}/{r}" for r in resources]
    dangling = set(_references(bundle)) - set(resources)
    assert not dangling, dangling
    assert f"Appointment/{cared_for['appointment']['id']}" in resources
    assert f"QuestionnaireResponse/{cared_for['response_id']}" in resources
    [mrn] = resources[f"Patient/{patient['id']}"]["resource"]["identifier"]
    assert (mrn["system"], mrn["value"]) == (f"urn:careloop:{tenant.id}:mrn", "MRN-77001")

    mine = _get(api, "/me/export", cared_for["token"])
    assert [e["fullUrl"] for e in mine["entry"]] == [e["fullUrl"] for e in bundle["entry"]]


def test_reads_and_searches_are_valid_fhir(api: Api, cared_for: dict[str, Any]) -> None:
    tenant, patient_id = cared_for["clinic"].tenant, cared_for["patient"]["id"]
    for token in (tenant.staff, tenant.admin, cared_for["token"]):
        patient = _get(api, f"/fhir/Patient/{patient_id}", token)
        assert (patient["resourceType"], patient["id"]) == ("Patient", patient_id)

    appointments = _get(api, f"/fhir/Appointment?patient={patient_id}", tenant.staff)
    assert (appointments["type"], appointments["total"]) == ("searchset", 1)
    [found] = appointments["entry"]
    assert found["resource"]["id"] == cared_for["appointment"]["id"]
    assert found["fullUrl"] == f"{BASE}/Appointment/{found['resource']['id']}"
    as_reference = _get(api, f"/fhir/Appointment?patient=Patient/{patient_id}", cared_for["token"])
    assert as_reference["entry"] == appointments["entry"]

    responses = _get(api, f"/fhir/QuestionnaireResponse?patient={patient_id}", tenant.staff)
    [answered] = responses["entry"]
    assert answered["resource"]["id"] == cared_for["response_id"]
    assert answered["resource"]["status"] == "completed"
    assert answered["resource"]["questionnaire"] == "Questionnaire/post-discharge"

    questionnaire = _get(api, "/fhir/Questionnaire/post-discharge", cared_for["token"])
    assert (questionnaire["resourceType"], questionnaire["id"]) == (
        "Questionnaire",
        "post-discharge",
    )


def test_a_search_with_nothing_found_is_an_empty_searchset(
    api: Api, tenant: Any, make_patient: Any
) -> None:
    patient = make_patient(tenant)
    for kind in ("Appointment", "QuestionnaireResponse"):
        empty = _get(api, f"/fhir/{kind}?patient={patient['id']}", tenant.staff)
        assert empty["total"] == 0 and "entry" not in empty


def test_a_search_names_its_patient_by_id_only(api: Api, tenant: Any, make_patient: Any) -> None:
    patient = make_patient(tenant)
    for kind in ("Appointment", "QuestionnaireResponse"):
        missing = api.call("GET", f"/fhir/{kind}", tenant.staff)
        assert missing.status_code == 400 and error_paths(missing) == ["patient"]
        blank = api.call("GET", f"/fhir/{kind}?patient=", tenant.staff)
        assert blank.status_code == 400 and error_paths(blank) == ["patient"]
        # Searching by what identifies a person would put PHI in the URL: refused, not ignored.
        by_name = api.call("GET", f"/fhir/{kind}?patient={patient['id']}&name=Wei", tenant.staff)
        assert by_name.status_code == 400 and error_paths(by_name) == ["name"]


def test_unknown_and_impossible_ids_are_not_found(api: Api, tenant: Any) -> None:
    for path in (
        "/fhir/Questionnaire/no-such-form",
        "/fhir/Questionnaire/Not_An-Id",
        "/fhir/Patient/p-0000000000000000",
        "/fhir/Patient/x",
        "/fhir/Patient/P.0",
        "/fhir/Appointment?patient=p-0000000000000000",
        "/fhir/QuestionnaireResponse?patient=Patient/NOT-AN-ID",
        "/patients/p-0000000000000000/export",
        "/patients/NOT.AN.ID/export",
    ):
        response = api.call("GET", path, tenant.staff)
        assert response.status_code == 404, (path, response.body)


def test_other_tenants_and_other_patients_are_not_found(
    runtime: Any, api: Api, cared_for: dict[str, Any], make_tenant: Any, make_patient: Any
) -> None:
    tenant, patient_id = cared_for["clinic"].tenant, cared_for["patient"]["id"]
    other_tenant = make_tenant()
    neighbour = make_patient(tenant)
    neighbours_token = runtime.token("patient", tenant.id, neighbour["id"])
    paths = (
        f"/fhir/Patient/{patient_id}",
        f"/fhir/Appointment?patient={patient_id}",
        f"/fhir/QuestionnaireResponse?patient={patient_id}",
    )
    for path in (*paths, f"/patients/{patient_id}/export"):
        for token in (other_tenant.staff, other_tenant.admin):
            response = api.call("GET", path, token)
            assert response.status_code == 404, (path, response.body)
            assert patient_id not in response.body.decode()
    for path in paths:
        response = api.call("GET", path, neighbours_token)
        assert response.status_code == 404, (path, response.body)
    # A patient exports through /me only; what another tenant's patient exports is their own.
    refused = api.call("GET", f"/patients/{patient_id}/export", cared_for["token"])
    assert refused.status_code == 403
    theirs = _get(api, "/me/export", neighbours_token)
    assert patient_id not in str(theirs)
    assert _types(theirs) >= {"Patient"} and len(theirs["entry"]) >= 1


def test_metadata_states_the_version_and_only_what_exists(runtime: Any, api: Api) -> None:
    statement = _get(api, "/fhir/metadata", None)
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == FHIR_VERSION == "4.3.0"
    assert statement["implementation"]["url"] == BASE
    [rest] = statement["rest"]
    # The one system interaction: a transaction Bundle imported at the base (POST /fhir).
    assert [i["code"] for i in rest["interaction"]] == ["transaction"]
    assert "POST" in runtime.app.routes["/fhir"]
    stated = {
        (resource["type"], interaction["code"])
        for resource in rest["resource"]
        for interaction in resource["interaction"]
    }
    assert stated == {
        ("Patient", "read"),
        ("Appointment", "search-type"),
        ("Questionnaire", "read"),
        ("Questionnaire", "update"),
        ("QuestionnaireResponse", "search-type"),
    }
    # Each stated interaction is a route, and each FHIR route but metadata is stated (the bulk
    # import's own routes, /fhir/imports, are CareLoop's jobs, not FHIR interactions).
    served = {
        path
        for path, methods in runtime.app.routes.items()
        if path.startswith("/fhir/") and "GET" in methods and not path.startswith("/fhir/imports")
    }
    expected = {"/fhir/metadata"}
    for resource_type, code in stated:
        if code in ("read", "update"):
            [one] = [p for p in served if p.startswith(f"/fhir/{resource_type}/{{")]
            expected.add(one)
            if code == "update":
                assert "PUT" in runtime.app.routes[one], one
        else:
            expected.add(f"/fhir/{resource_type}")
    assert served == expected
    searches = {r["type"]: [p["name"] for p in r.get("searchParam", [])] for r in rest["resource"]}
    assert searches["Appointment"] == ["patient"] == searches["QuestionnaireResponse"]


def test_the_base_url_follows_the_host_and_stage_the_caller_reached(api: Api) -> None:
    from chalice.app import Request

    from chalicelib.api.fhir import fhir_base

    def request(headers: dict[str, str], context: dict[str, Any]) -> Request:
        event = {
            "headers": headers,
            "multiValueQueryStringParameters": None,
            "pathParameters": {"patient_id": "p-1"},
            "requestContext": {"httpMethod": "GET", **context},
            "stageVariables": None,
            "body": None,
            "isBase64Encoded": False,
        }
        return Request(event)

    on_aws = request(
        {"x-forwarded-proto": "https", "host": "abc.execute-api.example"},
        {
            "domainName": "abc.execute-api.example",
            "resourcePath": "/patients/{patient_id}/export",
            "path": "/api/patients/p-1/export",
        },
    )
    assert fhir_base(on_aws) == "https://abc.execute-api.example/api/fhir"
    custom_domain = request(
        {"x-forwarded-proto": "https"},
        {
            "domainName": "api.renji.example",
            "resourcePath": "/patients/{patient_id}/export",
            "path": "/patients/p-1/export",
        },
    )
    assert fhir_base(custom_domain) == "https://api.renji.example/fhir"
    local = request(
        {"host": "localhost:8000", "x-forwarded-proto": "javascript"},
        {"resourcePath": "/patients/{patient_id}/export", "path": "/patients/p-1/export"},
    )
    assert fhir_base(local) == "http://localhost:8000/fhir"


def test_what_the_journeys_sent_is_exported_as_communications(
    api: Api, cared_for: dict[str, Any]
) -> None:
    tenant, patient = cared_for["clinic"].tenant, cared_for["patient"]
    logged = payload(api.call("GET", f"/patients/{patient['id']}/deliveries", tenant.staff))
    assert logged["items"], "the booking's confirmation was sent"
    bundle = _get(api, f"/patients/{patient['id']}/export", tenant.staff)
    communications = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Communication"
    ]
    assert sorted(c["identifier"][0]["value"] for c in communications) == sorted(
        d["key"] for d in logged["items"]
    )
    confirmation = next(c for c in communications if c["topic"]["text"] == "confirmation")
    assert confirmation["about"] == [{"reference": f"Appointment/{cared_for['appointment']['id']}"}]


def test_export_is_recorded_in_the_audit_trail(api: Api, cared_for: dict[str, Any]) -> None:
    tenant, patient = cared_for["clinic"].tenant, cared_for["patient"]
    assert api.call("GET", f"/patients/{patient['id']}/export", tenant.staff).status_code == 200
    assert api.call("GET", "/me/export", cared_for["token"]).status_code == 200
    audit = api.call("GET", f"/patients/{patient['id']}/audit", tenant.admin)
    # The virtual clock stands still: the entries share their moment, so their order is not
    # the point, only that both exports are there.
    actions = {e["action"] for e in payload(audit)["items"]}
    assert {"export_patient", "export_my_record"} <= actions


def test_a_hospitals_own_fhir_questionnaire_is_imported(
    api: Api, make_tenant: Any, make_patient: Any
) -> None:
    """PUT /fhir/Questionnaire/{id}: a FHIR Questionnaire becomes the tenant's questionnaire;
    it reads back in both forms; what our questionnaires cannot do is named by path."""
    from chalicelib.domain.fhir import validate_resource

    tenant = make_tenant()
    resource = {
        "resourceType": "Questionnaire",
        "status": "active",
        "language": "zh-CN",
        "title": "术后随访",
        "item": [
            {"linkId": "pain", "text": "疼痛程度(0-10)", "type": "integer", "required": True},
            {"linkId": "fever", "text": "是否发热?", "type": "boolean"},
        ],
    }
    saved = api.call("PUT", "/fhir/Questionnaire/ortho-follow-up", tenant.admin, resource)
    assert saved.status_code == 200, saved.body
    validate_resource(payload(saved))
    ours = payload(api.call("GET", "/questionnaires/ortho-follow-up", tenant.staff))
    assert [item["linkId"] for item in ours["items"]] == ["pain", "fever"]
    again = payload(api.call("GET", "/fhir/Questionnaire/ortho-follow-up", tenant.staff))
    assert [item["linkId"] for item in again["item"]] == ["pain", "fever"]
    # Staff may read, not import; a nested group is beyond our questionnaires: its path named.
    assert api.call("PUT", "/fhir/Questionnaire/x-1", tenant.staff, resource).status_code == 403
    nested = {**resource, "item": [{"linkId": "g", "type": "group", "item": resource["item"]}]}
    refused = api.call("PUT", "/fhir/Questionnaire/x-1", tenant.admin, nested)
    assert refused.status_code == 400
    assert any(path.startswith("$.item[0]") for path in error_paths(refused)), refused.body
