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


def package_module() -> Any:
    """infra/package.py, a script beside the templates rather than a package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("careloop_package", ROOT / "infra" / "package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _package(stage: str, out: Path) -> dict[str, Any]:
    """What actually deploys: `make package STAGE=<stage>` (infra/package.py: the app's
    functions, their roles and event sources, merged with the platform template)."""
    path: Path = package_module().package(stage, "us-east-1", out)
    template: dict[str, Any] = json.loads(path.read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            uri = resource["Properties"]["DefinitionUri"]
            assert (path.parent / uri).resolve().is_file(), f"{uri} from {path.parent}"
    return template


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _package("prod", tmp_path_factory.mktemp("package") / "prod")


@pytest.fixture(scope="module")
def packaged_staging(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _package("staging", tmp_path_factory.mktemp("package") / "staging")


# Where the platform is offered. (SES has no CloudFormation type in the China regions: a
# deployment there needs another email channel.)
DEPLOY_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-1", "ap-northeast-1"]


@pytest.mark.parametrize("stage", ["prod", "staging"])
def test_packaged_template_passes_cfn_lint(
    stage: str, packaged: dict[str, Any], packaged_staging: dict[str, Any]
) -> None:
    from cfnlint.api import ManualArgs, lint

    template = packaged if stage == "prod" else packaged_staging
    matches = lint(json.dumps(template), config=ManualArgs(regions=DEPLOY_REGIONS))
    problems = [str(m) for m in matches if m.rule.id[0] in "EW"]
    assert problems == []


def asynchronous_functions() -> dict[str, str]:
    """Logical id → name of every function app.py declares on an SNS topic or a schedule:
    Lambda invokes those asynchronously (retries, then the OnFailure destination)."""
    from chalice.utils import to_cfn_resource_name

    from app import app

    return {
        to_cfn_resource_name(source.name): source.name
        for source in app.event_sources
        if getattr(source, "topic", None) or getattr(source, "schedule_expression", None)
    }


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return str(value["Ref"])
    return None


def _get_att(value: Any) -> tuple[str, str] | None:
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        logical, attribute = target if isinstance(target, list) else target.split(".", 1)
        return str(logical), str(attribute)
    return None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allows(statements: Any, action: str, resource: Any) -> bool:
    return any(
        statement.get("Effect") == "Allow"
        and action in _listed(statement.get("Action", []))
        and resource in _listed(statement.get("Resource", []))
        for statement in _listed(statements)
    )


def test_every_sns_and_schedule_function_retries_into_an_encrypted_dead_letter_queue(
    packaged: dict[str, Any],
) -> None:
    resources = packaged["Resources"]
    functions = asynchronous_functions()
    assert {"InboundSms", "EmailFeedback", "JourneyEvent", "RecallSweep"} <= set(functions)
    configs = {
        _ref(r["Properties"]["FunctionName"]): (logical_id, r)
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig"
    }
    for function, name in functions.items():
        assert resources[function]["Type"] == "AWS::Serverless::Function", name
        assert function in configs, f"{name} ({function}) has no AWS::Lambda::EventInvokeConfig"
        config_id, config = configs[function]
        props = config["Properties"]
        assert props["Qualifier"] == "$LATEST", name
        assert props["MaximumRetryAttempts"] == 2, name
        assert 60 <= props["MaximumEventAgeInSeconds"] <= 21600, name
        destination = props["DestinationConfig"]["OnFailure"]["Destination"]
        queue = _get_att(destination)
        assert queue is not None and queue[1] == "Arn", f"{name}: OnFailure is not a queue's Arn"
        queue_spec = resources[queue[0]]
        assert queue_spec["Type"] == "AWS::SQS::Queue", name
        encrypted = queue_spec["Properties"].get("KmsMasterKeyId") or queue_spec["Properties"].get(
            "SqsManagedSseEnabled"
        )
        assert encrypted, f"{queue[0]} is not encrypted"

        # The function's own role may send there, and the grant exists before the config
        # (Lambda checks it when the destination is set).
        role_ref = _get_att(resources[function]["Properties"]["Role"])
        assert role_ref is not None, f"{name}: no explicit role"
        role = role_ref[0]
        inline = any(
            _allows(policy["PolicyDocument"]["Statement"], "sqs:SendMessage", destination)
            for policy in resources[role]["Properties"].get("Policies", [])
        )
        attached = {
            logical_id
            for logical_id, r in resources.items()
            if r["Type"] == "AWS::IAM::Policy"
            and role in {_ref(x) for x in r["Properties"]["Roles"]}
            and _allows(
                r["Properties"]["PolicyDocument"]["Statement"], "sqs:SendMessage", destination
            )
        }
        assert inline or attached, f"{name}: {role} may not sqs:SendMessage to {queue[0]}"
        depends = set(_listed(config.get("DependsOn", [])))
        assert inline or attached & depends, f"{config_id} must DependsOn one of {attached}"


def test_a_message_in_the_dead_letter_queue_raises_an_alarm(packaged: dict[str, Any]) -> None:
    resources = packaged["Resources"]
    queues: set[str] = set()
    for r in resources.values():
        if r["Type"] == "AWS::Lambda::EventInvokeConfig":
            target = _get_att(r["Properties"]["DestinationConfig"]["OnFailure"]["Destination"])
            assert target is not None
            queues.add(target[0])
    assert queues
    for queue in queues:
        alarms = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
            and r["Properties"].get("Namespace") == "AWS/SQS"
            and r["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and any(
                d["Name"] == "QueueName" and _get_att(d["Value"]) == (queue, "QueueName")
                for d in r["Properties"].get("Dimensions", [])
            )
        ]
        assert alarms, f"no alarm on {queue}'s visible messages"
        for alarm in alarms:
            assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
            assert alarm["Threshold"] == 0
            assert alarm.get("AlarmActions"), "an alarm nobody hears"


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


def test_a_staging_package_carries_staging_names_only(
    packaged: dict[str, Any], packaged_staging: dict[str, Any]
) -> None:
    """`--stage staging` once packaged silently with prod's policy and SNS topic names."""
    staging, prod = json.dumps(packaged_staging), json.dumps(packaged)
    assert "careloop-prod" not in staging and "careloop-staging" not in prod
    assert packaged_staging["Parameters"]["Stage"] == {
        **packaged_staging["Parameters"]["Stage"],
        "Default": "staging",
        "AllowedValues": ["staging"],
    }, "a staging package cannot be deployed under prod's names"
    topics = {
        json.dumps(event["Properties"]["Topic"])
        for resource in packaged_staging["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "SNS"
    }
    assert len(topics) == 3 and all("careloop-staging-" in t for t in topics), topics


def test_each_function_has_its_own_role_policy_under_the_stages_names(
    packaged_staging: dict[str, Any],
) -> None:
    """One role and one policy per function (.chalice/policies/<function>.json); tests/permissions
    holds each policy to the calls its function makes, and each wildcard to its reason. The two
    calls the first shared policy denied are granted to the function that makes them."""
    resources = packaged_staging["Resources"]
    functions = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    roles = {p["Role"]["Fn::GetAtt"][0] for p in functions.values()}
    assert len(roles) == len(functions) == 27
    # Each stream handler reads the table's own stream, filtered to the records it reads.
    streams = {
        logical_id: event["Properties"]
        for logical_id, f in functions.items()
        for event in f.get("Events", {}).values()
        if event["Type"] == "DynamoDB"
    }
    assert sorted(streams) == ["AnalyticsStream", "LoyaltyStream"]
    for stream in streams.values():
        assert stream["Stream"] == {"Fn::GetAtt": ["CareLoopTable", "StreamArn"]}
        assert stream["FilterCriteria"]["Filters"]
    assert (
        streams["AnalyticsStream"]["FilterCriteria"] != streams["LoyaltyStream"]["FilterCriteria"]
    )
    assert not any(r["Type"] == "AWS::IAM::ManagedPolicy" for r in resources.values())

    def granted(logical_id: str) -> set[str]:
        role = resources[functions[logical_id]["Role"]["Fn::GetAtt"][0]]["Properties"]
        ((policy,),) = [role["Policies"]]
        statements = policy["PolicyDocument"]["Statement"]
        return {a for s in statements for a in _listed(s["Action"])}

    # The API reaches tenant data only through the tenant data role (tests/permissions).
    assert not any(a.startswith("dynamodb:BatchGet") for a in granted("APIHandler"))
    (tenant_policy,) = resources["TenantDataRole"]["Properties"]["Policies"]
    tenant_actions = {
        a for s in tenant_policy["PolicyDocument"]["Statement"] for a in _listed(s["Action"])
    }
    assert "dynamodb:BatchGetItem" in tenant_actions
    assert "sns:CreatePlatformEndpoint" in granted("APIHandler")
    assert granted("AppointmentJourneySkip") >= {"dynamodb:GetItem", "logs:PutLogEvents"}
    assert not any(
        a.startswith(("sns:", "states:", "ses:")) for a in granted("AppointmentJourneySkip")
    )
    log_groups = {
        json.dumps(r["Properties"]["LogGroupName"])
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    for properties in functions.values():
        name = properties["FunctionName"]["Fn::Sub"]
        assert name.startswith("careloop-${Stage}-")
        assert json.dumps({"Fn::Sub": f"/aws/lambda/{name}"}) in log_groups


def test_functions_are_traced_and_the_api_answers_within_api_gateways_limit(
    packaged: dict[str, Any],
) -> None:
    functions = {
        logical_id: resource["Properties"]
        for logical_id, resource in packaged["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert functions["APIHandler"]["Timeout"] <= 29, "API Gateway gives up at 29 s"
    # Below the state machines' TimeoutSeconds (60), so Lambda, not the state, times out.
    assert all(p["Timeout"] < 60 for p in functions.values())
    assert {p["Tracing"] for p in functions.values()} == {"Active"}
