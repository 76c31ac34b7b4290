"""Task of the smoke journey: records the run in DynamoDB and prepares the messages the state
machine then sends through SNS and SES itself."""

from __future__ import annotations

from typing import Any, TypedDict

from chalicelib import clock
from chalicelib.schemas import validate
from chalicelib.store.smoke import SmokeRunRepository


class SmokeRecorded(TypedDict):
    """`$.record`, which the smoke machine's SNS and SES steps read."""

    recorded_at: str
    sms_body: str
    email_subject: str
    email_body: str


def record_smoke_run(event: dict[str, Any], context: Any = None) -> SmokeRecorded:
    validate("smoke-input", event)
    recorded_at = clock.iso(clock.now())
    SmokeRunRepository().record(event["tenant_id"], event["run_id"], recorded_at)
    return {
        "recorded_at": recorded_at,
        "sms_body": f"CareLoop smoke run {event['run_id']} at {recorded_at}",
        "email_subject": f"CareLoop smoke run {event['run_id']}",
        "email_body": f"The smoke journey ran at {recorded_at}.",
    }
