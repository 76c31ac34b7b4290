"""SNS handlers: two-way SMS replies and SES feedback. Thin: parse, validate, one call."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.errors import ValidationFailed
from chalicelib.observability import logger
from chalicelib.schemas import validate
from chalicelib.services.inbound import InboundMessages
from chalicelib.services.registry import services


def _inbound() -> InboundMessages:
    return services().inbound


def parse_notification(message: str, schema: str) -> dict[str, Any] | None:
    """A malformed notification is logged and dropped: retrying it would never succeed."""
    try:
        notification: dict[str, Any] = json.loads(message)
        validate(schema, notification)
    except (ValueError, ValidationFailed):
        logger.warning("malformed notification dropped", extra={"schema": schema})
        return None
    return notification


def inbound_sms(event: Any) -> None:
    notification = parse_notification(event.message, "inbound-sms")
    if notification is not None:
        _inbound().sms(notification)


def email_feedback(event: Any) -> None:
    notification = parse_notification(event.message, "email-feedback")
    if notification is not None:
        _inbound().email_feedback(notification)
