"""Seeded faults injected into the running product (the fault tier's tests and `make bench`).

Whether a call fails depends only on the seed, on what the call is (its operation and a digest
of its parameters) and on how many times that same call was made before, never on the order in
which threads happen to run: a profile is reproducible.

Where faults enter, without touching product code:
- the product's own AWS calls (its boto3 clients and PynamoDB's): throttling that remains after
  the SDK's retries (raised as the service raises it), and an SMS that SNS accepted but whose
  answer the client never saw (a read timeout after the publish);
- the emulator's Lambda invoke: `Lambda.ServiceException` before the function ran or after it
  ran (its effects happened, its result is lost), and a task timeout after it ran.
The emulator's own Step Functions interpreter is left alone (it signs with other credentials).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# The error each service answers when it throttles.
THROTTLE_CODES = {
    "sns": "Throttled",
    "sesv2": "TooManyRequestsException",
    "dynamodb": "ThrottlingException",
}
DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
)
APP_ACCESS_KEY = "local"  # the product's credentials in the local runtime


@dataclass
class Profile:
    """Rates (0..1) of each fault; zero means off."""

    name: str
    throttle: float = 0.0  # SNS publish, SES send and DynamoDB writes
    lambda_before: float = 0.0  # Lambda.ServiceException before the function ran
    lambda_after: float = 0.0  # Lambda.ServiceException after the function ran
    timeout: float = 0.0  # States.Timeout after the function ran
    ambiguous_sms: float = 0.0  # SMS sent, answer lost


@dataclass
class Faults:
    profile: Profile | None = None
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _roll(self, kind: str, rate: float, identity: str) -> bool:
        """Deterministic: the n-th time this same call is made, with this seed."""
        if rate <= 0:
            return False
        with self._lock:
            nth = self._seen[f"{kind}|{identity}"]
            self._seen[f"{kind}|{identity}"] += 1
        digest = hashlib.sha256(f"{self.seed}|{kind}|{identity}|{nth}".encode()).digest()
        hit = int.from_bytes(digest[:8], "big") / 2**64 < rate
        if hit:
            with self._lock:
                self.injected[kind] += 1
        return hit

    def roll(self, kind: str, identity: str) -> bool:
        profile = self.profile
        return profile is not None and self._roll(kind, getattr(profile, kind), identity)


faults = Faults()


@contextmanager
def injected(profile: Profile, seed: int) -> Iterator[Faults]:
    faults.profile, faults.seed = profile, seed
    faults.injected.clear()
    faults._seen.clear()
    try:
        yield faults
    finally:
        faults.profile = None


def _identity(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def _is_app_client(client: Any) -> bool:
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    return getattr(credentials, "access_key", None) == APP_ACCESS_KEY


def _throttled(service: str, operation: str, params: dict[str, Any]) -> Any:
    from botocore.exceptions import ClientError

    if operation == "TransactWriteItems":
        # DynamoDB cancels a transaction whose item was throttled; it does not throttle it.
        items = params.get("TransactItems", [])
        return ClientError(
            {
                "Error": {
                    "Code": "TransactionCanceledException",
                    "Message": "Transaction cancelled (injected)",
                },
                "CancellationReasons": [{"Code": "ThrottlingError"}]
                + [{"Code": "None"}] * (len(items) - 1),
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            operation,
        )
    return ClientError(
        {
            "Error": {"Code": THROTTLE_CODES[service], "Message": "Rate exceeded (injected)"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


def install() -> None:
    """Hook the product's AWS calls; a no-op while no profile is armed."""
    from botocore.client import BaseClient
    from botocore.exceptions import ReadTimeoutError

    if getattr(BaseClient, "_careloop_faults", False):
        return
    original = BaseClient._make_api_call

    def make_api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if faults.profile is None or not _is_app_client(self):
            return original(self, operation, params)
        service = self.meta.service_model.service_name
        identity = f"{service}.{operation}.{_identity(params)}"
        throttles = (
            (service == "sns" and operation == "Publish")
            or (service == "sesv2" and operation == "SendEmail")
            or (service == "dynamodb" and operation in DYNAMODB_WRITES)
        )
        if throttles and faults.roll("throttle", identity):
            raise _throttled(service, operation, params)
        result = original(self, operation, params)
        if service == "sns" and "PhoneNumber" in params and faults.roll("ambiguous_sms", identity):
            raise ReadTimeoutError(endpoint_url="https://sns.amazonaws.com (injected)")
        return result

    BaseClient._make_api_call = make_api_call
    BaseClient._careloop_faults = True
    _timeouts_as_step_functions_reports_them()


TIMEOUT_MARKER = "States.Timeout"


def _timeouts_as_step_functions_reports_them() -> None:
    """An injected timeout comes back from the Lambda hook as a function error named
    States.Timeout; the interpreter turns it into the TaskTimedOut failure it reports when a
    task outlives its TimeoutSeconds (a real one would take that long in real time)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda as service,
    )

    original = service.StateTaskServiceLambda._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if isinstance(ex, lambda_eval_utils.LambdaFunctionErrorException):
            try:
                error_type = json.loads(ex.payload).get("errorType")
            except ValueError:
                error_type = None
            if error_type == TIMEOUT_MARKER:
                return self._get_timed_out_failure_event(env)
        return original(self, env, ex)

    service.StateTaskServiceLambda._from_error = from_error  # type: ignore[method-assign]


def lambda_service_error() -> Exception:
    """What Lambda's invoke answers when the service fails (Lambda.ServiceException)."""
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("ServiceException", "Lambda service failure (injected)")
    error.code = 500
    return error
