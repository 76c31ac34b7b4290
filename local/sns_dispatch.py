"""Delivers what is published on an SNS topic to the Chalice `@app.on_sns_message` handler
subscribed to it, in-process and in the background, as SNS invokes a subscribed Lambda.

Topics are matched on the name after the stage (`careloop-<stage>-inbound-sms` →
`inbound-sms`), so the app may have been imported before the local stage was set.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from local.activity import activity


def _topic_key(name: str) -> str:
    parts = name.split("-", 2)
    return parts[2] if len(parts) == 3 else name


def sns_event(topic_arn: str, message: str, subject: str | None) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": datetime.now(UTC).isoformat(),
                    "MessageAttributes": {},
                },
            }
        ]
    }


# Lambda runs an asynchronous invocation up to three times (two retries, about a minute and two
# minutes apart); what still fails goes to the function's dead-letter queue. Locally the retries
# come at once (no real waiting) and what still failed is kept here, where tests and
# `python -m local` can read it.
ASYNC_ATTEMPTS = 3
dead_letters: list[dict[str, Any]] = []


def deliver_with_retries(handler: Any, event: dict[str, Any], context: Any) -> None:
    for attempt in range(ASYNC_ATTEMPTS):
        try:
            handler(event, context)
        except Exception as exc:
            if attempt == ASYNC_ATTEMPTS - 1:
                logging.getLogger(__name__).warning("SNS handler failed after its retries")
                dead_letters.append({"event": event, "error": type(exc).__name__})
            continue
        return


def install(app_module: Any) -> None:
    from moto.sns.models import SNSBackend

    from local.lambdas import LambdaContext

    handlers: dict[str, Any] = {}
    for source in app_module.app.event_sources:
        topic = getattr(source, "topic", None)
        if topic:
            handlers[_topic_key(topic)] = getattr(app_module, source.handler_string.split(".")[1])
    original = SNSBackend.publish

    def publish(self: Any, message: str, arn: str | None, *args: Any, **kwargs: Any) -> str:
        message_id: str = original(self, message, arn, *args, **kwargs)
        handler = handlers.get(_topic_key(arn.rsplit(":", 1)[-1])) if arn else None
        if handler is not None and arn is not None:
            subject = kwargs.get("subject") or (args[1] if len(args) > 1 else None)
            event = sns_event(arn, message, subject)
            context = LambdaContext(function_name="sns-handler", invoked_function_arn=arn)

            def run() -> None:
                try:
                    deliver_with_retries(handler, event, context)
                finally:
                    activity.end()

            activity.begin()
            threading.Thread(target=run, daemon=True).start()
        return message_id

    SNSBackend.publish = publish  # type: ignore[method-assign]
