"""Delivers what is published on an SNS topic to the Chalice `@app.on_sns_message` handler
subscribed to it, in-process and in the background, as SNS invokes a subscribed Lambda.

Topics are matched on the name after the stage (`careloop-<stage>-inbound-sms` →
`inbound-sms`), so the app may have been imported before the local stage was set.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from local.activity import FlowThread
from local.dead_letters import invoke_async


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


def install(app_module: Any) -> None:
    from moto.sns.models import SNSBackend

    from local.lambdas import LambdaContext

    handlers: dict[str, tuple[str, Any]] = {}  # topic key → (function name, handler)
    for source in app_module.app.event_sources:
        topic = getattr(source, "topic", None)
        if topic:
            handler = getattr(app_module, source.handler_string.split(".")[1])
            handlers[_topic_key(topic)] = (source.name, handler)
    original = SNSBackend.publish

    def publish(self: Any, message: str, arn: str | None, *args: Any, **kwargs: Any) -> str:
        message_id: str = original(self, message, arn, *args, **kwargs)
        subscribed = handlers.get(_topic_key(arn.rsplit(":", 1)[-1])) if arn else None
        if subscribed is not None and arn is not None:
            name, handler = subscribed
            subject = kwargs.get("subject") or (args[1] if len(args) > 1 else None)
            event = sns_event(arn, message, subject)
            context = LambdaContext(function_name=name, invoked_function_arn=arn)

            def run() -> None:
                # Retried as Lambda retries an asynchronous invocation; what still fails is a
                # dead letter.
                invoke_async(handler, event, context, event_kind="sns", function=name)

            FlowThread(target=run, daemon=True).start()
        return message_id

    SNSBackend.publish = publish  # type: ignore[method-assign]
