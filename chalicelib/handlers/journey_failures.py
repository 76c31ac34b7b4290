"""Every journey's last resort (each state machine's report task)."""

from __future__ import annotations

from chalicelib.domain.step_results import StepFailedReported
from chalicelib.handlers.runner import Event, step_handler
from chalicelib.services.registry import services


@step_handler("step-failed")
def journey_step_failed(event: Event) -> StepFailedReported:
    """A step that failed after all its retries is put before staff (a task naming the journey
    and the step, and a metric); the journey then goes on or ends, as its machine says."""
    return services().journey_failures.report(event)
