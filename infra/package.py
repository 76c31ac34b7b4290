"""Packages CareLoop for one stage: `chalice package` merged with `infra/platform.yaml`, with
every name the stage's own (`make package STAGE=staging REGION=eu-west-1`).

What Chalice cannot know is set here: the region it needs to package, the stage the SNS handlers'
topics are named after when app.py is imported (CARELOOP_STAGE), and the template's Stage
parameter, pinned to the packaged stage so a staging package cannot be deployed under prod names.

Each function's role has its own policy, `.chalice/policies/<function>.json` (Chalice's
per-function `iam_policy_file`), which allows what that function calls and no more
(tests/permissions holds each to the calls the suite saw the function make). Those files name
the platform's resources the CloudFormation way (`${AWS::Region}`, `${Stage}`, `${UserPool.Arn}`),
so that every resource is the stage's own; Chalice copies them as they are and this script makes
each such string an `Fn::Sub`. A statement on `*` carries its reason in a `Why` beside it, which
IAM would refuse: it is taken out here. What every function needs alike is added here rather than
repeated in 22 files: its own log group (created with a retention, under the name the function
is given here, `careloop-<stage>-<function>`), X-Ray, and the data key wherever the policy
reaches the table (through DynamoDB only) or publishes to the platform's encrypted topics
(through SNS only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOG_RETENTION_DAYS = 90  # operational logs only: no PHI is logged (tests/integration)


def function_names() -> list[str]:
    """Every function app.py declares, by its name there (`api_handler` for the API)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from app import app

    declared = [f.name for f in app.pure_lambda_functions] + [s.name for s in app.event_sources]
    return ["api_handler", *declared]


def _substituted(value: Any) -> Any:
    """Strings naming template values (`${CareLoopTable.Arn}`) become Fn::Sub."""
    if isinstance(value, str) and "${" in value:
        return {"Fn::Sub": value}
    if isinstance(value, list):
        return [_substituted(v) for v in value]
    if isinstance(value, dict):
        return {k: _substituted(v) for k, v in value.items()}
    return value


def _mentions(statements: list[dict[str, Any]], service: str) -> bool:
    """Does the policy reach one of the stage's own `service` resources (the table, a topic)?"""
    return any(
        f":{service}:" in resource and "careloop-${Stage}" in resource
        for statement in statements
        for resource in _listed(statement.get("Resource", []))
    )


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _shared_statements(name: str, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    log_group = (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        f"/aws/lambda/careloop-${{Stage}}-{name}"
    )
    shared: list[dict[str, Any]] = [
        {
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group}:*",
        },
        {
            "Sid": "Traces",
            "Effect": "Allow",
            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "Resource": "*",
            "Why": "X-Ray's trace calls have no resource-level permissions.",
        },
    ]
    if _mentions(statements, "dynamodb"):
        shared.append(_key_through("dynamodb", ["kms:Decrypt", "kms:DescribeKey"]))
    if _mentions(statements, "sns"):
        shared.append(_key_through("sns", ["kms:GenerateDataKey", "kms:Decrypt"]))
    return shared


def _key_through(service: str, actions: list[str]) -> dict[str, Any]:
    return {
        "Sid": f"DataKeyThrough{service.capitalize()}",
        "Effect": "Allow",
        "Action": actions,
        "Resource": "${DataKey.Arn}",
        "Condition": {
            "StringEquals": {"kms:ViaService": f"{service}.${{AWS::Region}}.amazonaws.com"}
        },
    }


def without_reasons(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The statements as IAM takes them: a wildcard's `Why` is for people reading the file."""
    return [{k: v for k, v in statement.items() if k != "Why"} for statement in statements]


def own_roles_and_logs(template: dict[str, Any]) -> None:
    """Names each function, gives it a log group that expires, and completes its own policy."""
    from chalice.utils import to_cfn_resource_name

    resources = template["Resources"]
    for name in function_names():
        # Chalice renames the API's function; every other keeps the name app.py gives it.
        logical = "APIHandler" if name == "api_handler" else to_cfn_resource_name(name)
        function = resources[logical]["Properties"]
        function["FunctionName"] = {"Fn::Sub": f"careloop-${{Stage}}-{name}"}
        resources[f"{logical}LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/lambda/careloop-${{Stage}}-{name}"},
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        }
        role = resources[function["Role"]["Fn::GetAtt"][0]]["Properties"]
        (policy,) = role["Policies"]
        document = policy["PolicyDocument"]
        statements = document["Statement"]
        statements = without_reasons(statements + _shared_statements(name, statements))
        policy["PolicyDocument"] = _substituted({**document, "Statement": statements})


def package(stage: str, region: str, out: Path) -> Path:
    """Writes `out/sam.json` (and `deployment.zip`) and returns the template's path."""
    chalice = Path(sys.executable).parent / "chalice"
    # Packaging calls no AWS service: an emulator's endpoint left in the environment is not used.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    env.update({"CARELOOP_STAGE": stage, "AWS_DEFAULT_REGION": region})
    command = [str(chalice), "package", "--stage", stage]
    done = subprocess.run(  # noqa: S603 - the venv's chalice, arguments of our own
        [*command, "--merge-template", "infra/platform.yaml", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"chalice package failed:\n{done.stdout}{done.stderr}")
    # Chalice writes YAML after a YAML merge template; JSON is as deployable and edited safely.
    from cfnlint.decode import cfn_yaml

    written = out / "sam.yaml"
    template = json.loads(json.dumps(cfn_yaml.load(str(written))))
    template["Parameters"]["Stage"].update({"Default": stage, "AllowedValues": [stage]})
    own_roles_and_logs(template)
    # The state machines' DefinitionUri is relative to infra/; `aws cloudformation package`
    # reads it relative to this template.
    for resource in template["Resources"].values():
        uri = resource.get("Properties", {}).get("DefinitionUri")
        if resource["Type"] == "AWS::Serverless::StateMachine" and isinstance(uri, str):
            definition = (ROOT / "infra" / uri).resolve()
            resource["Properties"]["DefinitionUri"] = os.path.relpath(definition, out)
    path = out / "sam.json"
    path.write_text(json.dumps(template, indent=2) + "\n")
    written.unlink()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or ROOT / "build" / args.stage
    print(package(args.stage, args.region, out))


if __name__ == "__main__":
    main()
