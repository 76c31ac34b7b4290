"""Each function's own IAM policy allows every AWS call the suite saw that function make.

Moto enforces no IAM, so a policy that denies the code's own call would only fail on AWS (it
did: segment listing's BatchGetItem, `POST /me/devices`'s CreatePlatformEndpoint). The rest of
the suite records each call a function makes (local/aws_calls.py: function, action, resource,
DynamoDB's leading keys); this tier runs after it (`make test`) and evaluates every recorded
call against that function's policy in the packaged template, with an IAM policy simulator that
evaluates conditions (the npm @cloud-copilot/iam-simulate, in tools/iam-simulate).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AWS_CALLS, ROOT
from tests.infra.test_templates_and_state_machines import _listed

SIMULATOR = ROOT / "tools" / "iam-simulate"
POLICIES = ROOT / ".chalice" / "policies"
ACCOUNT, REGION, STAGE = "123456789012", "us-east-1", "local"
POOL = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_POOL"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# The platform key's policy (infra/platform.yaml, AccountAdministers): it lets IAM policies
# decide, as KMS requires a key policy to.
KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}
# What a policy may name besides the pseudo parameters and the stage.
ATTRIBUTES = {"UserPool.Arn": POOL, "DataKey.Arn": KEY}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The local stage's package: its names are the ones the suite's calls used."""
    from tests.infra.test_templates_and_state_machines import _package

    return _package(STAGE, tmp_path_factory.mktemp("package") / STAGE)


TENANT_DATA = "tenant_data"  # the API's session for one tenant (infra/package.py)
# DynamoDB actions on a whole table or its exports, which no item key conditions (the daily
# export).
WHOLE_TABLE_ACTIONS = frozenset(
    {"dynamodb:ExportTableToPointInTime", "dynamodb:ListExports", "dynamodb:DescribeExport"}
)


def _resolved(value: Any) -> Any:
    names = {
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "Stage": STAGE,
        **ATTRIBUTES,
    }
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        # `${!name}` is CloudFormation's literal `${name}` (an IAM policy variable).
        return re.sub(
            r"\$\{(!?)([^}]+)\}",
            lambda m: "${" + m[2] + "}" if m[1] else names[m[2]],
            value["Fn::Sub"],
        )
    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    return value


