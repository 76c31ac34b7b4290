"""The three ways a message leaves: SMS (SNS publish to a number), email (SES v2, HTML and text
parts) and push (SNS publish to the device endpoint the app registered). Clients are created on
first use and kept for the container's life."""

from __future__ import annotations

import html
import re
from typing import Any

from chalicelib.aws import client as _client
from chalicelib.domain.common import Document
from chalicelib.domain.messages import Rendered
from chalicelib.settings import get_settings


def send_sms(tenant: Document, phone: str, message: Rendered) -> str:
    attributes: dict[str, Any] = {
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
    }
    sender_id = tenant.get("sender", {}).get("sms_sender_id")
    if sender_id:
        attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender_id}
    answer = _client("sns").publish(
        PhoneNumber=phone, Message=message.body, MessageAttributes=attributes
    )
    return str(answer["MessageId"])


def _text_of(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "\n", markup)).strip()


def send_email(tenant: Document, address: str, message: Rendered) -> str:
    # SES sends from the platform's verified identity under the hospital's name; replies go to
    # the hospital's own address.
    answer = _client("sesv2").send_email(
        FromEmailAddress=f"{tenant['name']} <{get_settings().sender_email}>",
        Destination={"ToAddresses": [address]},
        ReplyToAddresses=[tenant["sender"]["email_from"]],
        Content={
            "Simple": {
                "Subject": {"Data": message.subject or tenant["name"], "Charset": "UTF-8"},
                "Body": {
                    "Html": {"Data": message.body, "Charset": "UTF-8"},
                    "Text": {"Data": _text_of(message.body), "Charset": "UTF-8"},
                },
            }
        },
    )
    return str(answer["MessageId"])


def send_push(endpoint_arn: str, message: Rendered) -> str:
    answer = _client("sns").publish(
        TargetArn=endpoint_arn, Message=message.body, Subject=(message.subject or "")[:100] or None
    )
    return str(answer["MessageId"])


def publish(
    topic_arn: str, subject: str, message: str, attributes: dict[str, str] | None = None
) -> None:
    """Publish to a topic; string attributes let subscribers filter (by department, say)."""
    _client("sns").publish(
        TopicArn=topic_arn,
        Subject=subject[:100],
        Message=message,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in (attributes or {}).items()
        },
    )
