"""Step Functions task handlers of the appointment journey. Thin: validate the input, one
service call, return what the state machine reads (see `tasks.runner`)."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.deliveries import SendResult
from chalicelib.domain.task_results import (
    AnswerHeld,
    DeadlineChecked,
    JourneyPlan,
    RebookChecked,
    StaffTaskOpened,
    StepFailedReported,
    VisitOutcome,
)
from chalicelib.services.journeys import JourneyService
from chalicelib.services.registry import services
from chalicelib.tasks.runner import Event, step_task


def _service() -> JourneyService:
    return services().journeys


@step_task("journey-step")
def journey_plan(event: Event) -> JourneyPlan:
    return _service().plan(event)


@step_task("journey-step")
def journey_send(event: Event) -> SendResult:
    return _service().send(event, event["step"])


@step_task("journey-step")
def journey_hold_answer(event: Event) -> AnswerHeld:
    return _service().hold_answer(event, event["token"], event.get("answer_deadline"))


@step_task("journey-step")
def journey_answer_deadline(event: Event) -> DeadlineChecked:
    return _service().answer_deadline(event)


@step_task("journey-step")
def journey_visit_outcome(event: Event) -> VisitOutcome:
    return _service().visit_outcome(event)


@step_task("journey-step")
def journey_check_rebooked(event: Event) -> RebookChecked:
    return _service().rebooked(event)


@step_task("journey-step")
def journey_staff_task(event: Event) -> StaffTaskOpened:
    return _service().staff_task(event, event["kind"])


@step_task("step-failed")
def journey_step_failed(event: Event) -> StepFailedReported:
    """Any journey's last resort: a step that failed after all its retries is put before staff
    (a task naming the journey and the step, and a metric), and the journey goes on or ends."""
    return services().journey_failures.report(event)


def repair_sweep(event: Any) -> Event:
    """The schedule that settles what committed appointment changes still owe their journeys
    (an execution that did not start or stop when the API answered)."""
    return services().appointments.repair_journeys()
