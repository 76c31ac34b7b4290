"""Every journey's last resort (each state machine's report task)."""

from __future__ import annotations

from chalicelib.domain.task_results import StepFailedReported
from chalicelib.services.registry import services
from chalicelib.tasks.runner import Event, step_task


@step_task("step-failed")
def journey_step_failed(event: Event) -> StepFailedReported:
    """A step that failed after all its retries is put before staff (a task naming the journey
    and the step, and a metric); the journey then goes on or ends, as its machine says."""
    return services().journey_failures.report(event)
