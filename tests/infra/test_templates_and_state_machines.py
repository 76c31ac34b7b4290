"""infra/ and statemachines/: linted as a deploy would see them, and internally consistent."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

STATE_MACHINES = sorted((ROOT / "statemachines").glob("*.asl.json"))


def platform_template() -> dict[str, Any]:
    from local.provision import load_template

    return load_template()


def merged_template() -> dict[str, Any]:
    """infra/platform.yaml plus the function resources `chalice package` generates for the app
    (same logical ids), which is what actually deploys."""
    from chalice.utils import to_cfn_resource_name

    from app import app

    template = platform_template()
    functions = {"APIHandler": "app.app"} | {
        to_cfn_resource_name(fn.name): fn.handler_string for fn in app.pure_lambda_functions
    }
    for logical_id, handler in functions.items():
        template["Resources"][logical_id] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Runtime": "python3.11",
                "Handler": handler,
                "CodeUri": "./deployment",
                "MemorySize": 256,
                "Timeout": 30,
                "Tracing": "Active",
            },
        }
    return template


# Where the platform is offered. (SES has no CloudFormation type in the China regions: a
# deployment there needs another email channel.)
DEPLOY_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-1", "ap-northeast-1"]


def test_merged_template_passes_cfn_lint() -> None:
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(merged_template()), config=ManualArgs(regions=DEPLOY_REGIONS))
    problems = [str(m) for m in matches if m.rule.id[0] in "EW"]
    assert problems == []


def _every_state(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, those inside Parallel branches and Map processors included."""
    for name, state in states.items():
        yield name, state
        inner = [branch["States"] for branch in state.get("Branches", [])]
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            inner.append(processor["States"])
        for nested in inner:
            yield from _every_state(nested)


def _targets(state: dict[str, Any]) -> set[str]:
    found = {t for t in (state.get("Next"), state.get("Default")) if t}
    found.update(choice["Next"] for choice in state.get("Choices", []))
    found.update(catch["Next"] for catch in state.get("Catch", []))
    return found


@pytest.mark.parametrize("path", STATE_MACHINES, ids=lambda p: p.name)
def test_state_machine_is_well_formed_jsonpath_asl(path: Path) -> None:
    text = path.read_text()
    definition = json.loads(text)
    states = definition["States"]
    assert definition["StartAt"] in states
    every = dict(_every_state(states))
    missing = set().union(*(_targets(state) for state in every.values())) - set(every)
    assert not missing, f"transitions to unknown states: {missing}"
    for name, state in every.items():
        if state["Type"] not in ("Choice", "Succeed", "Fail") and not state.get("End"):
            assert "Next" in state, f"{name} neither ends nor has Next"
    # moto runs JSONPath only: no JSONata, no variables, no nested executions.
    assert "JSONata" not in text and '"Assign"' not in text
    assert "states:startExecution" not in text


@pytest.mark.parametrize("path", STATE_MACHINES, ids=lambda p: p.name)
def test_every_placeholder_has_a_substitution(path: Path) -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", path.read_text()))
    users = [
        resource["Properties"]
        for resource in platform_template()["Resources"].values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
        and resource["Properties"]["DefinitionUri"].endswith(path.name)
    ]
    assert users, f"{path.name} is not deployed by infra/platform.yaml"
    for properties in users:
        assert set(properties.get("DefinitionSubstitutions", {})) == placeholders


def test_runtime_provisioned_the_template(runtime: Any) -> None:
    """The embedded AWS holds what the template declares, TTL and stream included."""
    table = runtime.client("dynamodb").describe_table(TableName="careloop-local")["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"GSI1", "GSI2"}
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    ttl = runtime.client("dynamodb").describe_time_to_live(TableName="careloop-local")
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }
    topics = {
        t["TopicArn"].rsplit(":", 1)[1] for t in runtime.client("sns").list_topics()["Topics"]
    }
    resources = platform_template()["Resources"].values()

    def named(kind: str, key: str) -> set[str]:
        return {
            r["Properties"][key]["Fn::Sub"].replace("${Stage}", "local")
            for r in resources
            if r["Type"] == kind
        }

    assert named("AWS::SNS::Topic", "TopicName") <= topics
    identities = runtime.client("ses").list_identities()["Identities"]
    assert "noreply@careloop.example.com" in identities
    machines = runtime.client("stepfunctions").list_state_machines()["stateMachines"]
    assert named("AWS::Serverless::StateMachine", "Name") <= {m["name"] for m in machines}


def test_every_lambda_handler_string_resolves_to_its_wrapped_handler() -> None:
    """On AWS each function's handler is `app.<python name>`: it must exist in app.py and be
    the wrapper Chalice registered (so middleware runs), not the bare function."""
    import app as app_module

    sources: list[Any] = [*app_module.app.pure_lambda_functions, *app_module.app.event_sources]
    assert sources
    for source in sources:
        module, attribute = source.handler_string.split(".")
        assert module == "app"
        handler = getattr(app_module, attribute, None)
        assert handler is not None, f"app.py has no {attribute} for {source.name}"
        assert callable(handler) and handler.__class__.__name__ != "function", source.name
