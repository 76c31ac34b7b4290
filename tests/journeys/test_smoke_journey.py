"""The smoke state machine proves the chain end to end on the virtual clock:
Task → in-process Lambda → DynamoDB, a one-day Wait, then SNS SMS and SES email → outbox."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.journey


def wait_for(sfn: Any, execution_arn: str, statuses: set[str], seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in statuses:
            return described
        assert time.monotonic() < deadline, f"still {described['status']}"
        time.sleep(0.05)


def history_types(sfn: Any, execution_arn: str) -> list[str]:
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["type"] for e in events]


def start(runtime: Any, **overrides: Any) -> tuple[Any, str, dict[str, Any]]:
    sfn = runtime.client("stepfunctions")
    run_input = {
        "tenant_id": unique("smoke"),
        "run_id": unique("run"),
        "phone": "+8613800138000",
        "email": "ops@hospital.example.com",
        "wait_seconds": 86400,
        **overrides,
    }
    arn = sfn.start_execution(
        stateMachineArn=runtime.resources.ref("SmokeStateMachine"),
        name=run_input["run_id"],
        input=json.dumps(run_input),
    )["executionArn"]
    return sfn, arn, run_input


def test_chain_runs_on_the_virtual_clock(runtime: Any) -> None:
    from chalicelib import clock
    from chalicelib.store.smoke import SmokeRunRepository

    started_at = clock.now()
    sfn, arn, run = start(runtime)
    # The Lambda ran in-process and wrote to DynamoDB; the Wait holds until the clock moves.
    deadline = time.monotonic() + 10
    while SmokeRunRepository().recorded_at(run["tenant_id"], run["run_id"]) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert "WaitStateEntered" in history_types(sfn, arn)
    assert not [m for m in runtime.outbox.messages() if run["run_id"] in m.body]

    runtime.clock.advance(timedelta(hours=23))
    time.sleep(0.3)
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", "not a day yet"

    runtime.clock.advance(timedelta(hours=1))
    wait_for(sfn, arn, {"SUCCEEDED"})
    sent = [m for m in runtime.outbox.messages() if run["run_id"] in (m.subject or m.body)]
    assert sorted(m.channel for m in sent) == ["email", "sms"]
    sms = next(m for m in sent if m.channel == "sms")
    email = next(m for m in sent if m.channel == "email")
    assert sms.to == run["phone"] and email.to == run["email"]
    assert email.subject == f"CareLoop smoke run {run['run_id']}"
    expected_time = clock.iso(started_at + timedelta(days=1))
    assert sms.sent_at >= expected_time and email.sent_at >= expected_time


def test_stopping_during_the_wait_sends_nothing(runtime: Any) -> None:
    sfn, arn, run = start(runtime, wait_seconds=3600)
    wait_for_entered = time.monotonic() + 10
    while "WaitStateEntered" not in history_types(sfn, arn):
        assert time.monotonic() < wait_for_entered
        time.sleep(0.05)
    sfn.stop_execution(executionArn=arn)
    wait_for(sfn, arn, {"ABORTED"}, seconds=3)
    runtime.clock.advance(timedelta(hours=2))
    time.sleep(0.3)
    assert not [m for m in runtime.outbox.messages() if run["run_id"] in m.body]


def test_a_failing_task_fails_the_execution_with_its_error_name(runtime: Any) -> None:
    sfn, arn, _ = start(runtime, wait_seconds="not a number")
    failed = wait_for(sfn, arn, {"FAILED"})
    assert failed.get("error") == "ValidationFailed"
