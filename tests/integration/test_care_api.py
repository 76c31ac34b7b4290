"""Care plans, recall rules and care events over HTTP: bad input named field by field, other
tenants' data invisible, and an urgent answer alerting the department's own topic."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, error_paths, payload

PLAN = {
    "name": "Recovery",
    "trigger": {"event": "discharge"},
    "check_ins": [{"day": 2, "questionnaire": "post-discharge"}],
}


def test_care_plans_are_checked_when_saved(api: Api, tenant: Any) -> None:
    bad = {
        **PLAN,
        "trigger": {"event": "discharge", "departments": ["nowhere"]},
        "check_ins": [{"day": 2, "questionnaire": "no-such-form"}],
        "send_time": "25:00",
    }
    schema_fail = api.call("PUT", "/care-plans/recovery", tenant.admin, bad)
    assert schema_fail.status_code == 400
    assert error_paths(schema_fail) == ["$.send_time"]
    del bad["send_time"]
    rule_fail = api.call("PUT", "/care-plans/recovery", tenant.admin, bad)
    assert rule_fail.status_code == 400
    assert error_paths(rule_fail) == ["$.trigger.departments[0]", "$.check_ins[0].questionnaire"]
    saved = api.call("PUT", "/care-plans/recovery", tenant.admin, PLAN)
    assert saved.status_code == 200, saved.body
    stale = api.call("PUT", "/care-plans/recovery", tenant.admin, PLAN, headers={"If-Match": '"9"'})
    assert stale.status_code == 409
    assert api.call("PUT", "/care-plans/recovery", tenant.staff, PLAN).status_code == 403
    assert api.call("PUT", "/care-plans/Bad_Id", tenant.admin, PLAN).status_code == 400
    assert api.call("GET", "/care-plans/missing", tenant.staff).status_code == 404
    assert [p["id"] for p in payload(api.call("GET", "/care-plans", tenant.staff))["items"]] == [
        "recovery"
    ]


def test_recall_rules_are_checked_when_saved(api: Api, tenant: Any) -> None:
    rule = {
        "name": "r",
        "match": {"condition": "diabetes", "any_visit": True},
        "after_days": 90,
        "book": {"department": "cardiology"},
    }
    two_matches = api.call("PUT", "/recall-rules/r1", tenant.admin, rule)
    assert two_matches.status_code == 400 and error_paths(two_matches) == ["$.match"]
    rule["match"] = {"condition": "diabetes"}
    rule["book"] = {"department": "nowhere"}
    rule["sequence"] = {"reminder_after_days": 20, "last_call_after_days": 10}
    wrong = api.call("PUT", "/recall-rules/r1", tenant.admin, rule)
    assert wrong.status_code == 400
    assert error_paths(wrong) == ["$.book.department", "$.sequence"]
    rule["book"] = {"department": "cardiology"}
    del rule["sequence"]
    assert api.call("PUT", "/recall-rules/r1", tenant.admin, rule).status_code == 200


def test_care_events_name_what_is_wrong_and_stay_in_their_tenant(
    api: Api, make_tenant: Any, make_patient: Any
) -> None:
    from chalicelib import clock

    tenant, other = make_tenant(), make_tenant()
    patient = make_patient(tenant)
    path = f"/patients/{patient['id']}/care-events"
    now = clock.iso(clock.now())
    event = {"type": "discharge", "department": "cardiology", "occurred_at": now}
    assert api.call("POST", path, tenant.staff, {**event, "type": "lunch"}).status_code == 400
    future = api.call("POST", path, tenant.staff, {**event, "occurred_at": "2999-01-01T00:00:00Z"})
    assert future.status_code == 400 and error_paths(future) == ["$.occurred_at"]
    unknown = api.call("POST", path, tenant.staff, {**event, "department": "x-ray"})
    assert unknown.status_code == 400 and error_paths(unknown) == ["$.department"]
    unknown_plan = api.call("POST", path, tenant.staff, {**event, "care_plan": "nope"})
    assert unknown_plan.status_code == 404
    assert api.call("POST", path, other.staff, event).status_code == 404, "another tenant's"
    patient_token = api.call("POST", path, None, event)
    assert patient_token.status_code == 401
    nothing = api.call("POST", path, tenant.staff, event)
    assert nothing.status_code == 201 and payload(nothing)["journeys"] == [], "no plan: no journey"
    journeys = api.call("GET", f"/patients/{patient['id']}/care-journeys", other.staff)
    assert journeys.status_code == 404


def test_an_urgent_answer_alerts_the_departments_own_topic(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    sns = runtime.client("sns")
    tenant = make_tenant()
    topic = sns.create_topic(Name=f"careloop-local-{tenant.id}-alerts-cardiology")["TopicArn"]
    foreign = sns.create_topic(Name=f"careloop-local-{tenant.id}-east-alerts")["TopicArn"]
    refused = api.call(
        "PATCH",
        f"/tenants/{tenant.id}",
        tenant.admin,
        {"departments": [{"id": "cardiology", "name": "心内科", "alert_topic_arn": foreign}]},
        headers={"If-Match": '"1"'},
    )
    assert refused.status_code == 400
    assert error_paths(refused) == ["$.departments[0].alert_topic_arn"]
    accepted = api.call(
        "PATCH",
        f"/tenants/{tenant.id}",
        tenant.admin,
        {"departments": [{"id": "cardiology", "name": "心内科", "alert_topic_arn": topic}]},
        headers={"If-Match": '"1"'},
    )
    assert accepted.status_code == 200, accepted.body
    patient = make_patient(tenant, departments=["cardiology"])
    token = runtime.token("patient", tenant.id, patient["id"])
    started = api.call(
        "POST",
        "/questionnaires/post-discharge/responses",
        token,
        {"answers": {"medication": "all", "new_symptoms": False, "breathless": True}},
    )
    assert started.status_code == 201, started.body
    submitted = api.call(
        "POST", f"/me/questionnaire-responses/{payload(started)['id']}/submit", token
    )
    assert payload(submitted)["risk"] == "urgent"
    [task] = [
        t
        for t in payload(api.call("GET", "/tasks", tenant.staff))["items"]
        if t["patient_id"] == patient["id"]
    ]
    assert (task["kind"], task["priority"]) == ("urgent_answer", "urgent")
    alerts = [m for m in runtime.outbox.messages(channel="topic") if m.to == topic]
    assert len(alerts) == 1 and task["id"] in alerts[0].body
