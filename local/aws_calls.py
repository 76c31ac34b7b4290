"""Which function made which AWS call: the suite's evidence for each function's IAM policy.

Moto does not enforce IAM, so a policy that denies the code's own call would only fail on AWS.
While `CARELOOP_RECORD_CALLS` names a directory, every botocore call made while a function runs
in-process (an API request, a Lambda invoke from a state machine, an SNS delivery, a schedule)
is written there as the IAM request AWS would authorise: (function, action, resource, the
condition keys the policies use). `tests/permissions` evaluates them against the packaged
template's policies. Calls made by the emulator itself (its Step Functions interpreter invoking
a function) run outside any function and are not recorded: the state machines' own roles are
checked by tests/infra.

One file per process (per test worker), one JSON line per distinct request.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ENV = "CARELOOP_RECORD_CALLS"
API_FUNCTION = "api_handler"

_running: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "running_function", default=None
)


def function_of(name: str) -> str:
    """The function's name in app.py from its deployed name (`careloop-local-smoke_record`)."""
    parts = name.split("-", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "careloop" else name


@contextmanager
def running(function: str | None) -> Iterator[None]:
    """AWS calls made inside are the function's (None: the emulator's own, not recorded)."""
    token = _running.set(function)
    try:
        yield
    finally:
        _running.reset(token)


def running_function() -> str | None:
    """The function whose code is running in this thread (None: the emulator's own work)."""
    return _running.get()


def api_function(path: str) -> str | None:
    """An API request runs in the API handler; the emulator's own /local routes are not part
    of any deployed function."""
    return None if path.startswith("/local") else API_FUNCTION


class _Recorder:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._path = directory / f"calls-{os.getpid()}.jsonl"
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def record(self, function: str, client: Any, operation: str, params: dict[str, Any]) -> None:
        from chalicelib.tenant_scope import acting_tenant

        meta = client.meta
        region = meta.region_name
        service = meta.service_model.signing_name
        tenant = acting_tenant() if _signed_for_a_tenant(client) else None
        for request in iam_requests(service, operation, params, region):
            line = json.dumps({"function": function, "tenant": tenant, **request}, sort_keys=True)
            with self._lock:
                if line in self._seen:
                    continue
                self._seen.add(line)
                # Made again if a new run of the suite cleared it while this one still records.
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with self._path.open("a", encoding="utf-8") as out:
                    out.write(line + "\n")


def _signed_for_a_tenant(client: Any) -> bool:
    """Will this client sign its request with a tenant's session (chalicelib/store/signing.py),
    rather than the function's own credentials? Read from the credentials it signs with, not
    from the acting tenant alone: a call that escaped the signing is judged by the role that
    really signs it."""
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    if credentials is None:
        return False
    frozen = credentials.get_frozen_credentials()
    return bool(frozen.access_key != credentials.access_key)


_installed: _Recorder | None = None


def install_from_environment() -> None:
    """Starts recording when the environment asks for it (the test session does)."""
    global _installed  # noqa: PLW0603 - installed once per process
    directory = os.environ.get(ENV)
    if not directory or _installed is not None:
        return
    from botocore.client import BaseClient

    recorder = _installed = _Recorder(Path(directory))
    original = BaseClient._make_api_call

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        function = _running.get()
        if function is not None:
            recorder.record(function, self, operation_name, api_params)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = make_api_call


# --- botocore operation → the IAM requests AWS authorises for it ------------------------------

ACCOUNT = "123456789012"  # moto's account; the policies are resolved with the same one
_KEY_ATTRIBUTES = {"PK", "GSI1PK", "GSI2PK"}


def _arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


def _request(action: str, resource: str, **context: Any) -> dict[str, Any]:
    return {"action": action, "resource": resource, "context": context}


def _string(value: Any) -> str:
    return str(value.get("S", value.get("N", ""))) if isinstance(value, dict) else str(value)


def _leading(key: dict[str, Any] | None) -> list[str]:
    return [_string(key["PK"])] if key and "PK" in key else []


def _query_partition(params: dict[str, Any]) -> list[str]:
    """The partition key value of a Query (PynamoDB writes `#0 = :0`)."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    condition = params.get("KeyConditionExpression", "")
    for placeholder, name in names.items():
        if name in _KEY_ATTRIBUTES:
            found = re.search(rf"{re.escape(placeholder)}\s*=\s*(:\w+)", condition)
            if found and found.group(1) in values:
                return [_string(values[found.group(1)])]
    return []


def _table(region: str, table: str, index: str | None = None) -> str:
    return _arn("dynamodb", region, f"table/{table}" + (f"/index/{index}" if index else ""))


_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}


def _dynamodb(operation: str, params: dict[str, Any], region: str) -> list[dict[str, Any]]:
    action = f"dynamodb:{operation}"
    if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
        key = params.get("Key") or params.get("Item")
        return [_request(action, _table(region, params["TableName"]), LeadingKeys=_leading(key))]
    if operation in ("Query", "Scan"):
        resource = _table(region, params["TableName"], params.get("IndexName"))
        return [_request(action, resource, LeadingKeys=_query_partition(params))]
    if operation == "BatchGetItem":
        return [
            _request(
                action,
                _table(region, table),
                LeadingKeys=sorted({k for key in spec["Keys"] for k in _leading(key)}),
            )
            for table, spec in params["RequestItems"].items()
        ]
    if operation == "BatchWriteItem":
        return [
            _request(
                action,
                _table(region, table),
                LeadingKeys=sorted(
                    {
                        k
                        for write in writes
                        for k in _leading(
                            write.get("PutRequest", {}).get("Item")
                            or write.get("DeleteRequest", {}).get("Key")
                        )
                    }
                ),
            )
            for table, writes in params["RequestItems"].items()
        ]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        # No action of their own: each item is authorised as the single-item call it is.
        requests = []
        for item in params["TransactItems"]:
            ((kind, spec),) = item.items()
            single = _TRANSACT.get(kind, "GetItem" if kind == "Get" else "ConditionCheckItem")
            key = spec.get("Key") or spec.get("Item")
            requests.append(
                _request(
                    f"dynamodb:{single}",
                    _table(region, spec["TableName"]),
                    LeadingKeys=_leading(key),
                )
            )
        return requests
    return [_request(action, _table(region, params.get("TableName", "*")))]


def _table_export(params: dict[str, Any]) -> list[dict[str, Any]]:
    """DynamoDB writes an export with the caller's own S3 permissions (AWS documents these
    three): they are authorised on the objects under the export's prefix."""
    written = f"arn:aws:s3:::{params['S3Bucket']}/{params['S3Prefix']}/AWSDynamoDB/data"
    return [
        _request("dynamodb:ExportTableToPointInTime", params["TableArn"]),
        *(
            _request(f"s3:{s3_action}", written)
            for s3_action in ("PutObject", "AbortMultipartUpload", "PutObjectAcl")
        ),
    ]


