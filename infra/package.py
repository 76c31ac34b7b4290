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
import re
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
    """Strings naming template values (`${Stage}`) become Fn::Sub; `${!name}` is an IAM policy
    variable (`${aws:PrincipalTag/tenant_id}`), kept as it is where nothing else is named."""
    if isinstance(value, str) and re.search(r"\$\{(?!!)", value):
        return {"Fn::Sub": value}
    if isinstance(value, str):
        return value.replace("${!", "${")
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


# DynamoDB actions on a whole table that read no item through the function (an export is
# written by DynamoDB itself): such a function opens no tenant's data key.
TABLE_ACTIONS = frozenset({"dynamodb:ExportTableToPointInTime"})


def _reads_items(statements: list[dict[str, Any]]) -> bool:
    return any(
        action.startswith("dynamodb:") and action not in TABLE_ACTIONS
        for statement in statements
        for action in _listed(statement.get("Action", []))
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
        if _reads_items(statements):
            shared.append(TENANT_DATA_KEYS)
    if _mentions(statements, "sns"):
        shared.append(_key_through("sns", ["kms:GenerateDataKey", "kms:Decrypt"]))
    return shared


# Whoever reads a tenant's items unwraps its data key (field encryption, audit pseudonyms): the
# platform key only. Each call names the tenant in its encryption context, which KMS binds to the
# ciphertext (a wrapped key opens only with its own context). A condition on that context is not
# set here: the IAM simulator the permissions tier uses cannot evaluate kms:EncryptionContext keys.
TENANT_DATA_KEYS = {
    "Sid": "TenantDataKeys",
    "Effect": "Allow",
    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
    "Resource": "${DataKey.Arn}",
}


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
    resources = template["Resources"]
    for name in function_names():
        logical = _function_logical_id(name)
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


TENANT_DATA_POLICY = ROOT / ".chalice" / "policies" / "tenant_data.json"


def _leading_keys(statement: dict[str, Any]) -> list[str]:
    conditions = statement.get("Condition", {}).values()
    return [k for c in conditions for k in _listed(c.get("dynamodb:LeadingKeys", []))]


ATHENA_QUERIES = ROOT / "infra" / "athena"


def athena_queries(template: dict[str, Any]) -> None:
    """Each saved Athena query's SQL from its file (`Metadata.SqlFile`, in infra/athena/): the
    file a test runs with DuckDB against a local export is what deploys, character for
    character."""
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Athena::NamedQuery":
            continue
        sql_file = resource.get("Metadata", {}).get("SqlFile")
        if not sql_file:
            raise ValueError(f"{logical}: no Metadata.SqlFile naming its SQL in infra/athena/")
        resource["Properties"]["QueryString"] = (ATHENA_QUERIES / sql_file).read_text()


def table_stream(template: dict[str, Any]) -> None:
    """Each stream handler's event source is the table's own stream (app.py can only name it),
    with the records that handler reads filtered on AWS's side
    (chalicelib/handlers/stream_filters.py)."""
    from chalicelib.handlers.stream_filters import FILTERS_BY_FUNCTION

    by_logical_id = {
        "".join(part.capitalize() for part in name.split("_")): filters
        for name, filters in FILTERS_BY_FUNCTION.items()
    }
    for logical, resource in template["Resources"].items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "DynamoDB":
                filters = by_logical_id[logical]
                event["Properties"]["Stream"] = {"Fn::GetAtt": ["CareLoopTable", "StreamArn"]}
                event["Properties"]["FilterCriteria"] = {
                    "Filters": [{"Pattern": json.dumps(f)} for f in filters]
                }
                # A batch that keeps failing is retried in halves, then left to an alarm.
                event["Properties"]["BisectBatchOnFunctionError"] = True
                event["Properties"]["MaximumRetryAttempts"] = 10


def tenant_data_role(template: dict[str, Any]) -> None:
    """The role the API assumes for one tenant's requests (chalicelib/tenant_scope.py), with the
    tenant as a session tag: `tenant_data.json` (the tenant's own keys) and what the API's own
    role does with the table's keys that are not a tenant's (a request signed for a tenant
    still reads a phone's opt-outs or an account's links). Only the API's role may assume it,
    and only tagged with a tenant."""
    resources = template["Resources"]
    api_role = resources["APIHandler"]["Properties"]["Role"]["Fn::GetAtt"][0]
    (api_policy,) = resources[api_role]["Properties"]["Policies"]
    shared = [
        statement
        for statement in api_policy["PolicyDocument"]["Statement"]
        if _leading_keys(statement)
        and not any(k.startswith("T#") for k in _leading_keys(statement))
    ]
    own = json.loads(TENANT_DATA_POLICY.read_text())["Statement"]
    statements = [*_substituted(without_reasons(own)), *shared]
    statements.append(_substituted(_key_through("dynamodb", ["kms:Decrypt", "kms:DescribeKey"])))
    resources["TenantDataRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            # Named, so that the API's policy names it without a dependency cycle.
            "RoleName": {"Fn::Sub": "careloop-${Stage}-tenant-data"},
            "Description": {"Fn::Sub": "careloop-${Stage}: one tenant's data, for the API"},
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": {"Fn::GetAtt": [api_role, "Arn"]}},
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                        "Condition": {"StringLike": {"aws:RequestTag/tenant_id": "?*"}},
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "OneTenantsData",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }
    environment = resources["APIHandler"]["Properties"].setdefault("Environment", {})
    variables = environment.setdefault("Variables", {})
    variables["TENANT_DATA_ROLE_ARN"] = {"Fn::GetAtt": ["TenantDataRole", "Arn"]}


# --- Operations: what an operator sees, for every function and state machine alike -----------

# API Gateway's stage throttle, per region and account: far above a hospital group's peak
# (a few requests a second), low enough that a runaway client cannot exhaust Lambda's concurrency.
API_THROTTLE = {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200}
# The product's own counters (chalicelib/observability.py) that mean something went wrong.
FAILURE_METRICS = {
    "JourneyStepFailed": "A journey step failed after its retries; a staff task was opened.",
    "MessageOutcomeUnknown": "A send may or may not have reached the patient; it is not retried.",
    "DeliveryRecordLost": "A message left but its delivery record could not be written.",
    "FollowUpFailed": "A saved change's follow-up (segments, recall, loyalty) failed.",
}
PRODUCT_METRICS = ("AppointmentBooked", "MessageSent", "MessageSuppressed", "StaffTaskOpened")


def _alarm(name: str, description: str, **metric: Any) -> dict[str, Any]:
    """An alarm that tells the operators' topic when `metric` is above zero in five minutes."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": {"Fn::Sub": f"careloop-${{Stage}}-{name}"},
            "AlarmDescription": description,
            **metric,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "OperationsAlertsTopic"}],
            "OKActions": [{"Ref": "OperationsAlertsTopic"}],
        },
    }


def _sum(namespace: str, metric: str, dimensions: dict[str, Any]) -> dict[str, Any]:
    return {
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Statistic": "Sum",
        "Period": 300,
    }


def _state_machines(template: dict[str, Any]) -> dict[str, str]:
    """Logical id → name (after careloop-<stage>-) of every state machine."""
    return {
        logical: resource["Properties"]["Name"]["Fn::Sub"].removeprefix("careloop-${Stage}-")
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    }


def observed_state_machines(template: dict[str, Any]) -> None:
    """X-Ray, logging at ERROR without execution data (no PHI in logs: inputs and outputs stay
    in the execution's history only), a log group that expires, and an alarm on failed or timed
    out executions, for every state machine."""
    resources = template["Resources"]
    for logical, name in _state_machines(template).items():
        machine = resources[logical]["Properties"]
        log_group = f"{logical}LogGroup"
        resources[log_group] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": {"Fn::Sub": f"/aws/vendedlogs/states/careloop-${{Stage}}-{name}"},
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        }
        machine["Tracing"] = {"Enabled": True}
        machine["Logging"] = {
            "Level": "ERROR",
            "IncludeExecutionData": False,
            "Destinations": [
                {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [log_group, "Arn"]}}}
            ],
        }
        machine["Policies"].append(
            {
                "Statement": [
                    {
                        # CloudWatch Logs' delivery actions have no resource-level permissions.
                        "Effect": "Allow",
                        "Action": [
                            "logs:CreateLogDelivery",
                            "logs:GetLogDelivery",
                            "logs:UpdateLogDelivery",
                            "logs:DeleteLogDelivery",
                            "logs:ListLogDeliveries",
                            "logs:PutResourcePolicy",
                            "logs:DescribeResourcePolicies",
                            "logs:DescribeLogGroups",
                        ],
                        "Resource": "*",
                    },
                    {
                        "Effect": "Allow",
                        "Action": [
                            "xray:PutTraceSegments",
                            "xray:PutTelemetryRecords",
                            "xray:GetSamplingRules",
                            "xray:GetSamplingTargets",
                        ],
                        "Resource": "*",
                    },
                ]
            }
        )
        arn = {"StateMachineArn": {"Ref": logical}}
        resources[f"{logical}FailedAlarm"] = _alarm(
            f"{name}-failed",
            f"A {name} execution failed, timed out or was aborted by AWS; its last step's "
            "Catch should have put it before staff: look at the execution's history.",
            Metrics=[
                {"Id": "failed", **_stat(_sum("AWS/States", "ExecutionsFailed", arn))},
                {"Id": "timedout", **_stat(_sum("AWS/States", "ExecutionsTimedOut", arn))},
                # Each count is published only when it happens: a period with one and not the
                # other must still add up, not give no data point.
                {
                    "Id": "either",
                    "Expression": "FILL(failed, 0) + FILL(timedout, 0)",
                    "ReturnData": True,
                },
            ],
        )


def _stat(metric: dict[str, Any]) -> dict[str, Any]:
    """An alarm's metric-math entry for `metric`."""
    return {
        "MetricStat": {
            "Metric": {k: metric[k] for k in ("Namespace", "MetricName", "Dimensions")},
            "Period": metric["Period"],
            "Stat": metric["Statistic"],
        },
        "ReturnData": False,
    }


def observed_functions_and_api(template: dict[str, Any]) -> None:
    """An alarm on each function's errors, the API's 5xx and the product's failure counters;
    the API stage throttled and traced, under the stage's own name."""
    resources = template["Resources"]
    for name in function_names():
        logical = _function_logical_id(name)
        resources[f"{logical}ErrorsAlarm"] = _alarm(
            f"{name}-errors",
            f"careloop-<stage>-{name} raised: its log group says why.",
            **_sum("AWS/Lambda", "Errors", {"FunctionName": {"Ref": logical}}),
        )
    api = resources["RestAPI"]["Properties"]
    api["Name"] = {"Fn::Sub": "careloop-${Stage}"}
    api["TracingEnabled"] = True
    api["MethodSettings"] = [
        {"ResourcePath": "/*", "HttpMethod": "*", "MetricsEnabled": True, **API_THROTTLE}
    ]
    stage = api["StageName"]
    resources["ApiServerErrorsAlarm"] = _alarm(
        "api-5xx",
        "The API answered 5xx: a bug, or a dependency throttled past its retries.",
        **_sum(
            "AWS/ApiGateway",
            "5XXError",
            {"ApiName": {"Fn::Sub": "careloop-${Stage}"}, "Stage": stage},
        ),
    )
    for metric, description in FAILURE_METRICS.items():
        resources[f"{metric}Alarm"] = _alarm(
            metric,
            description,
            **_sum("CareLoop", metric, {"service": "careloop-api", "stage": {"Ref": "Stage"}}),
        )


def dashboard(template: dict[str, Any]) -> None:
    """One dashboard: journeys, functions, the API, the dead-letter queue, the product."""

    def widget(title: str, metrics: list[list[Any]]) -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": "${AWS::Region}",
                "stat": "Sum",
                "period": 300,
                "metrics": metrics,
            },
        }

    api_stage = template["Resources"]["RestAPI"]["Properties"]["StageName"]
    arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
    machines = _state_machines(template).values()
    functions = [f"careloop-${{Stage}}-{name}" for name in function_names()]
    widgets = [
        widget(
            "Journeys failed or timed out",
            [
                ["AWS/States", metric, "StateMachineArn", f"{arn}careloop-${{Stage}}-{name}"]
                for name in machines
                for metric in ("ExecutionsFailed", "ExecutionsTimedOut")
            ],
        ),
        widget(
            "Journeys started",
            [
                [
                    "AWS/States",
                    "ExecutionsStarted",
                    "StateMachineArn",
                    f"{arn}careloop-${{Stage}}-{n}",
                ]
                for n in machines
            ],
        ),
        widget("Function errors", [["AWS/Lambda", "Errors", "FunctionName", f] for f in functions]),
        widget(
            "Function throttles",
            [["AWS/Lambda", "Throttles", "FunctionName", f] for f in functions],
        ),
        widget(
            "API",
            [
                ["AWS/ApiGateway", metric, "ApiName", "careloop-${Stage}", "Stage", api_stage]
                for metric in ("Count", "4XXError", "5XXError")
            ],
        ),
        widget(
            "Unhandled events (dead-letter queue)",
            [
                [
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    "careloop-${Stage}-async-failures",
                ]
            ],
        ),
        widget(
            "Care",
            [
                ["CareLoop", metric, "service", "careloop-api", "stage", "${Stage}"]
                for metric in (*PRODUCT_METRICS, *FAILURE_METRICS)
            ],
        ),
    ]
    template["Resources"]["OperationsDashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": {"Fn::Sub": "careloop-${Stage}"},
            "DashboardBody": {"Fn::Sub": json.dumps({"widgets": widgets})},
        },
    }


def _function_logical_id(name: str) -> str:
    from chalice.utils import to_cfn_resource_name

    # Chalice renames the API's function; every other keeps the name app.py gives it.
    return "APIHandler" if name == "api_handler" else to_cfn_resource_name(name)


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
    athena_queries(template)
    table_stream(template)
    tenant_data_role(template)
    observed_state_machines(template)
    observed_functions_and_api(template)
    dashboard(template)
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
