"""Answers to CloudFormation custom-resource requests: a PUT of the outcome to the pre-signed
URL the request carries (no AWS SDK call: the URL is the credential)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any, Literal

ATTEMPTS = 4


def respond(
    event: dict[str, Any],
    status: Literal["SUCCESS", "FAILED"],
    physical_id: str,
    reason: str = "",
    data: dict[str, str] | None = None,
) -> None:
    """Tell the stack how the request went. Retried a few times: a lost answer leaves the stack
    waiting an hour for its timeout."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:500] or status,
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": data or {},
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is CloudFormation's, https
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    for attempt in range(ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                return
        except OSError:
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.5 * 2**attempt)
