"""Appointment journeys played under a seeded fault profile (local/faults.py), and the one way
they are counted afterwards: the fault tier (tests/faults) asserts on the count, `make bench`
reports it, so both count alike.

Each booked patient goes through every step of the appointment journey nobody answers
(confirmation, three reminders, the answer's deadline, the visit check, two no-show follow-ups
and the staff task). What must hold, and what the count names when it does not:

- lost: a due message neither sent, suppressed nor skipped with a reason, nor named in a staff
  task (`unknown`, or a step that failed after every retry);
- duplicates: the outbox holds other messages than the log says left;
- FAILED: executions that ended FAILED (unseen: without a `journey_step_failed` task);
- still booked after the visit check; delivery records left `sending`; an `unknown` outcome
  (an SMS whose answer was lost) without the staff task that asks someone to check.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local.api_client import Api, payload
from local.faults import Profile, injected

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
NO_FAULTS = Profile("no-faults")
SETTLED = frozenset({"sent", "suppressed", "skipped", "unknown", "delivered", "bounced"})
LEFT = frozenset({"sent", "unknown"})  # what the log says went out (or may have)


def seed_of(profile: Profile) -> int:
    return sum(map(ord, profile.name))


@dataclass
class Booked:
    patient: dict[str, Any]
    appointment: dict[str, Any]


@dataclass
class FaultRun:
    profile: Profile
    tenant_id: str
    staff: str
    booked: list[Booked]
    injected: dict[str, int]
    api_requests: int


def call_until_served(
    api: Api, method: str, path: str, token: str, body: Any, key: str
) -> tuple[Any, int]:
    """What a client does with 503 and Retry-After: the same request, same Idempotency-Key.
    Returns the response and how many requests it took."""
    for attempt in range(1, 21):
        response = api.call(method, path, token, body, headers={"Idempotency-Key": key})
        if response.status_code != 503:
            return response, attempt
        assert response.headers.get("Retry-After"), "a 503 says when to retry"
    raise AssertionError(f"{method} {path} still 503 after 20 tries")


def repair(runtime: Any) -> None:
    """The repair schedule's runs until one succeeds: each with Lambda's retries, and a run
    that still failed is followed by the next scheduled one (ten minutes later on AWS)."""
    import app
    from local.schedules import run_scheduled

    for _ in range(3):
        if run_scheduled(app.repair_sweep, "repair_sweep", runtime.clock.now()) is None:
            runtime.settle()
            return
    raise AssertionError("the repair sweep kept failing")


def play(
    runtime: Any,
    api: Api,
    profile: Profile,
    *,
    tenant_id: str,
    staff: str,
    schedule_id: str,
    patients: list[dict[str, Any]],
    start: datetime,
) -> FaultRun:
    """Books every patient at `start` under the profile's faults, then moves the virtual clock
    through each step's moment (settling after each)."""
    from chalicelib.domain.common import utc_iso

    requests = 0
    with injected(profile, seed_of(profile)) as armed:
        booked = []
        for patient in patients:
            response, tries = call_until_served(
                api,
                "POST",
                "/appointments",
                staff,
                {
                    "patient_id": patient["id"],
                    "slot": {"schedule_id": schedule_id, "start": utc_iso(start)},
                    "type": "follow_up",
                },
                f"book-{uuid.uuid4().hex}",
            )
            requests += tries
            assert response.status_code in (200, 201), response.body
            booked.append(Booked(patient, payload(response)))
        runtime.settle()
        # A booking whose journey did not start at once is started by the repair schedule.
        runtime.clock.set(runtime.clock.now() + timedelta(minutes=3))
        repair(runtime)
        for moment in (
            start - timedelta(days=7),
            start - timedelta(days=1),
            start - timedelta(hours=2),
            start + timedelta(hours=3),
            start + timedelta(days=3, hours=4),
            start + timedelta(days=6, hours=5),
        ):
            runtime.clock.set(moment)
            runtime.settle()
        counted = dict(armed.injected)
    return FaultRun(profile, tenant_id, staff, booked, counted, requests)


