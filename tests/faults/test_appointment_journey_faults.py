"""The fault tier: seeded faults injected into the running product while 20 booked patients go
through every step of the appointment journey (confirmation, three reminders, the answer's
deadline, the visit check, two no-show follow-ups and the staff task), and what must hold:

- no due message lost: each is sent, suppressed or skipped with a reason, or named in a staff
  task (`unknown`, or a step that failed after every retry);
- no message twice: the outbox holds exactly the messages the log says left;
- no execution FAILED without a staff task, no appointment still `booked` after its visit
  check, no delivery record left `sending`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from chalicelib import clock
from local.faults import Profile
from tests.conftest import Api, payload
from tests.journeys.support import iso, local_moment, move_to, repair_sweep, unique_phone

pytestmark = pytest.mark.journey

PATIENTS = 20
STEPS = (
    "confirmation",
    "reminder_7d",
    "reminder_1d",
    "reminder_2h",
    "noshow_followup",
    "noshow_second",
)
PROFILES = [
    Profile("throttling-10", throttle=0.10),
    Profile("throttling-30", throttle=0.30),
    Profile("lambda-errors-10", lambda_before=0.05, lambda_after=0.05),
    Profile("timeouts-10", timeout=0.10),
    Profile("ambiguous-sms-10", ambiguous_sms=0.10),
]


def call_until_served(api: Api, method: str, path: str, token: str, body: Any, key: str) -> Any:
    """What a client does with 503 and Retry-After: the same request, same Idempotency-Key."""
    for _ in range(20):
        response = api.call(method, path, token, body, headers={"Idempotency-Key": key})
        if response.status_code != 503:
            return response
        assert response.headers.get("Retry-After"), "a 503 says when to retry"
    raise AssertionError(f"{method} {path} still 503 after 20 tries")


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def run_repair_sweep(runtime: Any) -> None:
    """The schedule's run, retried as Lambda retries a failed asynchronous invocation (and as
    the next runs, ten minutes apart, would)."""
    for _ in range(6):
        try:
            repair_sweep(runtime)
        except Exception:  # noqa: S112 - a failed run is what the retry is for
            continue
        return
    raise AssertionError("the repair sweep kept failing")


def test_journeys_under_faults(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any, profile: Profile
) -> None:
    from chalicelib.adapters.executions import execution_arn
    from chalicelib.domain.journey import execution_name
    from chalicelib.settings import get_settings
    from chalicelib.store.messages import StaffTaskRepository
    from local.faults import injected

    clinic = make_clinic(capacity=PATIENTS, journeys=True)
    tenant = clinic.tenant
    patients = [make_patient(tenant, phone=unique_phone()) for _ in range(PATIENTS)]
    start = local_moment(days=8, hour=10)
    seed = sum(map(ord, profile.name))
    with injected(profile, seed) as armed:
        appointments = []
        for patient in patients:
            booked = call_until_served(
                api,
                "POST",
                "/appointments",
                tenant.staff,
                {
                    "patient_id": patient["id"],
                    "slot": {"schedule_id": clinic.schedule_id, "start": iso(start)},
                    "type": "follow_up",
                },
                f"book-{uuid.uuid4().hex}",
            )
            assert booked.status_code in (200, 201), booked.body
            appointments.append(payload(booked))
        runtime.settle()
        # A booking whose journey did not start at once is started by the repair schedule.
        move_to(runtime, clock.now() + timedelta(minutes=3))
        run_repair_sweep(runtime)
        for moment in (
            start - timedelta(days=7),
            start - timedelta(days=1),
            start - timedelta(hours=2),
            start + timedelta(hours=3),
            start + timedelta(days=3, hours=4),
            start + timedelta(days=6, hours=5),
        ):
            move_to(runtime, moment)
    assert sum(armed.injected.values()) > 0, "the profile injected nothing"

    logs = {
        p["id"]: payload(api.call("GET", f"/patients/{p['id']}/deliveries", tenant.staff))["items"]
        for p in patients
    }
    tasks = StaffTaskRepository().open_tasks(tenant.id, limit=1000)
    named = {(t.get("appointment_id"), t.get("step")) for t in tasks}
    sfn = runtime.client("stepfunctions")
    machine = get_settings().appointment_journey_arn
    lost, duplicates, stuck_sending, failed_unseen, still_booked = [], [], [], [], []
    for patient, appointment in zip(patients, appointments, strict=True):
        by_step = {d["step"]: d for d in logs[patient["id"]]}
        for step in STEPS:
            record = by_step.get(step)
            settled = record is not None and record["status"] in (
                "sent",
                "suppressed",
                "skipped",
                "unknown",
                "delivered",
                "bounced",
            )
            if not settled and (appointment["id"], step) not in named:
                lost.append((appointment["id"], step, record and record["status"]))
        stuck_sending += [d["key"] for d in logs[patient["id"]] if d["status"] == "sending"]
        for record in logs[patient["id"]]:
            if record["status"] == "unknown":
                assert record.get("staff_task_id") in {t["id"] for t in tasks}
        left = Counter(m.channel for m in runtime.outbox.messages(to=patient["phone"]))
        left += Counter(m.channel for m in runtime.outbox.messages(to=patient["email"]))
        logged = Counter(
            d["channel"] for d in logs[patient["id"]] if d["status"] in ("sent", "unknown")
        )
        if left != logged:
            duplicates.append((appointment["id"], dict(left), dict(logged)))
        name = execution_name(tenant.id, appointment["id"], appointment["journey_version"])
        status = sfn.describe_execution(executionArn=execution_arn(machine, name))["status"]
        if status == "FAILED" and not any(
            t.get("appointment_id") == appointment["id"] and t["kind"] == "journey_step_failed"
            for t in tasks
        ):
            failed_unseen.append(appointment["id"])
        now = payload(api.call("GET", f"/appointments/{appointment['id']}", tenant.staff))
        if now["status"] == "booked":
            still_booked.append(appointment["id"])
    lost_ids = {a for a, _, _ in lost}
    context = [
        (t["kind"], t.get("step"), t.get("error"))
        for t in tasks
        if t.get("appointment_id") in lost_ids
    ]
    failures = []
    for appointment in appointments:
        if appointment["id"] in lost_ids:
            name = execution_name(tenant.id, appointment["id"], 1)
            history = sfn.get_execution_history(executionArn=execution_arn(machine, name))
            failures += [
                str(e.get("taskFailedEventDetails", {}).get("cause", ""))[:300]
                for e in history["events"]
                if e["type"] == "TaskFailed"
            ]
    assert lost == [], f"{profile.name}: lost {lost}; their tasks {context}; {failures}"
    assert duplicates == [], f"{profile.name}: sent twice {duplicates}"
    assert failed_unseen == [], f"{profile.name}: FAILED without a staff task"
    assert still_booked == [], f"{profile.name}: still booked after the visit check"
    assert stuck_sending == [], f"{profile.name}: left sending {stuck_sending}"
