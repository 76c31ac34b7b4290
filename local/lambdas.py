"""Runs the Chalice app's Lambda functions in-process when the emulator invokes them.

moto without Docker answers Lambda invokes from `LambdaSimpleBackend`, which only echoes the
payload. This replaces its `invoke` with one that calls the same `@app.lambda_function` handler
that runs on AWS. An exception is returned the way Lambda returns it (`x-amz-function-error`
plus errorType/errorMessage), so ASL Retry and Catch see the real error name.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.activity import activity
from local.aws_calls import function_of, running
from local.faults import TIMEOUT_MARKER, faults, lambda_service_error
from local.meter import meter

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of the real Lambda context that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def function_name(app_name: str, stage: str, name: str) -> str:
    """The name `chalice deploy` gives a function: <app>-<stage>-<name>."""
    return f"{app_name}-{stage}-{name}"


def install(handlers: Mapping[str, Handler], region: str, account: str) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(
        self: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        name = function_name.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        handler = handlers.get(name)
        if handler is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error("ResourceNotFoundException", f"no in-process handler for {name}")
        arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
        event = json.loads(body) if body else {}
        identity = f"{name}|{body!r}"
        if faults.roll("lambda_before", identity):
            raise lambda_service_error()  # the function never ran
        activity.begin()
        meter.add("lambda_invocations")
        try:
            with running(function_of(name)):
                context = LambdaContext(function_name=name, invoked_function_arn=arn)
                result = handler(event, context)
        except Exception as exc:  # reported to the state machine as Lambda reports it
            # As CloudWatch would show it; a failing test prints it (injected faults too).
            logger.warning("%s raised %s", name, type(exc).__name__, exc_info=exc)
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error(type(exc).__name__, str(exc), traceback.format_exc().splitlines())
        finally:
            activity.end()
        if faults.roll("lambda_after", identity):
            raise lambda_service_error()  # it ran, its effects happened, its answer is lost
        if faults.roll("timeout", identity):
            # It ran, but after the state's TimeoutSeconds: Step Functions reports a timeout.
            response_headers["x-amz-function-error"] = "Unhandled"
            return _error(TIMEOUT_MARKER, "the task timed out (injected)")
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def _error(error_type: str, message: str, trace: list[str] | None = None) -> bytes:
    return json.dumps(
        {"errorType": error_type, "errorMessage": message, "stackTrace": trace or []}
    ).encode()
