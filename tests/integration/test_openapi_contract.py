"""The OpenAPI document is the contract: it matches the routes, it is valid, the committed copy
is current, and its examples pass through the API with responses that match it."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, Api, payload

METHODS = ("get", "post", "patch", "put", "delete")
COMPONENT = "#/components/schemas/"


@pytest.fixture(scope="module")
def spec(runtime: Any) -> dict[str, Any]:
    from local.openapi_doc import full_spec

    return full_spec()


def test_committed_openapi_yaml_is_current(spec: dict[str, Any]) -> None:
    committed = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    assert committed == spec, "run `.venv/bin/python -m local openapi` and commit openapi.yaml"


def test_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(spec)


def test_every_route_is_in_the_spec_and_back(runtime: Any, spec: dict[str, Any]) -> None:
    routes = {
        (path, method.lower()) for path, entries in runtime.app.routes.items() for method in entries
    }
    documented = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
    assert routes == documented


def test_served_document_is_the_same(api: Api, spec: dict[str, Any]) -> None:
    response = api.call("GET", "/openapi.json")
    assert response.status_code == 200
    assert payload(response) == spec


def _checker(spec: dict[str, Any], ref: str) -> Any:
    """Responses are checked with the formats the API checks requests with (real email and
    URI checks, not jsonschema's "has an @")."""
    from jsonschema import Draft202012Validator

    from chalicelib.schemas import format_checker

    root = {**spec, "$ref": ref}
    return Draft202012Validator(root, format_checker=format_checker())


def test_response_checks_refuse_what_requests_refuse(
    api: Api, spec: dict[str, Any], make_tenant: Any
) -> None:
    """A stored `6hx#5@f9anknoh.info*` would make every later response break its own schema:
    the response check sees it, as the request check does (and a `uri` that is none)."""
    tenant = make_tenant()
    created = api.call("POST", "/patients", tenant.staff, {"name": {"given": "Wei"}})
    patient = {**payload(created), "email": "zhang.wei@example.com"}
    checker = _checker(spec, COMPONENT + "patient")
    assert not [e.message for e in checker.iter_errors(patient)]
    wrong = {**patient, "email": "6hx#5@f9anknoh.info*"}
    assert [e.json_path for e in checker.iter_errors(wrong)] == ["$.email"]
    plan = copy.deepcopy(example(spec, "/care-plans/{plan_id}", "put"))
    plan["education"][0]["url"] = "https://example.org/wound care"  # a space: no URI
    wrong_link = _checker(spec, COMPONENT + "care-plan-put").iter_errors(plan)
    assert [e.json_path for e in wrong_link] == ["$.education[0].url"]


def check_response(spec: dict[str, Any], path: str, method: str, response: Any) -> None:
    operation = spec["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {path} answered undocumented {response.status_code}"
    if "$ref" in documented:
        documented = spec["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    content = documented.get("content", {}).get("application/json")
    if content is None:
        assert not response.body
        return
    errors = sorted(
        _checker(spec, content["schema"]["$ref"]).iter_errors(payload(response)), key=str
    )
    assert not errors, f"{method} {path}: {[e.message for e in errors]}"


def example(spec: dict[str, Any], path: str, method: str) -> Any:
    content = spec["paths"][path][method]["requestBody"]["content"]
    return next(iter(content.values()))["example"]


def shift_to_future(booking: dict[str, Any]) -> dict[str, Any]:
    """The example's slot, whole weeks later if the session's virtual clock has passed it
    (journey tests move it on): same weekday, same time, still a slot of the example schedule."""
    from datetime import datetime, timedelta

    from chalicelib import clock
    from chalicelib.domain.common import utc_iso

    start = datetime.fromisoformat(booking["slot"]["start"])
    while start <= clock.now() + timedelta(days=1):
        start += timedelta(days=7)
    return {**booking, "slot": {**booking["slot"], "start": utc_iso(start)}}


def documented_example(spec: dict[str, Any], path: str, method: str) -> Any:
    try:
        return example(spec, path, method)
    except (KeyError, TypeError):
        return None


def walk_booking(
    call: Any,
    spec: dict[str, Any],
    runtime: Any,
    tenant_id: str,
    patient_id: str,
    staff: str,
    admin: str,
) -> None:
    """Clinicians, schedules, slots and an appointment's life, with the spec's examples."""
    patient = runtime.token("patient", tenant_id, patient_id)
    clinician = example(spec, "/clinicians/{clinician_id}", "put")
    schedule = example(spec, "/schedules/{schedule_id}", "put")
    booking = shift_to_future(example(spec, "/appointments", "post"))
    schedule_id = booking["slot"]["schedule_id"]
    call(
        "/clinicians/{clinician_id}",
        "put",
        admin,
        clinician,
        concrete=f"/clinicians/{schedule['clinician']}",
    )
    call("/clinicians", "get", staff)
    call("/schedules/{schedule_id}", "put", admin, schedule, concrete=f"/schedules/{schedule_id}")
    call("/schedules", "get", staff)
    call("/schedules/{schedule_id}", "get", staff, concrete=f"/schedules/{schedule_id}")
    day = booking["slot"]["start"][:10]
    call(
        "/slots",
        "get",
        patient,
        concrete=f"/slots?department={schedule['department']}&from={day}&to={day}T23:59:59Z",
    )
    booked = call(
        "/appointments", "post", patient, booking, headers={"Idempotency-Key": "walk-booking-0001"}
    )
    assert booked.status_code == 201, booked.body
    appointment = f"/appointments/{payload(booked)['id']}"
    call("/appointments/{appointment_id}", "get", patient, concrete=appointment)
    call(
        "/appointments/{appointment_id}/timeline",
        "get",
        patient,
        concrete=f"{appointment}/timeline",
    )
    call(
        "/appointments/{appointment_id}/confirm", "post", patient, concrete=f"{appointment}/confirm"
    )
    moved = call(
        "/appointments/{appointment_id}/reschedule",
        "post",
        patient,
        shift_to_future(example(spec, "/appointments/{appointment_id}/reschedule", "post")),
        concrete=f"{appointment}/reschedule",
    )
    assert moved.status_code == 200, moved.body
    call("/me/appointments", "get", patient)
    call("/me/devices", "post", patient, example(spec, "/me/devices", "post"))
    call(
        "/patients/{patient_id}/appointments",
        "get",
        staff,
        concrete=f"/patients/{patient_id}/appointments?when=upcoming",
    )
    call(
        "/departments/{department}/appointments",
        "get",
        staff,
        concrete=f"/departments/{schedule['department']}/appointments?date={day}",
    )
    # Not started yet: a documented 409.
    assert (
        call(
            "/appointments/{appointment_id}/no-show",
            "post",
            staff,
            concrete=f"{appointment}/no-show",
        ).status_code
        == 409
    )
    call(
        "/appointments/{appointment_id}/check-in", "post", staff, concrete=f"{appointment}/check-in"
    )
    call("/appointments/{appointment_id}/fulfil", "post", staff, concrete=f"{appointment}/fulfil")
    call("/appointments/{appointment_id}/cancel", "post", patient, concrete=f"{appointment}/cancel")
    call("/tasks", "get", staff)
    call(
        "/templates/{step}/{channel}/{language}",
        "put",
        admin,
        example(spec, "/templates/{step}/{channel}/{language}", "put"),
        concrete="/templates/reminder/sms/zh-CN",
    )
    call("/templates", "get", staff)
    call(
        "/questionnaires/{questionnaire_id}",
        "put",
        admin,
        example(spec, "/questionnaires/{questionnaire_id}", "put"),
        concrete="/questionnaires/cataract-day1",
    )
    call("/questionnaires", "get", staff)
    call(
        "/questionnaires/{questionnaire_id}",
        "get",
        patient,
        concrete="/questionnaires/post-operative",
    )
    started = call(
        "/questionnaires/{questionnaire_id}/responses",
        "post",
        patient,
        example(spec, "/questionnaires/{questionnaire_id}/responses", "post"),
        concrete="/questionnaires/post-operative/responses",
    )
    response_path = f"/me/questionnaire-responses/{payload(started)['id']}"
    call(
        "/me/questionnaire-responses/{response_id}",
        "patch",
        patient,
        {"answers": {"fever": False, "mobility": "normal"}},
        concrete=response_path,
    )
    call(
        "/me/questionnaire-responses/{response_id}/submit",
        "post",
        patient,
        concrete=f"{response_path}/submit",
    )
    call(
        "/patients/{patient_id}/questionnaire-responses",
        "get",
        staff,
        concrete=f"/patients/{patient_id}/questionnaire-responses",
    )
    call("/me/questionnaire-responses/{response_id}", "get", patient, concrete=response_path)
    walk_care(call, spec, patient_id, staff, admin, patient)
    # No journey escalated anything yet: closing an unknown task is a documented 404.
    call("/tasks/{task_id}/close", "post", staff, concrete="/tasks/no-such-task/close")
    call(
        "/patients/{patient_id}/deliveries",
        "get",
        staff,
        concrete=f"/patients/{patient_id}/deliveries",
    )


def walk_care(
    call: Any, spec: dict[str, Any], patient_id: str, staff: str, admin: str, patient: str
) -> None:
    """Care plans, recall rules, a surgery recorded and the journeys it started."""
    plan = call(
        "/care-plans/{plan_id}",
        "put",
        admin,
        example(spec, "/care-plans/{plan_id}", "put"),
        concrete="/care-plans/cardiac-recovery",
    )
    assert plan.status_code == 200, plan.body
    call("/care-plans", "get", staff)
    call("/care-plans/{plan_id}", "get", staff, concrete="/care-plans/cardiac-recovery")
    call(
        "/care-plans/{plan_id}/preview",
        "post",
        staff,
        example(spec, "/care-plans/{plan_id}/preview", "post"),
        concrete="/care-plans/cardiac-recovery/preview",
    )
    rule = call(
        "/recall-rules/{rule_id}",
        "put",
        admin,
        example(spec, "/recall-rules/{rule_id}", "put"),
        concrete="/recall-rules/diabetes-90d",
    )
    assert rule.status_code == 200, rule.body
    call("/recall-rules", "get", staff)
    call("/recall-rules/{rule_id}", "get", staff, concrete="/recall-rules/diabetes-90d")
    call(
        "/recall-rules/{rule_id}/preview",
        "post",
        staff,
        example(spec, "/recall-rules/{rule_id}/preview", "post"),
        concrete="/recall-rules/diabetes-90d/preview",
    )
    from chalicelib import clock

    # The example's moment, moved to the virtual "now" (other tests move the clock on).
    surgery = {
        **example(spec, "/patients/{patient_id}/care-events", "post"),
        "occurred_at": clock.iso(clock.now()),
    }
    event = call(
        "/patients/{patient_id}/care-events",
        "post",
        staff,
        surgery,
        concrete=f"/patients/{patient_id}/care-events",
        headers={"Idempotency-Key": "walk-care-event-0001"},
    )
    assert event.status_code == 201, event.body
    journeys = call(
        "/patients/{patient_id}/care-journeys",
        "get",
        staff,
        concrete=f"/patients/{patient_id}/care-journeys",
    )
    assert payload(journeys)["items"], "the surgery started the care plan"
    # The surgery's journey has not invited the patient back yet: a documented 404.
    call(
        "/me/booking-invitations/{ref}",
        "get",
        patient,
        concrete="/me/booking-invitations/ac-0000000000000000",
    )


def walk_fhir(
    call: Any, spec: dict[str, Any], runtime: Any, tenant_id: str, patient_id: str, staff: str
) -> None:
    """FHIR reads and searches, the patient's export, and a hospital's own Questionnaire."""
    patient = runtime.token("patient", tenant_id, patient_id)
    call(
        "/fhir/Questionnaire/{questionnaire_id}",
        "put",
        runtime.token("admin", tenant_id),
        example(spec, "/fhir/Questionnaire/{questionnaire_id}", "put"),
        concrete="/fhir/Questionnaire/visit-feedback",
    )
    call("/fhir/metadata", "get", None)
    # The hospital's system imports a patient and an appointment (the example, for this tenant).
    transaction = json.loads(
        json.dumps(example(spec, "/fhir", "post")).replace(
            "urn:careloop:renji:mrn", f"urn:careloop:{tenant_id}:mrn"
        )
    )
    imported = call("/fhir", "post", runtime.token("admin", tenant_id), transaction)
    assert imported.status_code == 200, imported.body
    call("/fhir/Patient/{patient_id}", "get", patient, concrete=f"/fhir/Patient/{patient_id}")
    call("/fhir/Appointment", "get", staff, concrete=f"/fhir/Appointment?patient={patient_id}")
    # A search without its patient: a documented 400.
    assert call("/fhir/QuestionnaireResponse", "get", staff).status_code == 400
    call(
        "/fhir/QuestionnaireResponse",
        "get",
        patient,
        concrete=f"/fhir/QuestionnaireResponse?patient={patient_id}",
    )
    call(
        "/fhir/Questionnaire/{questionnaire_id}",
        "get",
        staff,
        concrete="/fhir/Questionnaire/post-operative",
    )
    call("/patients/{patient_id}/export", "get", staff, concrete=f"/patients/{patient_id}/export")
    call("/me/export", "get", patient)
    timeline = f"/patients/{patient_id}/timeline"
    call("/patients/{patient_id}/timeline", "get", staff, concrete=timeline)
    window = "from=2026-01-01T00:00:00Z&to=2026-12-31T00:00:00%2B08:00"
    call("/patients/{patient_id}/timeline", "get", staff, concrete=f"{timeline}?{window}")
    backwards = call(
        "/patients/{patient_id}/timeline", "get", staff, concrete=f"{timeline}?to=2020-01-01Z"
    )
    assert backwards.status_code == 400, backwards.body
    call("/me/timeline", "get", patient)
    walk_fhir_imports(call, spec, runtime, tenant_id)


def walk_fhir_imports(call: Any, spec: dict[str, Any], runtime: Any, tenant_id: str) -> None:
    """A bulk import of the example's files, put in the tenant's import folder first."""
    from chalicelib.settings import get_settings

    admin = runtime.token("admin", tenant_id)
    body = example(spec, "/fhir/imports", "post")
    for path in body["files"]:
        runtime.client("s3").put_object(
            Bucket=get_settings().import_bucket, Key=f"{tenant_id}/{path}", Body=b"\n"
        )
    started = call("/fhir/imports", "post", admin, body)
    assert started.status_code == 202, started.body
    import_path = f"/fhir/imports/{payload(started)['id']}"
    call("/fhir/imports/{import_id}", "get", admin, concrete=import_path)
    call(
        "/fhir/imports/{import_id}/rejections",
        "get",
        admin,
        concrete=f"{import_path}/rejections",
    )
    # A file that is not in the folder: a documented 400.
    missing = call("/fhir/imports", "post", admin, {"files": ["history/missing.ndjson"]})
    assert missing.status_code == 400, missing.body


def walk_privacy(
    call: Any, spec: dict[str, Any], runtime: Any, tenant_id: str, patient_id: str, admin: str
) -> None:
    """The audit trail (by record, by actor, a day's verification, the patient's own log), a
    patient's erasure request, and an admin's erasure of another patient."""
    from chalicelib import clock

    patient = runtime.token("patient", tenant_id, patient_id)
    call("/patients/{patient_id}/audit", "get", admin, concrete=f"/patients/{patient_id}/audit")
    call("/audit", "get", admin, concrete="/audit?actor=someone-unknown")
    day = clock.now().date().isoformat()
    call("/audit/verification", "get", admin, concrete=f"/audit/verification?day={day}")
    call("/me/access-log", "get", patient)
    call("/me/erasure-request", "post", patient)
    staff = runtime.token("staff", tenant_id)
    other = call("/patients", "post", staff, {"name": {"given": "Erase"}, "phone": "13700137001"})
    assert other.status_code == 201, other.body
    erasure_path = f"/patients/{payload(other)['id']}/erasure"
    body = example(spec, "/patients/{patient_id}/erasure", "post")
    call("/patients/{patient_id}/erasure", "post", admin, body, concrete=erasure_path)


def walk_webhooks(call: Any, spec: dict[str, Any], admin: str, staff: str) -> None:
    """A webhook from the spec's example (its host resolves nowhere offline: taken, and judged
    again at every delivery), listed, a dead letter that does not exist, and the webhook gone."""
    created = call("/webhooks", "post", admin, example(spec, "/webhooks", "post"))
    assert created.status_code == 201, created.body
    call("/webhooks", "get", admin)
    call("/webhooks/dead-letters", "get", staff)
    missing = call(
        "/webhooks/dead-letters/{delivery_id}/replay",
        "post",
        staff,
        concrete="/webhooks/dead-letters/d-00000000000000000000/replay",
    )
    assert missing.status_code == 404
    webhook_path = f"/webhooks/{payload(created)['id']}"
    call("/webhooks/{webhook_id}", "delete", admin, concrete=webhook_path)
    call("/local/webhook-receiver", "get", None)


def walk_accounts(
    call: Any, spec: dict[str, Any], runtime: Any, tenant_id: str, patient: Any, admin: str
) -> None:
    """Staff invited and changed; a patient's app account linked with the code sent to it."""
    import re

    from local.identity import password_sign_in, sign_up

    invited = call("/staff", "post", admin, example(spec, "/staff", "post"))
    assert invited.status_code == 201, invited.body
    member = f"/staff/{payload(invited)['id']}"
    call("/staff", "get", admin)
    call("/staff/{staff_id}", "get", admin, concrete=member)
    changed = call(
        "/staff/{staff_id}",
        "patch",
        admin,
        example(spec, "/staff/{staff_id}", "patch"),
        concrete=member,
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.body
    sent = call(
        "/patients/{patient_id}/link-invitations",
        "post",
        admin,
        example(spec, "/patients/{patient_id}/link-invitations", "post"),
        concrete=f"/patients/{patient['id']}/link-invitations",
    )
    assert sent.status_code == 201, sent.body
    text = runtime.outbox.messages(to=patient["phone"])[-1].body
    code = re.search(r"[0-9A-Z]{5}-[0-9A-Z]{5}", text)
    assert code, text
    cognito = runtime.client("cognito-idp")
    email, password = sign_up(cognito, runtime.pool)
    app = password_sign_in(cognito, runtime.pool, email, password)
    assert call("/me/link", "post", app, {"code": code.group(0)}).status_code == 200
    app = password_sign_in(cognito, runtime.pool, email, password)
    call("/me/links", "get", app)
    chosen = call("/me/hospital", "put", app, example(spec, "/me/hospital", "put"))
    assert chosen.status_code == 200, chosen.body


def walk_segments(call: Any, spec: dict[str, Any], staff: str) -> None:
    """Segments and a campaign on one, with the spec's example."""
    call("/segments", "get", staff)
    call("/segments/{segment}/patients", "get", staff, concrete="/segments/chronic/patients")
    missing = call(
        "/segments/{segment}/patients", "get", staff, concrete="/segments/no-such/patients"
    )
    assert missing.status_code == 404
    started = call(
        "/campaigns",
        "post",
        staff,
        example(spec, "/campaigns", "post"),
        headers={"Idempotency-Key": "walk-campaign-0001"},
    )
    assert started.status_code == 201, started.body
    call("/campaigns/{campaign_id}", "get", staff, concrete=f"/campaigns/{payload(started)['id']}")
    call("/campaigns", "get", staff)


def walk_referrals_and_draws(
    call: Any,
    api: Api,
    spec: dict[str, Any],
    runtime: Any,
    tenant_id: str,
    patient_id: str,
    staff: str,
    admin: str,
) -> None:
    """Referrals switched on, the patient's code and a patient registered with it; a draw
    announced from the example and cancelled, another closed, run at its time and verified."""
    from datetime import timedelta

    from chalicelib import clock

    patient = runtime.token("patient", tenant_id, patient_id)
    tenant = payload(api.call("GET", f"/tenants/{tenant_id}", admin))
    switched = api.call(
        "PATCH",
        f"/tenants/{tenant_id}",
        admin,
        {"referrals": {"enabled": True}},
        headers={"If-Match": f'"{tenant["version"]}"'},
    )
    assert switched.status_code == 200, switched.body
    code = payload(call("/me/referral-code", "get", patient))["code"]
    referred = call(
        "/patients",
        "post",
        staff,
        {"name": {"given": "Referred"}, "phone": "13700137002", "referral_code": code},
    )
    assert referred.status_code == 201, referred.body
    assert len(payload(call("/me/referrals", "get", patient))["items"]) == 1

    announced = example(spec, "/draws", "post")
    if announced["draw_at"] <= clock.iso(clock.now() + timedelta(minutes=5)):
        announced = {**announced, "draw_at": clock.iso(clock.now() + timedelta(days=30))}
    first = call("/draws", "post", staff, announced)
    assert first.status_code == 201, first.body
    call("/draws/{draw_id}/cancel", "post", admin, concrete=f"/draws/{payload(first)['id']}/cancel")
    soon = {**announced, "draw_at": clock.iso(clock.now() + timedelta(minutes=1))}
    draw_path = f"/draws/{payload(call('/draws', 'post', staff, soon))['id']}"
    call("/draws/{draw_id}", "get", staff, concrete=draw_path)
    closed = call("/draws/{draw_id}/close", "post", staff, concrete=f"{draw_path}/close")
    assert payload(closed)["eligible_count"] >= 1, closed.body
    # Not yet its time, nothing revealed yet: documented 409s.
    assert (
        call("/draws/{draw_id}/run", "post", admin, concrete=f"{draw_path}/run").status_code == 409
    )
    hidden = call(
        "/draws/{draw_id}/verification", "get", staff, concrete=f"{draw_path}/verification"
    )
    assert hidden.status_code == 409
    runtime.clock.advance(timedelta(minutes=2))
    ran = call("/draws/{draw_id}/run", "post", admin, concrete=f"{draw_path}/run")
    assert ran.status_code == 200, ran.body
    call("/draws/{draw_id}/verification", "get", staff, concrete=f"{draw_path}/verification")
    call("/draws", "get", staff)
    assert payload(call("/me/draws", "get", patient))["items"], "the patient is a vip member"


def walk_loyalty(
    call: Any, spec: dict[str, Any], runtime: Any, tenant_id: str, patient_id: str, staff: str
) -> None:
    """Rules, the catalogue, an adjustment, a redemption and its voucher taken at the desk."""
    admin = runtime.token("admin", tenant_id)
    patient = runtime.token("patient", tenant_id, patient_id)
    assert (
        call("/loyalty/rules", "put", admin, example(spec, "/loyalty/rules", "put")).status_code
        == 200
    )
    call("/loyalty/rules", "get", patient)
    reward = "/rewards/check-up-basic"
    call(
        "/rewards/{reward_id}",
        "put",
        admin,
        example(spec, "/rewards/{reward_id}", "put"),
        concrete=reward,
    )
    call(
        "/rewards/{reward_id}/restock",
        "post",
        admin,
        example(spec, "/rewards/{reward_id}/restock", "post"),
        concrete=f"{reward}/restock",
    )
    call("/rewards", "get", patient)
    adjustments = f"/patients/{patient_id}/points/adjustments"
    for body in (
        example(spec, "/patients/{patient_id}/points/adjustments", "post"),
        {"points": 300, "reason": "Points carried over from the paper card"},
    ):
        given = call(
            "/patients/{patient_id}/points/adjustments", "post", staff, body, concrete=adjustments
        )
        assert given.status_code == 201, given.body
    call("/patients/{patient_id}/points", "get", staff, concrete=f"/patients/{patient_id}/points")
    call("/me/points", "get", patient)
    call("/me/points/history", "get", patient)
    redeemed = call("/me/redemptions", "post", patient, example(spec, "/me/redemptions", "post"))
    assert redeemed.status_code == 201, redeemed.body
    call("/me/vouchers", "get", patient)
    code = payload(redeemed)["code"]
    used = call("/vouchers/{code}/use", "post", staff, concrete=f"/vouchers/{code}/use")
    assert used.status_code == 200, used.body


def walk_complaints(
    call: Any, spec: dict[str, Any], runtime: Any, tenant_id: str, patient_id: str, staff: str
) -> None:
    """A patient's complaint (the example's appointment is not theirs: without it) and staff's
    for them; listed, read, resolved with the example's note and closing message."""
    patient = runtime.token("patient", tenant_id, patient_id)
    body = {k: v for k, v in example(spec, "/complaints", "post").items() if k != "appointment_id"}
    filed = call("/complaints", "post", patient, body)
    assert filed.status_code == 201, filed.body
    by_staff = call("/complaints", "post", staff, {**body, "patient_id": patient_id})
    assert by_staff.status_code == 201, by_staff.body
    call("/me/complaints", "get", patient)
    call("/complaints", "get", staff, concrete="/complaints?status=open&limit=1")
    path = f"/complaints/{payload(filed)['id']}"
    call("/complaints/{complaint_id}", "get", staff, concrete=path)
    status = example(spec, "/complaints/{complaint_id}/status", "post")
    resolved = call(
        "/complaints/{complaint_id}/status", "post", staff, status, concrete=f"{path}/status"
    )
    assert resolved.status_code == 200, resolved.body
    again = call(
        "/complaints/{complaint_id}/status",
        "post",
        staff,
        {"status": "in_progress"},
        concrete=f"{path}/status",
    )
    assert again.status_code == 409, again.body


def test_examples_pass_through_the_api(runtime: Any, api: Api, spec: dict[str, Any]) -> None:
    """Walks every operation in a realistic order with the spec's own examples."""
    operator = runtime.token("operator")
    tenant_example = example(spec, "/tenants", "post")
    tenant_id = tenant_example["id"]
    staff, admin = runtime.token("staff", tenant_id), runtime.token("admin", tenant_id)
    done: set[tuple[str, str]] = set()
    keyed: list[tuple[str, str, str | None, Any, str, dict[str, str]]] = []

    def call(
        path: str,
        method: str,
        token: str | None,
        body: Any = None,
        concrete: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if takes_idempotency_key(spec, path, method):
            headers = {"Idempotency-Key": f"walk-{uuid.uuid4().hex}", **(headers or {})}
        response = api.call(method.upper(), concrete or path, token, body, headers)
        if headers and "Idempotency-Key" in headers and response.status_code < 300:
            keyed.append((path, method, token, body, concrete or path, headers))
        check_response(spec, path, method, response)
        check_etag(spec, path, method, response)
        if body is not None and body == documented_example(spec, path, method):
            # The spec's own example must work, not only fail in a documented way.
            assert 200 <= response.status_code < 300, (method, path, response.body)
        done.add((path, method))
        return response

    assert call("/tenants", "post", operator, tenant_example).status_code == 201
    tenant_path = f"/tenants/{tenant_id}"
    call("/tenants/{tenant_id}", "get", admin, concrete=tenant_path)
    call(
        "/tenants/{tenant_id}",
        "patch",
        admin,
        example(spec, "/tenants/{tenant_id}", "patch"),
        concrete=tenant_path,
        headers={"If-Match": '"1"'},
    )
    created = call("/patients", "post", staff, example(spec, "/patients", "post"))
    assert created.status_code == 201
    patient_path = f"/patients/{payload(created)['id']}"
    call("/patients", "get", staff)
    call("/patients/search", "post", staff, example(spec, "/patients/search", "post"))
    call("/journeys/preview", "post", staff, example(spec, "/journeys/preview", "post"))
    call("/patients/{patient_id}", "get", staff, concrete=patient_path)
    call(
        "/patients/{patient_id}",
        "patch",
        staff,
        example(spec, "/patients/{patient_id}", "patch"),
        concrete=patient_path,
        headers={"If-Match": '"1"'},
    )
    # Error responses match the documented error shape too.
    call(
        "/patients/{patient_id}",
        "patch",
        staff,
        {"bogus": 1},
        concrete=patient_path,
        headers={"If-Match": '"2"'},
    )
    call("/patients/{patient_id}", "get", None, concrete=patient_path)
    walk_segments(call, spec, staff)
    walk_accounts(call, spec, runtime, tenant_id, payload(created), admin)
    walk_booking(call, spec, runtime, tenant_id, payload(created)["id"], staff, admin)
    walk_fhir(call, spec, runtime, tenant_id, payload(created)["id"], staff)
    call("/analytics/{measure}", "get", admin, concrete="/analytics/appointments?group_by=type")
    call("/analytics/{measure}", "get", admin, concrete="/analytics/messages?granularity=week")
    call("/analytics/overview", "get", admin)
    call("/analytics/drifting-away", "get", admin)
    unknown = call("/analytics/{measure}", "get", admin, concrete="/analytics/happiness")
    assert unknown.status_code == 404, unknown.body
    walk_loyalty(call, spec, runtime, tenant_id, payload(created)["id"], staff)
    walk_privacy(call, spec, runtime, tenant_id, payload(created)["id"], admin)
    walk_webhooks(call, spec, admin, staff)
    walk_complaints(call, spec, runtime, tenant_id, payload(created)["id"], staff)
    walk_referrals_and_draws(
        call, api, spec, runtime, tenant_id, payload(created)["id"], staff, admin
    )
    call("/patients/{patient_id}", "delete", staff, concrete=patient_path)
    call("/openapi.json", "get", None)
    call("/local/clock", "get", None)
    call("/local/clock", "post", None, example(spec, "/local/clock", "post"))
    call("/local/outbox", "get", None)
    call("/local/dead-letters", "get", None)
    call("/local/sms-reply", "post", None, example(spec, "/local/sms-reply", "post"))
    runtime.settle()  # the stream's records delivered: the counters are current
    rebuilt = call(
        "/local/analytics/rebuild", "post", None, {"tenant_id": tenant_id, "check_only": True}
    )
    assert payload(rebuilt)["differing"] == 0, rebuilt.body
    call("/local/sign-in", "post", None, example(spec, "/local/sign-in", "post"))
    # Last: the example hospital is the example tenant, whose stack is then deleted.
    onboarded = call("/local/hospitals", "post", None, example(spec, "/local/hospitals", "post"))
    assert payload(onboarded)["request"] == "Create", onboarded.body
    call("/local/hospitals/{tenant_id}", "delete", None, concrete=f"/local/hospitals/{tenant_id}")

    every = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
    assert done == every, f"operations not exercised: {every - done}"
    reuse_every_idempotency_key(api, spec, keyed)


def check_etag(spec: dict[str, Any], path: str, method: str, response: Any) -> None:
    """A versioned record comes with its version as ETag, documented, whatever the route."""
    record = payload(response) if 200 <= response.status_code < 300 else None
    if not isinstance(record, dict) or "version" not in record:
        return
    assert response.headers.get("ETag") == f'"{record["version"]}"', (method, path)
    success = spec["paths"][path][method]["responses"][str(response.status_code)]
    assert "ETag" in success.get("headers", {}), (method, path)


def takes_idempotency_key(spec: dict[str, Any], path: str, method: str) -> bool:
    parameters = spec["paths"][path][method].get("parameters", [])
    return any(p["name"] == "Idempotency-Key" for p in parameters)


def reuse_every_idempotency_key(
    api: Api, spec: dict[str, Any], keyed: list[tuple[str, str, str | None, Any, str, Any]]
) -> None:
    """Each key again with another request (the same JSON, laid out otherwise: other bytes):
    409 idempotency_key_reused, documented for that operation."""
    reused = set()
    for path, method, token, body, concrete, headers in keyed:
        other = json.dumps(body, indent=1).encode()
        response = api.call(method.upper(), concrete, token, other, headers)
        assert response.status_code == 409, (method, path, response.body)
        assert payload(response)["error"]["code"] == "idempotency_key_reused"
        check_response(spec, path, method, response)
        documented = spec["paths"][path][method]["x-careloop-error-codes"]["409"]
        assert "idempotency_key_reused" in documented, (method, path)
        reused.add((path, method))
    idempotent = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS and takes_idempotency_key(spec, path, method)
    }
    assert reused == idempotent
