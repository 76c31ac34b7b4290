"""The ways a message leaves: SMS (SNS publish to a number), email (SES v2, HTML and text
parts), push (SNS publish to the device endpoint the app registered) and topic notifications
to staff. Each send returns the provider's message id or raises what `adapters.failures` says
the failure means: `SendRefused` (try another channel), `DependencyUnavailable` (try again later)
or `OutcomeUnknown` (it may have left: do neither)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from chalicelib.adapters.clients import client
from chalicelib.adapters.failures import classify_send, raise_classified
from chalicelib.domain.messages import Rendered


def _text_of(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "\n", markup)).strip()


def _sent(call: Callable[[], Any]) -> str:
    try:
        answer = call()
    except Exception as exc:
        raise classify_send(exc) from exc
    return str(answer["MessageId"])


class Channels:
    def __init__(self, make_client: Callable[[str], Any] = client) -> None:
        self._client = make_client

    def send_sms(
        self,
        phone: str,
        message: Rendered,
        *,
        sender_id: str | None = None,
        origination_number: str | None = None,
    ) -> str:
        """From the hospital's two-way number when its text invites a reply (so the reply
        comes back to that number), else from its sender ID."""
        attributes: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
        }
        if origination_number:
            attributes["AWS.MM.SMS.OriginationNumber"] = {
                "DataType": "String",
                "StringValue": origination_number,
            }
        elif sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender_id}
        return _sent(
            lambda: self._client("sns").publish(
                PhoneNumber=phone, Message=message.body, MessageAttributes=attributes
            )
        )

    def send_email(
        self,
        *,
        from_address: str,
        reply_to: str,
        to: str,
        message: Rendered,
        fallback_subject: str,
        configuration_set: str | None = None,
    ) -> str:
        extra = {"ConfigurationSetName": configuration_set} if configuration_set else {}
        return _sent(
            lambda: self._client("sesv2").send_email(
                **extra,
                FromEmailAddress=from_address,
                Destination={"ToAddresses": [to]},
                ReplyToAddresses=[reply_to],
                Content={
                    "Simple": {
                        "Subject": {
                            "Data": message.subject or fallback_subject,
                            "Charset": "UTF-8",
                        },
                        "Body": {
                            "Html": {"Data": message.body, "Charset": "UTF-8"},
                            "Text": {"Data": _text_of(message.body), "Charset": "UTF-8"},
                        },
                    }
                },
            )
        )

    def send_push(self, endpoint_arn: str, message: Rendered) -> str:
        return _sent(
            lambda: self._client("sns").publish(
                TargetArn=endpoint_arn,
                Message=message.body,
                Subject=(message.subject or "")[:100] or None,
            )
        )

    def publish(
        self, topic_arn: str, subject: str, message: str, attributes: dict[str, str] | None = None
    ) -> None:
        """Publish to a topic; string attributes let subscribers filter (by department, say).
        A transient failure raises DependencyUnavailable: the caller tries again later."""
        try:
            self._client("sns").publish(
                TopicArn=topic_arn,
                Subject=subject[:100],
                Message=message,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in (attributes or {}).items()
                },
            )
        except Exception as exc:
            raise_classified(exc)

    def unregister_device(self, endpoint_arn: str) -> None:
        """Forget a device's push endpoint (an erased patient's); one already gone is no error."""
        try:
            self._client("sns").delete_endpoint(EndpointArn=endpoint_arn)
        except Exception as exc:
            raise_classified(exc)

    def register_device(self, application_arn: str, token: str) -> str:
        """The push endpoint of a device token. SNS returns the same endpoint for the same
        token, so registering twice is harmless."""
        try:
            answer = self._client("sns").create_platform_endpoint(
                PlatformApplicationArn=application_arn, Token=token
            )
        except Exception as exc:
            raise_classified(exc)
        return str(answer["EndpointArn"])
