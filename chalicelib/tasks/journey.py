"""Step Functions task handlers of the appointment journey. Thin: validate the input, one
service call, return what the state machine reads."""

from __future__ import annotations

from typing import Any

from chalicelib.schemas import validate
from chalicelib.services.journeys import JourneyService
from chalicelib.services.registry import services

Event = dict[str, Any]


def _service() -> JourneyService:
    return services().journeys


def _ref(event: Event) -> Event:
    validate("journey-step", event)
    return event


def journey_plan(event: Event, context: Any = None) -> Event:
    return _service().plan(_ref(event))


def journey_send(event: Event, context: Any = None) -> Event:
    return _service().send(_ref(event), event["step"])


def journey_hold_answer(event: Event, context: Any = None) -> Event:
    return _service().hold_answer(_ref(event), event["token"], event.get("answer_deadline"))


def journey_answer_deadline(event: Event, context: Any = None) -> Event:
    return _service().answer_deadline(_ref(event))


def journey_visit_outcome(event: Event, context: Any = None) -> Event:
    return _service().visit_outcome(_ref(event))


def journey_check_rebooked(event: Event, context: Any = None) -> Event:
    return _service().rebooked(_ref(event))


def journey_staff_task(event: Event, context: Any = None) -> Event:
    return _service().staff_task(_ref(event), event["kind"])
