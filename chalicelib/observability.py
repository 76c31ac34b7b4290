"""Logger and Metrics, created once per process and attached to the app as middleware.

Log lines carry ids and error codes, never names, phone numbers, email addresses or bodies.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.settings import deployment_stage

# The service name differs from the Chalice app name: a Powertools Logger named like the app
# would print every line twice through Chalice's own log handler.
logger = Logger(service="careloop-api")
metrics = Metrics(namespace="CareLoop", service="careloop-api")
# Two stages may share an account: each stage's alarms read its own counters.
metrics.set_default_dimensions(stage=deployment_stage())

# Most reads emit no metric; Powertools would warn about that on every one of them.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def count(name: str, value: int = 1) -> None:
    """Add to a business counter (flushed as EMF at the end of the invocation)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def run_hooks(
    hooks: Sequence[Callable[[str, Any], None]], tenant_id: str, doc: dict[str, Any]
) -> None:
    """Tell other services of a change already saved. Their failure must not turn a saved
    change into an error (each has its own safety net), so it is logged and counted."""
    for hook in hooks:
        try:
            hook(tenant_id, doc)
        except Exception:
            logger.exception("follow-up failed", extra={"hook": getattr(hook, "__qualname__", "")})
            count("FollowUpFailed")
