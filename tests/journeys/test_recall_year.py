"""A year of recall on the virtual clock, on a runtime of its own with the daily recall sweep
running on the clock: a silent chronic patient is asked again every interval, a rule's cap hands
the patient over to staff, and a rule saved after patients carry its tag recalls them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import START, Api, payload, tenant_body
from tests.journeys.support import iso, open_cardiology

pytestmark = pytest.mark.journey

TENANT = "t-5ecall0000"
RULE = {
    "name": "Diabetes review every 90 days",
    "match": {"condition": "diabetes"},
    "after_days": 90,
    "book": {"department": "cardiology", "appointment_type": "follow_up"},
}


@pytest.fixture
def hospital(own_runtime: Any, api: Api) -> Iterator[Any]:
    import app
    from local.schedules import ScheduleRunner

    operator = own_runtime.token("operator")
    created = api.call("POST", "/tenants", operator, tenant_body(TENANT))
    assert created.status_code == 201, created.body
    runner = ScheduleRunner(app, own_runtime.clock, only=("recall_sweep",)).start()
    yield own_runtime
    runner.stop()


def put_rule(api: Api, runtime: Any, rule: dict[str, Any]) -> None:
    saved = api.call("PUT", "/recall-rules/diabetes", runtime.token("admin", TENANT), rule)
    assert saved.status_code == 200, saved.body
    runtime.settle()


def diabetic(api: Api, runtime: Any, phone: str) -> dict[str, Any]:
    body = {
        "name": {"given": "Wei", "family": "Zhang"},
        "phone": phone,
        "medical": {"conditions": ["diabetes"]},
    }
    response = api.call("POST", "/patients", runtime.token("staff", TENANT), body)
    assert response.status_code == 201, response.body
    runtime.settle()
    created: dict[str, Any] = payload(response)
    return created


def invitations(runtime: Any, phone: str) -> list[str]:
    return [
        m.sent_at
        for m in runtime.outbox.messages(to=f"+86{phone}", channel="sms")
        if "您该来复诊了" in m.body
    ]


def recall_view(api: Api, runtime: Any, patient: dict[str, Any]) -> dict[str, Any]:
    items = payload(
        api.call("GET", f"/patients/{patient['id']}/care-journeys", runtime.token("staff", TENANT))
    )["items"]
    [recall] = [i for i in items if i["kind"] == "recall"]
    found: dict[str, Any] = recall
    return found


def tasks(api: Api, runtime: Any, patient: dict[str, Any]) -> list[str]:
    items = payload(api.call("GET", "/tasks", runtime.token("staff", TENANT)))["items"]
    return [t["kind"] for t in items if t["patient_id"] == patient["id"]]


def test_a_silent_patient_is_asked_again_every_interval(hospital: Any, api: Api) -> None:
    put_rule(api, hospital, RULE)
    patient = diabetic(api, hospital, "13900000301")
    hospital.clock.advance(timedelta(days=365))

    assert [at[:10] for at in invitations(hospital, "13900000301")] == [
        (START + timedelta(days=days)).date().isoformat() for days in (90, 180, 270, 360)
    ]
    recall = recall_view(api, hospital, patient)
    assert [c["outcome"] for c in recall["cycles"]] == ["unconverted"] * 3
    assert (recall["status"], recall["unanswered_cycles"]) == ("invited", 3)
    assert tasks(api, hospital, patient) == ["recall_unconverted"] * 3


def test_a_capped_rule_hands_the_patient_over_for_a_phone_call(hospital: Any, api: Api) -> None:
    put_rule(api, hospital, {**RULE, "repeat": {"max_cycles": 2, "then": "phone_call"}})
    patient = diabetic(api, hospital, "13900000302")
    hospital.clock.advance(timedelta(days=365))

    assert len(invitations(hospital, "13900000302")) == 2
    recall = recall_view(api, hospital, patient)
    assert (recall["status"], recall["unanswered_cycles"]) == ("handed_over", 2)
    assert sorted(tasks(api, hospital, patient)) == ["recall_phone_call", "recall_unconverted"]


def test_a_rule_that_stops_after_its_cap_ends_quietly(hospital: Any, api: Api) -> None:
    put_rule(api, hospital, {**RULE, "repeat": {"max_cycles": 1, "then": "stop"}})
    patient = diabetic(api, hospital, "13900000303")
    hospital.clock.advance(timedelta(days=365))

    assert len(invitations(hospital, "13900000303")) == 1
    assert recall_view(api, hospital, patient)["status"] == "stopped"
    assert tasks(api, hospital, patient) == ["recall_unconverted"]


def test_a_rule_saved_after_its_patients_were_tagged_recalls_them(hospital: Any, api: Api) -> None:
    patient = diabetic(api, hospital, "13900000304")  # tagged before any rule exists
    put_rule(api, hospital, RULE)
    hospital.clock.advance(timedelta(days=365))

    sent = [at[:10] for at in invitations(hospital, "13900000304")]
    # Due the day the rule was saved (the tag's history is unknown): the next morning's sweep,
    # then every 90 days.
    assert sent == [
        (START + timedelta(days=days)).date().isoformat() for days in (1, 90, 180, 270, 360)
    ]
    assert recall_view(api, hospital, patient)["why"] == "unconverted"


def test_a_visit_rule_saved_later_counts_from_the_last_visit(hospital: Any, api: Api) -> None:
    import app
    from local.lambdas import LambdaContext
    from tests.journeys.support import EVENTS

    admin, staff = hospital.token("admin", TENANT), hospital.token("staff", TENANT)
    open_cardiology(api, admin)
    body = {"name": {"given": "Wei", "family": "Zhang"}, "phone": "13900000305"}
    patient = payload(api.call("POST", "/patients", staff, body))
    token = hospital.token("patient", TENANT, patient["id"])
    visit_start = START + timedelta(days=1, hours=1)  # 10:00 in Shanghai tomorrow
    slot = {"schedule_id": "cardio", "start": iso(visit_start)}
    booked = payload(api.call("POST", "/appointments", token, {"slot": slot, "type": "procedure"}))
    hospital.clock.set(visit_start + timedelta(minutes=30))
    assert api.call("POST", f"/appointments/{booked['id']}/check-in", staff).status_code == 200
    assert api.call("POST", f"/appointments/{booked['id']}/fulfil", staff).status_code == 200
    event = json.loads((EVENTS / "sns-journey-event-fulfilled.json").read_text())
    event["Records"][0]["Sns"]["Message"] = json.dumps(
        {
            "type": "appointment.fulfilled",
            "tenant_id": TENANT,
            "appointment_id": booked["id"],
            "patient_id": patient["id"],
            "department": "cardiology",
            "appointment_type": "procedure",
            "start": booked["start"],
        }
    )
    app.journey_event(event, LambdaContext(function_name="journey_event", invoked_function_arn=""))

    hospital.clock.advance(timedelta(days=10))  # the rule comes ten days after the visit
    recheck = {
        "name": "Re-check 30 days after a procedure",
        "match": {"appointment_type": "procedure"},
        "after_days": 30,
        "book": {"department": "cardiology", "appointment_type": "follow_up"},
    }
    saved = api.call("PUT", "/recall-rules/recheck", admin, recheck)
    assert saved.status_code == 200, saved.body
    hospital.settle()
    [recall] = [
        i
        for i in payload(api.call("GET", f"/patients/{patient['id']}/care-journeys", staff))[
            "items"
        ]
        if i["kind"] == "recall"
    ]
    assert (recall["status"], recall["due_date"]) == ("scheduled", "2026-12-24")
    assert recall["why"] == "rule saved"


def test_a_backfill_pages_through_many_patients_at_a_bounded_rate(
    hospital: Any, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.adapters.executions import execution_arn
    from chalicelib.domain.recall import backfill_name
    from chalicelib.services import recall
    from chalicelib.services.registry import services
    from chalicelib.settings import get_settings

    monkeypatch.setattr(recall, "BACKFILL_PAGE", 10)  # three pages of a few patients
    staff = hospital.token("staff", TENANT)
    many = 25
    for n in range(many):
        body = {"name": {"given": f"P{n}"}, "medical": {"conditions": ["diabetes"]}}
        assert (
            api.call("POST", "/patients", staff, body | {"phone": f"139{n:08d}"}).status_code == 201
        )
    put_rule(api, hospital, RULE)
    version = payload(api.call("GET", "/recall-rules/diabetes", staff))["version"]
    sfn = hospital.client("stepfunctions")
    arn = execution_arn(
        get_settings().recall_backfill_arn, backfill_name(TENANT, "diabetes", version, 0)
    )
    from chalicelib.store.care import CareRepository

    def due_now() -> int:
        return len(list(CareRepository().recalls_due(TENANT, START.date().isoformat())))

    made_due = [due_now()]  # the first page at once, then a page a second
    for _ in range(3):
        hospital.clock.advance(timedelta(seconds=1))
        made_due.append(due_now())
    assert made_due == [10, 20, 25, 25]
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"

    admin = hospital.token("admin", TENANT)
    etag = api.call("GET", "/recall-rules/diabetes", admin).headers["ETag"]
    renamed = {**RULE, "name": "Renamed"}  # a new version: a backfill of its own
    resaved = api.call("PUT", "/recall-rules/diabetes", admin, renamed, headers={"If-Match": etag})
    assert resaved.status_code == 200, resaved.body
    hospital.clock.advance(timedelta(seconds=5))
    assert services().recall.sweep_tenant(TENANT, START.date()) == many, "each due once"


def test_a_backfill_that_could_not_start_is_started_by_the_next_sweep(
    hospital: Any, api: Api
) -> None:
    from unittest.mock import patch

    from chalicelib.adapters.executions import Executions
    from chalicelib.domain.errors import DependencyUnavailable

    patient = diabetic(api, hospital, "13900000306")
    original = Executions.start

    def throttled_backfills(self: Executions, machine_arn: str, name: str, payload: Any) -> bool:
        if "recall-backfill" in machine_arn:
            raise DependencyUnavailable("Step Functions is throttling")
        return original(self, machine_arn, name, payload)

    with patch.object(Executions, "start", throttled_backfills):
        put_rule(api, hospital, RULE)  # saved all the same
    hospital.clock.advance(timedelta(days=1))  # the sweep starts it; due today
    assert recall_view(api, hospital, patient)["status"] == "scheduled"
    hospital.clock.advance(timedelta(days=1))
    assert len(invitations(hospital, "13900000306")) == 1
