"""Starting, stopping and resuming journey executions (Step Functions).

One Standard execution per appointment and journey version, named deterministically
(`<tenant>-<appointment>-v<n>`), so a retried start is a no-op; a reschedule stops version n and
starts n + 1; a cancel stops the current one.
"""

from __future__ import annotations

import json

from chalicelib.aws import client
from chalicelib.domain.common import Document
from chalicelib.settings import get_settings


def execution_name(tenant_id: str, appointment: Document) -> str:
    return f"{tenant_id}-{appointment['id']}-v{appointment['journey_version']}"


def execution_arn(tenant_id: str, appointment: Document) -> str:
    machine = get_settings().appointment_journey_arn
    prefix = machine.replace(":stateMachine:", ":execution:")
    return f"{prefix}:{execution_name(tenant_id, appointment)}"


def start(tenant_id: str, appointment: Document) -> None:
    payload = {
        "tenant_id": tenant_id,
        "appointment_id": appointment["id"],
        "journey_version": appointment["journey_version"],
    }
    start_named(
        get_settings().appointment_journey_arn, execution_name(tenant_id, appointment), payload
    )


def start_named(machine_arn: str, name: str, payload: Document) -> bool:
    """Start one execution under a name derived from what it is about. False if one of that
    name exists already: a retried or repeated start is a no-op."""
    sfn = client("stepfunctions")
    try:
        sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(payload))
    except sfn.exceptions.ExecutionAlreadyExists:
        return False
    return True


def stop(tenant_id: str, appointment: Document, cause: str) -> None:
    sfn = client("stepfunctions")
    try:
        sfn.stop_execution(executionArn=execution_arn(tenant_id, appointment), cause=cause)
    except sfn.exceptions.ExecutionDoesNotExist:
        return


def resume(token: str, output: Document) -> bool:
    """Complete a waiting task. False if the wait is already over (answered, timed out)."""
    sfn = client("stepfunctions")
    try:
        sfn.send_task_success(taskToken=token, output=json.dumps(output))
    except (
        sfn.exceptions.TaskTimedOut,
        sfn.exceptions.InvalidToken,
        sfn.exceptions.TaskDoesNotExist,
    ):
        return False
    return True
