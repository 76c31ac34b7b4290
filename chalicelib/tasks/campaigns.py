"""Step Functions task handlers of the campaign driver and of one patient's outreach. Thin:
validate the input, one service call, return what the state machine reads."""

from __future__ import annotations

from typing import Any

from chalicelib.schemas import validate
from chalicelib.services.campaigns import CampaignService
from chalicelib.services.registry import services

Event = dict[str, Any]


def _service() -> CampaignService:
    return services().campaigns


def _ref(event: Event) -> Event:
    validate("campaign-step", event)
    return event


def campaign_batch(event: Event, context: Any = None) -> Event:
    return _service().batch(_ref(event))


def campaign_send(event: Event, context: Any = None) -> Event:
    return _service().send(_ref(event))


def campaign_send_failed(event: Event, context: Any = None) -> Event:
    return _service().failed(_ref(event))