def function_policies(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Function name (as app.py names it) → its role's policies, resolved for the local stage."""
    resources = template["Resources"]
    found = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        name = _resolved(resource["Properties"]["FunctionName"]).removeprefix(f"careloop-{STAGE}-")
        role = resources[resource["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        found[name] = [
            {"name": policy["PolicyName"], "policy": _resolved(policy["PolicyDocument"])}
            for policy in role["Policies"]
        ]
    role = resources["TenantDataRole"]["Properties"]
    found[TENANT_DATA] = [
        {"name": policy["PolicyName"], "policy": _resolved(policy["PolicyDocument"])}
        for policy in role["Policies"]
    ]
    return found


def recorded_calls() -> list[dict[str, Any]]:
    calls = {
        line
        for path in sorted(AWS_CALLS.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    }
    return [json.loads(line) for line in sorted(calls)]


# Condition keys as local/aws_calls.py records them → as IAM names them.
CONTEXT_KEYS = {"LeadingKeys": "dynamodb:LeadingKeys", "TagKeys": "aws:TagKeys"}


def _request(call: dict[str, Any]) -> dict[str, Any]:
    # Each reset makes a new user pool; the policy names the stack's one.
    resource = re.sub(r"arn:aws:cognito-idp:[^:]+:\d+:userpool/.+", POOL, call["resource"])
    # The emulator's key has its own id; the policy names the stack's key.
    resource = re.sub(r"arn:aws:kms:[^:]+:\d+:key/.+", KEY, resource)
    context = {
        key if ":" in key else CONTEXT_KEYS.get(key, f"aws:{key}"): value
        for key, value in call["context"].items()
    }
    if call.get("tenant"):
        context["aws:PrincipalTag/tenant_id"] = call["tenant"]
    return {"action": call["action"], "resource": resource, "context": context}


def _principal(call: dict[str, Any]) -> tuple[str, str]:
    """Whose policies a call is judged by: the function's role, or the tenant's session."""
    if call.get("tenant"):
        return TENANT_DATA, f"careloop-{STAGE}-tenant-data/tenant-{call['tenant']}"
    return call["function"], f"{call['function']}/session"


def simulate(cases: list[dict[str, Any]]) -> dict[str, str]:
    node = shutil.which("node")
    assert node, "node is needed for the IAM simulator (tools/iam-simulate)"
    done = subprocess.run(
        [node, str(SIMULATOR / "evaluate.mjs")],
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    decisions: dict[str, str] = json.loads(done.stdout)
    return decisions


def _cases(
    policies: dict[str, list[dict[str, Any]]], calls: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    cases = []
    for index, call in enumerate(calls):
        role, session = _principal(call)
        case = {
            "id": str(index),
            "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/{session}",
            "policies": policies[role],
            "request": _request(call),
        }
        if call["action"].startswith("kms:"):
            case["resourcePolicy"] = KEY_POLICY
        cases.append(case)
    return cases


def test_every_recorded_call_is_allowed_by_its_functions_own_policy(
    packaged: dict[str, Any],
) -> None:
    calls = recorded_calls()
    assert calls, f"no recorded calls in {AWS_CALLS}: run the whole suite first (make test)"
    policies = function_policies(packaged)
    assert {call["function"] for call in calls} <= set(policies)
    # AWS always gives DynamoDB's item and query actions their leading keys: an empty list
    # would pass every ForAllValues condition here and prove nothing.
    keyless = [
        call
        for call in calls
        if call["action"].startswith("dynamodb:")
        and call["action"] not in WHOLE_TABLE_ACTIONS
        and not call["context"].get("LeadingKeys")
    ]
    assert not keyless, keyless[:3]
    scoped = [call for call in calls if call.get("tenant")]
    assert scoped and {call["function"] for call in scoped} == {"api_handler"}
    decisions = simulate(_cases(policies, calls))
    denied: dict[str, set[str]] = defaultdict(set)
    for index, call in enumerate(calls):
        if decisions[str(index)] != "Allowed":
            request = _request(call)
            denied[call["function"]].add(
                f"{request['action']} {request['resource']} {request['context']}"
                f" → {decisions[str(index)]}"
            )
    assert not denied, json.dumps({k: sorted(v) for k, v in denied.items()}, indent=1)
    # Every function that runs in the suite was seen calling AWS through its policy.
    assert len({call["function"] for call in calls}) >= 20


def test_the_simulator_denies_what_a_policy_does_not_allow(packaged: dict[str, Any]) -> None:
    """The check above can fail: calls a function's policy does not cover are denied."""
    policies = function_policies(packaged)
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/careloop-{STAGE}"
    calls = [
        # The way on after a failed step reads the tenant's data and updates its journey's record:
        # it puts nothing.
        {"function": "appointment_journey_skip", "action": "dynamodb:PutItem", "resource": table,
         "context": {"LeadingKeys": ["T#t-1#A#a-1"]}},
        # No function scans the table.
        {"function": "api_handler", "action": "dynamodb:Scan", "resource": table, "context": {}},
        # Hospital numbers are read by the inbound SMS handler alone.
        {"function": "api_handler", "action": "dynamodb:GetItem", "resource": table,
         "context": {"LeadingKeys": ["NUMBER#+8613800000000"]}},
        # A key of no known prefix.
        {"function": "appointment_journey_step", "action": "dynamodb:GetItem", "resource": table,
         "context": {"LeadingKeys": ["T#t-1#P#p-1", "LINK#someone"]}},
        # The API signed for one tenant reaches no other tenant's keys...
        {"function": "api_handler", "tenant": "t-1", "action": "dynamodb:GetItem",
         "resource": table, "context": {"LeadingKeys": ["T#t-2#P#p-1"]}},
        {"function": "api_handler", "tenant": "t-1", "action": "dynamodb:Query",
         "resource": table, "context": {"LeadingKeys": ["T#t-10#PATIENTS"]}},
        # ... and with its own role no tenant's keys at all.
        {"function": "api_handler", "action": "dynamodb:GetItem", "resource": table,
         "context": {"LeadingKeys": ["T#t-1#P#p-1"]}},
        # It takes a tenant's session only tagged with the tenant.
        {"function": "api_handler", "action": "sts:AssumeRole",
         "resource": f"arn:aws:iam::{ACCOUNT}:role/careloop-{STAGE}-tenant-data", "context": {}},
        # Another stage's table.
        {"function": "appointment_journey_skip", "action": "dynamodb:GetItem",
         "resource": table.replace(STAGE, "prod"), "context": {"LeadingKeys": ["T#t-1"]}},
        {"function": "appointment_journey_skip", "action": "states:StartExecution",
         "resource": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:careloop-{STAGE}-recall",
         "context": {}},
        # The daily export looks at its own stage's table's exports only.
        {"function": "analytics_export", "action": "dynamodb:DescribeExport",
         "resource": table.replace(STAGE, "prod") + "/export/01795658400000-137694c3",
         "context": {}},
        {"function": "analytics_export", "action": "dynamodb:ListExports",
         "resource": table.replace(STAGE, "prod"), "context": {}},
    ]  # fmt: skip
    decisions = simulate(_cases(policies, calls))
    assert set(decisions.values()) == {"ImplicitlyDenied"}, decisions
    # The same tenant's keys are allowed to its session: the denials above are the fence.
    allowed = [
        {"function": "api_handler", "tenant": "t-1", "action": "dynamodb:Query",
         "resource": table + "/index/GSI2", "context": {"LeadingKeys": ["T#t-1#PATIENTS"]}},
        {"function": "api_handler", "tenant": "t-1", "action": "dynamodb:GetItem",
         "resource": table, "context": {"LeadingKeys": ["T#t-1"]}},
    ]  # fmt: skip
    assert set(simulate(_cases(policies, allowed)).values()) == {"Allowed"}


def _statements(path: Path) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(path.read_text())["Statement"]
    return statements


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.json")), ids=lambda p: p.stem)
def test_nothing_is_on_a_wildcard_without_a_reason_beside_it(path: Path) -> None:
    for statement in _statements(path):
        resources = _listed(statement["Resource"])
        wildcard = any(r == "*" or r.endswith(":*") or "/*" in r for r in resources)
        scoped = "Condition" in statement or "careloop-${Stage}" in json.dumps(resources)
        if wildcard and not scoped:
            assert statement.get("Why"), f"{path.stem} {statement['Sid']}: say why beside it"
        assert statement["Effect"] == "Allow" and "*" not in json.dumps(statement["Action"])


def test_each_function_has_a_policy_file_and_the_package_keeps_no_reasons(
    packaged: dict[str, Any],
) -> None:
    from tests.infra.test_templates_and_state_machines import package_module

    functions = set(package_module().function_names())
    assert {p.stem for p in POLICIES.glob("*.json")} == {*functions, TENANT_DATA}
    assert '"Why"' not in json.dumps(packaged)
