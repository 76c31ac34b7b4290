"""Starting, stopping and resuming Step Functions executions.

Executions are named after what they are about (an appointment's journey version, a recall
cycle, a campaign's patient), so a retried start is a no-op and a stop needs no lookup.
A transient failure raises DependencyUnavailable; the caller retries (or its repair sweep does).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.adapters.clients import client
from chalicelib.adapters.failures import error_code, raise_classified
from chalicelib.domain.common import Document


def execution_arn(machine_arn: str, name: str) -> str:
    return f"{machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


class Executions:
    def __init__(self, make_client: Callable[[str], Any] = client) -> None:
        self._client = make_client

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._client("stepfunctions"), operation)(**params)
        except Exception as exc:
            raise_classified(exc)

    def start(self, machine_arn: str, name: str, payload: Document) -> bool:
        """Start one execution; False if one of that name exists already."""
        try:
            self._call(
                "start_execution", stateMachineArn=machine_arn, name=name, input=json.dumps(payload)
            )
        except Exception as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return False
            raise
        return True

    def stop(self, machine_arn: str, name: str, cause: str) -> None:
        """Stop it if it runs; a name never started, or already over, is not an error."""
        try:
            self._call("stop_execution", executionArn=execution_arn(machine_arn, name), cause=cause)
        except Exception as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                raise

    def resume(self, token: str, output: Document) -> bool:
        """Complete a waiting task. False if the wait is already over (answered, timed out)."""
        try:
            self._call("send_task_success", taskToken=token, output=json.dumps(output))
        except Exception as exc:
            code = error_code(exc)
            if code in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                return False
            raise
        return True
