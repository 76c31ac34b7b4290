"""Step Functions step handlers of the campaign driver and of one patient's outreach. Thin:
validate the input, one service call, return what the state machine reads."""

from __future__ import annotations

from chalicelib.domain.step_results import CampaignBatch, DriverContinued, OutreachSent
from chalicelib.handlers.runner import Event, step_handler
from chalicelib.services.campaigns import CampaignService
from chalicelib.services.registry import services


def _service() -> CampaignService:
    return services().campaigns


@step_handler("campaign-step")
def campaign_batch(event: Event) -> CampaignBatch | DriverContinued:
    """The driver's tasks, named by `action` after the service call: the next batch, or (its
    history filling up) its next execution."""
    if event.get("action") == "continue_as_new":
        return _service().continue_as_new(event)
    return _service().batch(event)


@step_handler("campaign-step")
def campaign_send(event: Event) -> OutreachSent:
    return _service().send(event)


@step_handler("campaign-step")
def campaign_send_failed(event: Event) -> OutreachSent:
    return _service().failed(event)
