"""Recall on the virtual clock: a condition tag makes a patient due; the daily sweep (the
scheduled handler, fed a recorded EventBridge event) starts one recall journey per due patient,
once however often it runs; booking what the rule asks for converts the recall."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any
from unittest.mock import patch

import pytest

from tests.conftest import Api, ClinicCtx, payload
from tests.journeys.support import EVENTS, iso, local_moment, move_to, run_schedule, unique_phone

pytestmark = pytest.mark.journey
RULE = {
    "name": "Diabetes review every 90 days",
    "match": {"condition": "diabetes"},
    "after_days": 90,
    "book": {"department": "cardiology", "appointment_type": "follow_up"},
}


def sweep(runtime: Any) -> dict[str, Any]:
    return run_schedule(runtime, "recall_sweep")


def recalls(api: Api, clinic: ClinicCtx, patient: dict[str, Any]) -> list[dict[str, Any]]:
    items = payload(
        api.call("GET", f"/patients/{patient['id']}/care-journeys", clinic.tenant.staff)
    )["items"]
    return [i for i in items if i["kind"] == "recall"]


@pytest.fixture
def diabetic(runtime: Any, api: Api, make_clinic: Any, make_patient: Any) -> Any:
    def make() -> tuple[ClinicCtx, dict[str, Any], str]:
        clinic = make_clinic(capacity=5)
        saved = api.call("PUT", "/recall-rules/diabetes-90d", clinic.tenant.admin, RULE)
        assert saved.status_code == 200, saved.body
        phone = unique_phone()
        patient = make_patient(clinic.tenant, phone=phone, medical={"conditions": ["diabetes"]})
        return clinic, patient, phone

    return make


def test_due_invitation_then_a_booking_converts(runtime: Any, api: Api, diabetic: Any) -> None:
    from chalicelib import clock

    clinic, patient, phone = diabetic()
    [recall] = recalls(api, clinic, patient)
    due = (clock.now() + timedelta(days=90)).date()
    assert (recall["status"], recall["due_date"]) == ("scheduled", due.isoformat())

    move_to(runtime, local_moment(days=90, hour=9, minute=30))
    assert sweep(runtime)["started"] >= 1
    [recall] = recalls(api, clinic, patient)
    assert recall["status"] == "invited"
    move_to(runtime, local_moment(days=0, hour=10, minute=1))
    sms = runtime.outbox.messages(to=f"+86{phone}", channel="sms")
    assert len(sms) == 1 and "/book?ref=rc-" in sms[0].body
    assert "cardiology" not in sms[0].body, "where the patient is asked back stays out of texts"

    token = runtime.token("patient", clinic.tenant.id, patient["id"])
    ref = sms[0].body.rsplit("ref=", 1)[1].split()[0]
    invitation = api.call("GET", f"/me/booking-invitations/{ref}", token)
    assert payload(invitation) == {
        "ref": ref,
        "department": "cardiology",
        "appointment_type": "follow_up",
    }
    stranger = runtime.token("patient", clinic.tenant.id, "p-0000000000000000")
    assert api.call("GET", f"/me/booking-invitations/{ref}", stranger).status_code == 404
    start = local_moment(days=3, hour=10)
    booked = api.call(
        "POST",
        "/appointments",
        token,
        {"slot": {"schedule_id": clinic.schedule_id, "start": iso(start)}, "type": "follow_up"},
    )
    assert booked.status_code == 201, booked.body
    runtime.settle()
    [recall] = recalls(api, clinic, patient)
    assert (recall["status"], recall["appointment_id"]) == ("converted", payload(booked)["id"])
    move_to(runtime, local_moment(days=25, hour=12))
    assert len(runtime.outbox.messages(to=f"+86{phone}", channel="sms")) == 1, (
        "no reminder or last call after converting"
    )
    tasks = payload(api.call("GET", "/tasks", clinic.tenant.staff))["items"]
    assert [t for t in tasks if t["kind"] == "recall_unconverted"] == []


def test_unconverted_recall_ends_with_a_staff_task(runtime: Any, api: Api, diabetic: Any) -> None:
    clinic, patient, phone = diabetic()
    move_to(runtime, local_moment(days=90, hour=9, minute=30))
    sweep(runtime)
    move_to(runtime, local_moment(days=22, hour=12))
    bodies = [m.body for m in runtime.outbox.messages(to=f"+86{phone}", channel="sms")]
    assert len(bodies) == 3, "invitation, reminder, last call"
    [task] = [
        t
        for t in payload(api.call("GET", "/tasks", clinic.tenant.staff))["items"]
        if t["patient_id"] == patient["id"]
    ]
    assert (task["kind"], task["recall_rule"]) == ("recall_unconverted", "diabetes-90d")
    [recall] = recalls(api, clinic, patient)
    assert [c["outcome"] for c in recall["cycles"]] == ["unconverted"]
    # The next cycle falls due one interval after this one's due date.
    assert (recall["status"], recall["unanswered_cycles"]) == ("scheduled", 1)
    first_due = date.fromisoformat(recall["cycles"][0]["due_date"])
    assert recall["due_date"] == (first_due + timedelta(days=90)).isoformat()


def test_the_sweep_run_twice_starts_each_journey_once(
    runtime: Any, api: Api, diabetic: Any
) -> None:
    clinic, _, _ = diabetic()
    move_to(runtime, local_moment(days=90, hour=9, minute=30))
    executions = runtime.client("stepfunctions")
    from chalicelib.settings import get_settings

    machine = get_settings().recall_journey_arn

    def started() -> int:
        listed = executions.list_executions(stateMachineArn=machine, maxResults=1000)
        return sum(1 for e in listed["executions"] if e["name"].startswith(f"{clinic.tenant.id}-"))

    sweep(runtime)
    assert started() == 1
    assert sweep(runtime)["started"] == 0
    assert started() == 1


def test_losing_the_condition_cancels_a_recall_not_yet_started(
    runtime: Any, api: Api, diabetic: Any
) -> None:
    clinic, patient, _ = diabetic()
    changed = api.call(
        "PATCH",
        f"/patients/{patient['id']}",
        clinic.tenant.staff,
        {"medical": {"conditions": ["hypertension"]}},
        headers={"If-Match": f'"{patient["version"]}"'},
    )
    assert changed.status_code == 200, changed.body
    [recall] = recalls(api, clinic, patient)
    assert recall["status"] == "cancelled"


def test_a_thousand_due_patients_swept_by_query_not_scan(runtime: Any, make_tenant: Any) -> None:
    """The sweep reads the due index a page at a time; it never scans the table."""
    from chalicelib import clock
    from chalicelib.adapters.executions import Executions
    from chalicelib.services.registry import services
    from chalicelib.store.care import RECALL, CareRepository
    from local.meter import meter

    tenant = make_tenant()
    store = CareRepository()
    today = clock.now().date().isoformat()
    for number in range(1000):
        store.put(
            tenant.id,
            RECALL,
            {
                "id": "bulk-rule",
                "kind": "recall",
                "rule_id": "bulk-rule",
                "patient_id": f"p-{number:016x}",
                "status": "scheduled",
                "due_date": today,
                "updated_at": clock.iso(clock.now()),
            },
            None,
        )
    started: list[str] = []
    original = Executions.start

    def record(self: Executions, machine: str, name: str, payload: dict[str, Any]) -> bool:
        if payload["tenant_id"] == tenant.id:
            started.append(name)
            return True
        return original(self, machine, name, payload)

    before = meter.snapshot()
    with patch.object(Executions, "start", record):
        assert services().recall.sweep_tenant(tenant.id, clock.now().date()) == 1000
    after = meter.snapshot()
    assert len(set(started)) == 1000, "one journey per patient, each under its own name"
    assert after.get("dynamodb:Scan", 0) == before.get("dynamodb:Scan", 0), "no Scan"
    queries = after.get("dynamodb:Query", 0) - before.get("dynamodb:Query", 0)
    assert 10 <= queries <= 12, f"{queries} queries: pages of 100 from the due index"
    rest = list(store.recalls_due(tenant.id, today))
    assert rest == [], "every started recall left the due index"


def test_each_recall_cycle_is_its_own_execution(runtime: Any, api: Api, diabetic: Any) -> None:
    """A cycle's journey ends with the cycle (a Standard execution lives at most a year): the
    visit that answers it starts a new count, and the next cycle runs under a new name."""
    import app
    from chalicelib.settings import get_settings
    from local.lambdas import LambdaContext

    clinic, patient, _ = diabetic()
    sfn = runtime.client("stepfunctions")
    machine = get_settings().recall_journey_arn

    def executions() -> dict[str, str]:
        listed = sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]
        return {
            e["name"]: e["status"] for e in listed if e["name"].startswith(f"{clinic.tenant.id}-")
        }

    move_to(runtime, local_moment(days=90, hour=9, minute=30))
    sweep(runtime)
    [first] = executions()
    token = runtime.token("patient", clinic.tenant.id, patient["id"])
    start = local_moment(days=3, hour=10)
    booked = api.call(
        "POST",
        "/appointments",
        token,
        {"slot": {"schedule_id": clinic.schedule_id, "start": iso(start)}, "type": "follow_up"},
    )
    assert booked.status_code == 201, booked.body
    # The visit takes place: the appointment journey's event restarts the count.
    recorded = json.loads((EVENTS / "sns-journey-event-fulfilled.json").read_text())
    recorded["Records"][0]["Sns"]["Message"] = json.dumps(
        {
            "type": "appointment.fulfilled",
            "tenant_id": clinic.tenant.id,
            "appointment_id": payload(booked)["id"],
            "patient_id": patient["id"],
            "department": "cardiology",
            "appointment_type": "follow_up",
            "start": payload(booked)["start"],
        }
    )
    move_to(runtime, start + timedelta(hours=3))
    context = LambdaContext(function_name="journey_event", invoked_function_arn="")
    assert app.journey_event(recorded, context) == {"aftercare": [], "recalls": 1}
    [recall] = recalls(api, clinic, patient)
    due = (start + timedelta(days=90)).date().isoformat()  # the visit's day in Shanghai + 90
    assert (recall["status"], recall["due_date"]) == ("scheduled", due)

    move_to(runtime, local_moment(days=90, hour=9, minute=30))
    assert sweep(runtime)["started"] >= 1
    cycles = executions()
    assert len(cycles) == 2, cycles
    [second] = set(cycles) - {first}
    assert second != first
    assert cycles[first] == "SUCCEEDED", "the first cycle's execution ended with its cycle"
    assert cycles[second] == "RUNNING"
