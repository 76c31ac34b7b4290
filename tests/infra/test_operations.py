"""What an operator deploys and watches: the packaged template after the SAM transform (what
CloudFormation will actually create), its alarms, logs, tracing and throttling, and the settings
the code reads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.infra.test_templates_and_state_machines import _package

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _package("staging", tmp_path_factory.mktemp("package") / "staging")


@pytest.fixture(scope="module")
def translated(packaged: dict[str, Any], monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    """The SAM transform, offline: code and definitions as `aws cloudformation package` would
    leave them (S3 URIs), no managed policy to look up (every role here is explicit)."""
    from samtranslator.translator.transform import transform

    monkeypatch_module.setenv("AWS_DEFAULT_REGION", REGION)
    template = json.loads(json.dumps(packaged))
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = "s3://deploy-bucket/deployment.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine":
            properties["DefinitionUri"] = (
                f"s3://deploy-bucket/{Path(properties['DefinitionUri']).name}"
            )

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    result: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return result


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical: resource["Properties"]
        for logical, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def test_the_transformed_template_passes_cfn_lint(translated: dict[str, Any]) -> None:
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(translated), config=ManualArgs(regions=[REGION]))
    assert [str(m) for m in matches if m.rule.id[0] in "EW"] == []


def test_state_machines_are_traced_and_log_errors_without_execution_data(
    translated: dict[str, Any],
) -> None:
    machines = _of_type(translated, "AWS::StepFunctions::StateMachine")
    assert len(machines) == 9
    for logical, machine in machines.items():
        assert machine["TracingConfiguration"] == {"Enabled": True}, logical
        logging = machine["LoggingConfiguration"]
        # Execution data is the journeys' inputs and outputs: ids only, but never in logs.
        assert logging["Level"] == "ERROR" and logging["IncludeExecutionData"] is False


def test_every_log_group_expires(translated: dict[str, Any]) -> None:
    groups = _of_type(translated, "AWS::Logs::LogGroup")
    functions = _of_type(translated, "AWS::Lambda::Function")
    machines = _of_type(translated, "AWS::StepFunctions::StateMachine")
    assert len(groups) == len(functions) + len(machines)
    assert all(0 < group["RetentionInDays"] <= 365 for group in groups.values())


def _alarmed(alarm: dict[str, Any]) -> str:
    return json.dumps([alarm.get("Dimensions"), alarm.get("Metrics")])


def test_every_function_and_state_machine_and_the_api_raise_alarms_to_operators(
    translated: dict[str, Any],
) -> None:
    alarms = _of_type(translated, "AWS::CloudWatch::Alarm")
    assert all(
        alarm["AlarmActions"] == [{"Ref": "OperationsAlertsTopic"}] for alarm in alarms.values()
    )
    watched = " ".join(_alarmed(alarm) for alarm in alarms.values())
    for logical in _of_type(translated, "AWS::Lambda::Function"):
        assert json.dumps({"Ref": logical}) in watched, f"no alarm on {logical}'s errors"
    for logical in _of_type(translated, "AWS::StepFunctions::StateMachine"):
        assert json.dumps({"Ref": logical}) in watched, f"no alarm on {logical}'s failures"
    # A state machine's failures and time-outs are each published only when they happen.
    for alarm in alarms.values():
        for entry in alarm.get("Metrics", []):
            if "Expression" in entry:
                assert entry["Expression"] == "FILL(failed, 0) + FILL(timedout, 0)"
    metrics = {alarm.get("MetricName") for alarm in alarms.values()}
    assert {"5XXError", "ApproximateNumberOfMessagesVisible"} <= metrics
    assert {"JourneyStepFailed", "MessageOutcomeUnknown", "DeliveryRecordLost"} <= metrics


def test_one_dashboard_shows_journeys_functions_api_queue_and_care(
    translated: dict[str, Any],
) -> None:
    (dashboard,) = _of_type(translated, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["DashboardBody"]["Fn::Sub"])
    titles = [widget["properties"]["title"] for widget in body["widgets"]]
    assert len(titles) == 7
    text = json.dumps(body)
    for needle in ("ExecutionsFailed", "AWS/Lambda", "5XXError", "async-failures", "MessageSent"):
        assert needle in text


def test_the_api_stage_is_throttled_traced_and_named_for_its_stage(
    translated: dict[str, Any],
) -> None:
    (stage,) = _of_type(translated, "AWS::ApiGateway::Stage").values()
    assert stage["TracingEnabled"] is True
    (setting,) = stage["MethodSettings"]
    assert setting["ThrottlingRateLimit"] > 0 and setting["ThrottlingBurstLimit"] > 0
    (api,) = _of_type(translated, "AWS::ApiGateway::RestApi").values()
    assert api["Name"] == {"Fn::Sub": "careloop-${Stage}"}


def test_the_table_and_topics_are_encrypted_with_the_platforms_own_key(
    translated: dict[str, Any],
) -> None:
    tables = _of_type(translated, "AWS::DynamoDB::Table")
    assert set(tables) == {"CareLoopTable", "AnalyticsTable"}
    for table in tables.values():
        assert table["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "DataKey"}
    # Only the records table streams: keeping the analytics counters makes no records to count.
    assert "StreamSpecification" not in tables["AnalyticsTable"]
    for logical, topic in _of_type(translated, "AWS::SNS::Topic").items():
        assert topic["KmsMasterKeyId"] == {"Ref": "DataKey"}, logical


# Settings the code reads that a deployment need not set, and why.
UNSET_ON_PURPOSE = {
    "AWS_REGION": "Lambda sets it",
    "AWS_DEFAULT_REGION": "Lambda sets it",
    "AWS_ENDPOINT_URL": "the emulator's, locally",
    "JWKS_URL": "derived from the issuer; the emulator's file, locally",
    "MAX_BODY_BYTES": "a default the API keeps",
    "CARELOOP_STAGE": "set by .chalice/config.json per stage",
}
# Settings only one function needs.
ONLY_FOR = {"TENANT_DATA_ROLE_ARN": "APIHandler"}  # the others never act for a tenant


def test_every_setting_the_code_reads_is_set_for_every_function(
    packaged: dict[str, Any],
) -> None:
    source = (ROOT / "chalicelib" / "settings.py").read_text()
    read = set(re.findall(r"(?:os\.environ\.get|_required)\(\s*\"([A-Z_]+)\"", source))
    assert {"TABLE_NAME", "JWT_ISSUER", "USER_POOL_ID", "APP_LINK_BASE"} <= read
    globals_ = set(packaged["Globals"]["Function"]["Environment"]["Variables"])
    for logical, function in _of_type(packaged, "AWS::Serverless::Function").items():
        own = set(function.get("Environment", {}).get("Variables", {}))
        others = {name for name, only in ONLY_FOR.items() if only != logical}
        missing = read - globals_ - own - set(UNSET_ON_PURPOSE) - others
        assert not missing, f"{logical} would run without {sorted(missing)}"
        assert "CARELOOP_STAGE" in own | globals_, logical


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_the_tables_daily_export_is_private_expires_and_its_queries_are_the_tested_sql(
    packaged: dict[str, Any],
) -> None:
    """The export bucket (analytics_export writes it, Athena reads it) is encrypted, private and
    expires; each saved Athena query is its infra/athena/ file (the SQL the DuckDB test runs);
    the export function may export the stage's table into the bucket's export prefix, and list
    and describe that table's exports (to find the day's), only."""
    resources = packaged["Resources"]
    records = resources["CareLoopTable"]["Properties"]
    assert records["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    bucket = resources["ExportBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and 0 < rule["ExpirationInDays"] <= 35
    queries = _of_type(packaged, "AWS::Athena::NamedQuery")
    files = sorted((ROOT / "infra" / "athena").glob("*.sql"))
    assert len(queries) == len(files) >= 2
    deployed = {query["QueryString"] for query in queries.values()}
    assert deployed == {path.read_text() for path in files}
    assert all(query["Database"] == {"Ref": "ExportDatabase"} for query in queries.values())
    role = resources["AnalyticsExport"]["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = resources[role]["Properties"]["Policies"]
    granted = {
        action: statement["Resource"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in _actions(statement)
        if action.startswith(("dynamodb:", "s3:"))
    }
    assert set(granted) == {
        "dynamodb:ExportTableToPointInTime",
        "dynamodb:ListExports",
        "dynamodb:DescribeExport",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:PutObjectAcl",
    }
    assert "exports-${AWS::AccountId}/table/*" in json.dumps(granted["s3:PutObject"])
    table = json.dumps(granted["dynamodb:ExportTableToPointInTime"])
    assert table.endswith(':table/careloop-${Stage}"}')
    assert json.dumps(granted["dynamodb:ListExports"]) == table
    assert json.dumps(granted["dynamodb:DescribeExport"]) == table.replace('"}', '/export/*"}')