def _sns(action: str, params: dict[str, Any], region: str) -> list[dict[str, Any]]:
    # IAM's only SNS resource is a topic: a text to a phone number, a push to a device's
    # endpoint and a new endpoint are authorised on '*'.
    topic = params.get("TopicArn") or params.get("TargetArn", "")
    return [_request(action, topic if topic and ":endpoint/" not in topic else "*")]


def _ses(action: str, params: dict[str, Any], region: str) -> list[dict[str, Any]]:
    # Sending is authorised on the sender's identity and on the configuration set it names.
    domain = params["FromEmailAddress"].rsplit("@", 1)[-1].rstrip(">")
    requests = [_request(action, _arn("ses", region, f"identity/{domain}"))]
    if params.get("ConfigurationSetName"):
        config_set = f"configuration-set/{params['ConfigurationSetName']}"
        requests.append(_request(action, _arn("ses", region, config_set)))
    return requests


def _states(action: str, params: dict[str, Any], region: str) -> list[dict[str, Any]]:
    # A task token names no resource.
    arn = params.get("stateMachineArn") or params.get("executionArn")
    return [_request(action, arn or "*")]


def _cognito(action: str, params: dict[str, Any], region: str) -> list[dict[str, Any]]:
    pool = params.get("UserPoolId")
    return [_request(action, _arn("cognito-idp", region, f"userpool/{pool}") if pool else "*")]


def _sts(action: str, params: dict[str, Any], region: str) -> list[dict[str, Any]]:
    tags = {tag["Key"]: tag["Value"] for tag in params.get("Tags", [])}
    context = {f"RequestTag/{key}": value for key, value in tags.items()}
    if tags:
        context["TagKeys"] = sorted(tags)
    requests = [_request(action, params.get("RoleArn", "*"), **context)]
    if tags:
        requests.append(_request("sts:TagSession", params.get("RoleArn", "*"), **context))
    return requests


def _kms(action: str, params: dict[str, Any], region: str) -> list[dict[str, Any]]:
    key = str(params.get("KeyId") or "*")
    resource = key if key.startswith("arn:") or key == "*" else _arn("kms", region, f"key/{key}")
    context = {
        f"kms:EncryptionContext:{name}": value
        for name, value in (params.get("EncryptionContext") or {}).items()
    }
    return [_request(action, resource, **context)]


# S3 operations → the IAM action AWS authorises them as (HeadObject is a read of the object).
_S3_ACTIONS = {"HeadObject": "s3:GetObject", "ListObjectsV2": "s3:ListBucket"}


def _s3(action: str, params: dict[str, Any], region: str) -> list[dict[str, Any]]:
    operation = action.split(":", 1)[1]
    bucket, key = params.get("Bucket", "*"), params.get("Key")
    resource = f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")
    return [_request(_S3_ACTIONS.get(operation, action), resource)]


_SERVICES = {
    "s3": _s3,
    "kms": _kms,
    "sns": _sns,
    "ses": _ses,
    "states": _states,
    "cognito-idp": _cognito,
    "sts": _sts,
}


def iam_requests(
    signing_name: str, operation: str, params: dict[str, Any], region: str
) -> list[dict[str, Any]]:
    """The (action, resource, condition keys) AWS checks for one botocore call."""
    if signing_name == "dynamodb" and operation == "ExportTableToPointInTime":
        return _table_export(params)
    if signing_name == "dynamodb" and operation == "ListExports":
        # Authorised on the table it names (IAM's `table` resource), else on '*'.
        return [_request("dynamodb:ListExports", params.get("TableArn") or "*")]
    if signing_name == "dynamodb" and operation == "DescribeExport":
        return [_request("dynamodb:DescribeExport", params["ExportArn"])]
    if signing_name == "dynamodb":
        return _dynamodb(operation, params, region)
    action = f"{signing_name}:{operation}"
    if signing_name in _SERVICES:
        return _SERVICES[signing_name](action, params, region)
    return [_request(action, "*")]
