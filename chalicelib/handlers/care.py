"""Step Functions step handlers of the aftercare and recall journeys. One function per journey:
the action names the service call, so the handler stays one validate and one call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.domain.aftercare import AftercareRef
from chalicelib.domain.recall import RecallRef
from chalicelib.domain.step_results import (
    AftercareFinished,
    AftercareStepSent,
    CheckInEscalated,
    CheckInReminded,
    Looked,
    NextAftercareStep,
    RecallBackfillPage,
    RecallFinished,
    RecallPlan,
    RecallStepDone,
    RecheckChecked,
    StepSkipped,
)
from chalicelib.handlers.inbound import parse_notification
from chalicelib.handlers.runner import Event, step_handler
from chalicelib.services.registry import services

# Each action returns its own shape (the service call's), which the state machine reads.
AftercareResult = (
    NextAftercareStep
    | AftercareStepSent
    | CheckInReminded
    | CheckInEscalated
    | Looked
    | RecheckChecked
    | StepSkipped
    | AftercareFinished
)


@step_handler("aftercare-task")
def aftercare_task(event: Event) -> AftercareResult:
    care = services().aftercare.steps
    ref = AftercareRef(
        tenant_id=event["tenant_id"], patient_id=event["patient_id"], journey_id=event["journey_id"]
    )
    step = event.get("step_id", "")
    actions: dict[str, Callable[[], AftercareResult]] = {
        "next": lambda: care.next(ref),
        "send": lambda: care.send(ref, step),
        "remind": lambda: care.remind(ref, step),
        "escalate": lambda: care.escalate(ref, step),
        "recheck_outcome": lambda: care.recheck_outcome(ref, step),
        "look": lambda: care.look(ref),
        "skip": lambda: care.skip(ref, step, event["skipped_action"]),
        "finish": lambda: care.finish(ref),
    }
    return actions[event["action"]]()


@step_handler("recall-task")
def recall_task(event: Event) -> RecallPlan | RecallStepDone | RecallFinished:
    recall = services().recall
    ref = RecallRef(
        tenant_id=event["tenant_id"],
        patient_id=event["patient_id"],
        rule_id=event["rule_id"],
        due_date=event["due_date"],
    )
    if event["action"] == "plan":
        return recall.plan(ref)
    if event["action"] == "step":
        return recall.step(ref, event["step"])
    return recall.finish(ref)


@step_handler("recall-backfill-task")
def recall_backfill(event: Event) -> RecallBackfillPage:
    """One page of a saved rule's backfill."""
    return services().recall.backfill_page(event)


def recall_sweep(event: Any) -> Event:
    """The daily schedule: start the recalls that became due."""
    return services().recall.sweep()


def journey_event(event: Any) -> Event | None:
    """An event on the journey-events topic (appointment.fulfilled): its care plans start and
    the recall counts it restarts are set."""
    message = parse_notification(event.message, "journey-event")
    if message is None:
        return None
    care = services()
    started = care.aftercare.starting.on_event(message, message["appointment_id"])
    return {"aftercare": started, "recalls": care.recall.on_visit(message)}
