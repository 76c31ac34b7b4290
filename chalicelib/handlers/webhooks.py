"""Step Functions step handlers of the webhook machine (statemachines/webhook.asl.json). Thin:
validate the input, one service call, return what the state machine reads."""

from __future__ import annotations

from chalicelib.domain.webhooks import DeadLettered, DeliveryOutcome
from chalicelib.handlers.runner import Event, step_handler
from chalicelib.services.registry import services


@step_handler("webhook-delivery")
def webhook_deliver(event: Event) -> DeliveryOutcome:
    """One signed POST of the event's FHIR resource; `Retryable` when the receiver may take it
    later, `rejected` when it will not (or may not be called)."""
    return services().webhooks.deliver(event)


@step_handler("webhook-delivery")
def webhook_dead_letter(event: Event) -> DeadLettered:
    """What never got through, into the tenant's dead-letter list for staff to replay."""
    return services().webhooks.dead_letter(event)
