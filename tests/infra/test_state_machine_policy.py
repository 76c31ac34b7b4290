"""Every state machine, read as written: each Task rides out AWS's ordinary faults (retries with
backoff and jitter, a timeout) and ends, when it still fails, in something a person sees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MACHINES = sorted((ROOT / "statemachines").glob("*.asl.json"))
JOURNEYS = [p for p in MACHINES if p.name != "smoke.asl.json"]  # the smoke test has no staff

LAMBDA_FAULTS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Retryable",
}
SNS_FAULTS = {"SNS.ThrottledException", "SNS.InternalErrorException"}
REPORT_FUNCTION = "${StepFailedFunctionArn}"


def states(scope: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the scope it lives in) for every state, nested ones included."""
    for name, state in scope["States"].items():
        yield name, state, scope
        for branch in state.get("Branches", []):
            yield from states(branch)
        if "ItemProcessor" in state:
            yield from states(state["ItemProcessor"])


def machine(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def is_report(state: dict[str, Any]) -> bool:
    return bool(state.get("Parameters", {}).get("FunctionName") == REPORT_FUNCTION)


def retried(state: dict[str, Any]) -> set[str]:
    return {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}


@pytest.mark.parametrize("path", JOURNEYS, ids=lambda p: p.name)
def test_every_task_retries_transient_faults_with_backoff_and_jitter(path: Path) -> None:
    for name, state, _ in states(machine(path)):
        if state["Type"] != "Task":
            continue
        resource = state["Resource"]
        wanted = SNS_FAULTS if resource.endswith("sns:publish") else LAMBDA_FAULTS
        if not resource.endswith(".waitForTaskToken"):
            wanted = wanted | {"States.Timeout"}
        assert wanted <= retried(state), f"{path.name}:{name} misses {wanted - retried(state)}"
        for retrier in state["Retry"]:
            assert retrier.get("BackoffRate", 1) >= 2, f"{path.name}:{name}: exponential backoff"
            assert retrier.get("JitterStrategy") == "FULL", f"{path.name}:{name}: full jitter"
            assert "MaxDelaySeconds" in retrier, f"{path.name}:{name}: a cap on the backoff"
            # Minutes of trouble: 2 + 4 + ... capped at MaxDelaySeconds, over the attempts.
            delays = [
                min(
                    retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n,
                    retrier["MaxDelaySeconds"],
                )
                for n in range(retrier["MaxAttempts"])
            ]
            assert sum(delays) >= 300, f"{path.name}:{name} gives up after {sum(delays)} s"


@pytest.mark.parametrize("path", JOURNEYS, ids=lambda p: p.name)
def test_tasks_have_timeouts_except_the_waits_for_an_answer(path: Path) -> None:
    for name, state, _ in states(machine(path)):
        if state["Type"] != "Task":
            continue
        if state["Resource"].endswith(".waitForTaskToken"):
            # The answer's deadline is a Wait state in a parallel branch: the emulator's
            # TimeoutSeconds runs on real time, not on the virtual clock.
            assert "TimeoutSeconds" not in state and "HeartbeatSeconds" not in state, name
            assert "States.Timeout" not in retried(state), name
        else:
            assert 0 < state.get("TimeoutSeconds", 0) <= 300, f"{path.name}:{name}"


@pytest.mark.parametrize("path", JOURNEYS, ids=lambda p: p.name)
def test_a_step_that_still_fails_is_put_before_staff(path: Path) -> None:
    """The last Catch of every Task and Parallel leads to the report task (a staff task naming
    the journey and the step); the report's own Catch ends in a Fail the alarms watch."""
    found = {name: (state, scope) for name, state, scope in states(machine(path))}
    for name, (state, scope) in found.items():
        if state["Type"] not in ("Task", "Parallel"):
            continue
        catch_all = [c for c in state.get("Catch", []) if c["ErrorEquals"] == ["States.ALL"]]
        assert catch_all, f"{path.name}:{name} has no Catch of States.ALL"
        target = scope["States"][catch_all[-1]["Next"]]
        if is_report(state):
            assert target["Type"] == "Fail" and catch_all[-1]["Next"].endswith("StaffNotTold")
        else:
            assert is_report(target), f"{path.name}:{name} fails into {catch_all[-1]['Next']}"
            payload = target["Parameters"]["Payload"]
            assert {"tenant_id.$", "error.$", "execution.$"} <= set(payload), name
            assert "step" in payload or "step.$" in payload, name


@pytest.mark.parametrize("path", MACHINES, ids=lambda p: p.name)
def test_every_fail_state_says_why_it_is_there(path: Path) -> None:
    """A Fail either ends a branch by design (the Parallel that holds it catches it) or is the
    last resort after a report could not be made; either way its Comment says so."""
    for name, state, _ in states(machine(path)):
        if state["Type"] == "Fail":
            assert state.get("Comment"), f"{path.name}:{name} has no Comment"
