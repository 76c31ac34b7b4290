"""A year of recall on the virtual clock, on a runtime of its own with the daily recall sweep
running on the clock: a silent chronic patient is asked again every interval, a rule's cap hands
the patient over to staff, and a rule saved after patients carry its tag recalls them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import START, Api, payload, tenant_body

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
    items = payload(api.call("GET", "/tasks?limit=100", runtime.token("staff", TENANT)))["items"]
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
