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
# Tasks that put a failure before people themselves, first (a webhook's dead letter, in the list
# staff replay from; a bulk import marked failed, which its admin reads); their own failure goes
# to the report above like any step's.
FIRST_RESORTS = {"${DeadLetterFunctionArn}", "${ImportFailedFunctionArn}"}


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


def is_first_resort(state: dict[str, Any]) -> bool:
    return state.get("Parameters", {}).get("FunctionName") in FIRST_RESORTS


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
            assert is_report(target) or (is_first_resort(target) and not is_first_resort(state)), (
                f"{path.name}:{name} fails into {catch_all[-1]['Next']}"
            )
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


# --- typed task results: what a state machine reads is what its task returns ---------------

# Handlers that serve several Tasks, named by the payload's `action`: the action names the
# service call, whose return annotation is that Task's result.
DISPATCHED = {
    "aftercare_task": ("chalicelib.services.aftercare.steps", "AftercareSteps"),
    "recall_task": ("chalicelib.services.recall", "RecallService"),
    "campaign_batch": ("chalicelib.services.campaigns", "CampaignService"),
}


def _handlers_by_placeholder(path: Path) -> dict[str, Any]:
    """`${XFunctionArn}` → the run function behind the app's Lambda handler, through the
    template's DefinitionSubstitutions and Chalice's logical ids."""
    import inspect

    from chalice.utils import to_cfn_resource_name

    import app as app_module
    from local.provision import load_template

    functions = {
        to_cfn_resource_name(f.name): getattr(app_module, f.handler_string.split(".")[1])
        for f in app_module.app.pure_lambda_functions
    }
    found: dict[str, Any] = {}
    for resource in load_template()["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::Serverless::StateMachine":
            continue
        if not props["DefinitionUri"].endswith(path.name):
            continue
        for placeholder, value in props.get("DefinitionSubstitutions", {}).items():
            target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
            if target is None:
                continue
            logical = target[0] if isinstance(target, list) else target.split(".")[0]
            if logical in functions:
                # EventSourceHandler → PureLambdaWrapper → step_handler's handler → the run function
                wrapper = functions[logical].func
                found["${" + placeholder + "}"] = inspect.unwrap(
                    getattr(wrapper, "_original_func", wrapper)
                )
    return found


def _result_type(run: Any, payload: dict[str, Any], where: str) -> Any:
    """The TypedDict a Task's handler returns for this payload."""
    import importlib
    import types
    import typing

    returned = typing.get_type_hints(run)["return"]
    if not isinstance(returned, types.UnionType):
        return returned
    module, cls = DISPATCHED[run.__name__]
    action = payload.get("action")
    assert isinstance(action, str), f"{where}: {run.__name__} needs a literal action"
    method = getattr(getattr(importlib.import_module(module), cls), action)
    chosen = typing.get_type_hints(method)["return"]
    assert chosen in typing.get_args(returned), f"{where}: {run.__name__} does not return {chosen}"
    return chosen


def _walk(result: Any, keys: list[str], where: str) -> list[str]:
    """Check `keys` down the TypedDict; returns the path (in keys) up to an optional key."""
    import typing

    optional_at: list[str] = []
    shape = result
    for depth, key in enumerate(keys):
        if not typing.is_typeddict(shape):
            break  # a list or a plain value: nothing more to check by type
        # With postponed annotations, __optional_keys__ misses NotRequired (Python < 3.14):
        # read the markers from the resolved hints.
        hints = typing.get_type_hints(shape, include_extras=True)
        assert key in hints, f"{where}: {shape.__name__} has no key {key!r}"
        hint = hints[key]
        marker = typing.get_origin(hint)
        optional = marker is typing.NotRequired or (
            key in shape.__optional_keys__ and marker is not typing.Required
        )
        if optional and not optional_at:
            optional_at = keys[: depth + 1]
        wrapped = marker in (typing.NotRequired, typing.Required)
        shape = typing.get_args(hint)[0] if wrapped else hint
    return optional_at


def _writers(scope: dict[str, Any], path: Path) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
    """ResultPath → (result TypedDict, the Task) for the Lambda Tasks of one scope."""
    handlers = _handlers_by_placeholder(path)
    out: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    for name, state in scope["States"].items():
        function = state.get("Parameters", {}).get("FunctionName")
        if state["Type"] != "Task" or function not in handlers:
            continue
        if not isinstance(state.get("ResultPath"), str):
            continue
        where = f"{path.name}:{name}"
        result = _result_type(handlers[function], state["Parameters"].get("Payload", {}), where)
        out.setdefault(state["ResultPath"], []).append((result, state))
    return out


def _under_payload(task: dict[str, Any], keys: list[str], where: str) -> list[str]:
    """The keys of the Lambda's own result that `keys` (read under the ResultPath) name."""
    selector = task.get("ResultSelector")
    if selector is None:
        assert keys[:1] == ["Payload"], f"{where}: reads {keys} beside the Lambda's Payload"
        return keys[1:]
    source = selector.get(f"{keys[0]}.$") if keys else None
    assert isinstance(source, str), f"{where}: the ResultSelector writes no {keys[:1]}"
    assert source == "$.Payload" or source.startswith("$.Payload."), where
    selected = source.removeprefix("$.Payload").lstrip(".")
    return [*(selected.split(".") if selected else []), *keys[1:]]


def _references(state: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    """(JSONPath, read by a Choice) for every path a state reads from its input."""
    for key in ("TimestampPath", "SecondsPath", "ItemsPath"):
        if key in state:
            yield state[key], False
    for block in ("Parameters", "ItemSelector"):
        stack = [state.get(block) or {}]
        while stack:
            node = stack.pop()
            for key, value in node.items():
                if isinstance(value, dict):
                    stack.append(value)
                elif key.endswith(".$") and isinstance(value, str) and value.startswith("$."):
                    yield value, False


def _choice_rules(
    rule: dict[str, Any], guards: frozenset[str]
) -> Iterator[tuple[dict[str, Any], frozenset[str]]]:
    """Every comparison in a Choice rule, with the IsPresent tests that precede it in an And."""
    if "And" in rule:
        seen = set(guards)
        for part in rule["And"]:
            yield from _choice_rules(part, frozenset(seen))
            if part.get("IsPresent") is True:
                seen.add(part["Variable"])
    elif "Or" in rule:
        for part in rule["Or"]:
            yield from _choice_rules(part, guards)
    elif "Not" in rule:
        yield from _choice_rules(rule["Not"], guards)
    else:
        yield rule, guards


def _checked_scopes(
    scope: dict[str, Any], visible: list[dict[str, Any]]
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each scope with the scopes whose results its input still carries: a Parallel's branch
    sees its enclosing state; a Map's iteration sees only its item."""
    chain = [*visible, scope]
    yield scope, chain
    for state in scope["States"].values():
        for branch in state.get("Branches", []):
            yield from _checked_scopes(branch, chain)
        if "ItemProcessor" in state:
            yield from _checked_scopes(state["ItemProcessor"], [])


def _reads(state: dict[str, Any]) -> list[tuple[str, bool, frozenset[str]]]:
    """(path, read by a Choice, the IsPresent tests guarding it) for what a state reads."""
    reads = [(ref, False, frozenset[str]()) for ref, _ in _references(state)]
    for choice in state.get("Choices", []):
        for rule, guards in _choice_rules(choice, frozenset()):
            if rule.get("IsPresent") is not True:
                reads.append((rule["Variable"], True, guards))
    return reads


def _check_read(
    ref: str, by_choice: bool, guards: frozenset[str], result_path: str, result: Any, task: Any
) -> None:
    where = f"reads {ref}"
    keys = ref.removeprefix(result_path + ".").split(".")
    own = _under_payload(task, keys, where)
    optional = _walk(result, own, where)
    if by_choice and optional:
        prefix = len(keys) - len(own)
        needed = {
            ".".join([result_path, *keys[: prefix + n]]) for n in range(len(optional), len(own) + 1)
        }
        assert needed & guards, (
            f"{ref} may be absent ({result.__name__}.{'.'.join(optional)} is NotRequired): "
            "test IsPresent first"
        )


@pytest.mark.parametrize("path", MACHINES, ids=lambda p: p.name)
def test_what_a_state_reads_is_a_key_its_task_returns(path: Path) -> None:
    """Every `$.<result path>.result.<key>` a Choice, Wait, Map or Parameters reads is a key of
    the TypedDict the Task writing `$.<result path>` returns (through its ResultSelector); a
    Choice that reads a key the task does not always return tests IsPresent on it first."""
    checked = 0
    for scope, chain in _checked_scopes(machine(path), []):
        writers: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
        for visible in chain:
            for result_path, found in _writers(visible, path).items():
                writers.setdefault(result_path, []).extend(found)
        for name, state in scope["States"].items():
            for ref, by_choice, guards in _reads(state):
                for result_path, tasks in writers.items():
                    if not ref.startswith(result_path + "."):
                        continue
                    for result, task in tasks:
                        try:
                            _check_read(ref, by_choice, guards, result_path, result, task)
                        except AssertionError as failure:
                            raise AssertionError(f"{path.name}:{name}: {failure}") from None
                        checked += 1
    if path.name != "smoke.asl.json":
        assert checked, f"{path.name}: no task result read was checked"
