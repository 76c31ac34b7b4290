"""Step Functions step handlers of the appointment journey (statemachines/appointment.asl.json).
Thin: validate the input, one service call, return what the state machine reads."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.step_results import JourneyState
from chalicelib.handlers.runner import Event, step_handler
from chalicelib.services.registry import services


@step_handler("journey-step")
def appointment_journey_step(event: Event) -> JourneyState:
    """Take the step the journey waited for; the result names the next one and its moment."""
    return services().appointment_journey.take(event)


@step_handler("journey-step")
def appointment_journey_skip(event: Event) -> JourneyState:
    """After a step failed every retry (and staff were told): where the journey goes on."""
    return services().appointment_journey.skip(event)


def repair_sweep(event: Any) -> Event:
    """The schedule that settles what committed appointment changes still owe their journeys
    (an execution that did not start or stop when the API answered)."""
    return services().appointments.repair_journeys()