@dataclass
class Tally:
    journeys: int
    lost: list[tuple[str, str, str | None]] = field(default_factory=list)
    duplicates: list[tuple[str, dict[str, int], dict[str, int]]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    failed_unseen: list[str] = field(default_factory=list)
    still_booked: list[str] = field(default_factory=list)
    stuck_sending: list[str] = field(default_factory=list)
    unknown_without_task: list[str] = field(default_factory=list)  # nobody asked to check
    staff_tasks: Counter[str] = field(default_factory=Counter)  # by kind
    state_transitions: int = 0  # billed: every state entered and every retry of a Task
    lost_detail: list[str] = field(default_factory=list)  # for an assertion message


def billed_transitions(events: Iterable[dict[str, Any]]) -> int:
    """State transitions as Step Functions bills them: each state entered, and each retry of a
    Task (a Task scheduled again without being entered again)."""
    entered = scheduled = tasks_entered = 0
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            entered += 1
            tasks_entered += kind == "TaskStateEntered"
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            scheduled += 1
    return entered + max(0, scheduled - tasks_entered)


def execution_history(runtime: Any, arn: str) -> list[dict[str, Any]]:
    sfn = runtime.client("stepfunctions")
    events: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **token)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        token = {"nextToken": page["nextToken"]}


def tally(runtime: Any, api: Api, run: FaultRun) -> Tally:
    from chalicelib.adapters.executions import execution_arn
    from chalicelib.domain.appointment_journey import execution_name
    from chalicelib.settings import get_settings
    from chalicelib.store.messages import StaffTaskRepository

    staff = run.staff
    tasks = StaffTaskRepository().open_tasks(run.tenant_id, limit=1000)
    named = {(t.get("appointment_id"), t.get("step")) for t in tasks}
    task_ids = {t["id"] for t in tasks}
    sfn = runtime.client("stepfunctions")
    machine = get_settings().appointment_journey_arn
    counted = Tally(journeys=len(run.booked), staff_tasks=Counter(t["kind"] for t in tasks))
    for booked in run.booked:
        patient, appointment = booked.patient, booked.appointment
        log = payload(api.call("GET", f"/patients/{patient['id']}/deliveries", staff))["items"]
        by_step = {d["step"]: d for d in log}
        for step in STEPS:
            record = by_step.get(step)
            settled = record is not None and record["status"] in SETTLED
            if not settled and (appointment["id"], step) not in named:
                counted.lost.append((appointment["id"], step, record and record["status"]))
        counted.stuck_sending += [d["key"] for d in log if d["status"] == "sending"]
        counted.unknown_without_task += [
            d["key"]
            for d in log
            if d["status"] == "unknown" and d.get("staff_task_id") not in task_ids
        ]
        left = Counter(m.channel for m in runtime.outbox.messages(to=patient["phone"]))
        left += Counter(m.channel for m in runtime.outbox.messages(to=patient["email"]))
        logged = Counter(d["channel"] for d in log if d["status"] in LEFT)
        if left != logged:
            counted.duplicates.append((appointment["id"], dict(left), dict(logged)))
        name = execution_name(run.tenant_id, appointment["id"], appointment["journey_version"])
        arn = execution_arn(machine, name)
        if sfn.describe_execution(executionArn=arn)["status"] == "FAILED":
            counted.failed.append(appointment["id"])
            if not any(
                t.get("appointment_id") == appointment["id"] and t["kind"] == "journey_step_failed"
                for t in tasks
            ):
                counted.failed_unseen.append(appointment["id"])
        history = execution_history(runtime, arn)
        counted.state_transitions += billed_transitions(history)
        if any(lost[0] == appointment["id"] for lost in counted.lost):
            counted.lost_detail += [
                f"task {t['kind']} {t.get('step')} {t.get('error')}"
                for t in tasks
                if t.get("appointment_id") == appointment["id"]
            ]
            counted.lost_detail += [
                str(e.get("taskFailedEventDetails", {}).get("cause", ""))[:300]
                for e in history
                if e["type"] == "TaskFailed"
            ]
        now = payload(api.call("GET", f"/appointments/{appointment['id']}", staff))
        if now["status"] == "booked":
            counted.still_booked.append(appointment["id"])
    return counted
