"""The outbox: every SMS, push, topic notification and email the emulator "sent", with the
virtual time it was sent at. Hooks moto's SNS and SES backends, so messages sent by the app
through boto3 and by state machines directly (sns:publish, sesv2:sendEmail) are all caught.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from email import message_from_string
from typing import Any

from chalicelib import clock

# Ids the app generates (a-0123456789abcdef, qr-..., uuids): they differ between two plays.
GENERATED_ID = re.compile(r"\b[a-z]{1,3}-[0-9a-f]{16}\b|[0-9a-f]{8}-[0-9a-f-]{27}")


@dataclass(frozen=True)
class OutboxMessage:
    message_id: str
    channel: str  # sms | push | topic | email
    to: str
    body: str
    subject: str | None
    sent_at: str
    # An SMS's sender: the hospital's two-way number (a reply goes back to it) or sender ID.
    sender: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Outbox:
    def __init__(self) -> None:
        self._messages: list[OutboxMessage] = []
        self._lock = threading.Lock()

    def add(
        self,
        channel: str,
        to: str,
        body: str,
        subject: str | None,
        message_id: str,
        sender: str | None = None,
    ) -> None:
        message = OutboxMessage(
            message_id, channel, to, body, subject, clock.iso(clock.now()), sender
        )
        with self._lock:
            self._messages.append(message)

    def transcript(self) -> list[tuple[str, str, str, str]]:
        """What was sent, when and to whom, with generated ids as `<id>` and in a stable order
        where several leave at the same moment: two plays of one scenario compare equal."""
        return sorted(
            (m.sent_at, m.channel, m.to, GENERATED_ID.sub("<id>", m.body)) for m in self.messages()
        )

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def messages(self, *, to: str | None = None, channel: str | None = None) -> list[OutboxMessage]:
        with self._lock:
            found = list(self._messages)
        return [
            m
            for m in found
            if (to is None or m.to == to) and (channel is None or m.channel == channel)
        ]


def _sms_sender(attributes: dict[str, Any] | None) -> str | None:
    """The origination number or sender ID an SMS was published with (moto keeps message
    attributes as {"Type", "Value"})."""
    for name in ("AWS.MM.SMS.OriginationNumber", "AWS.SNS.SMS.SenderID"):
        value = (attributes or {}).get(name)
        if value:
            found: str = value.get("Value") or value.get("StringValue")
            return found
    return None


def _email_body(raw: str) -> tuple[str | None, str]:
    parsed = message_from_string(raw)
    parts = [p for p in parsed.walk() if p.get_content_type() in ("text/plain", "text/html")]
    body = parts[0].get_payload(decode=True) if parts else None
    text = body.decode(errors="replace") if isinstance(body, bytes) else raw
    return parsed.get("Subject"), text


def install(outbox: Outbox) -> None:
    from moto.ses.models import SESBackend
    from moto.sns.models import SNSBackend

    original_publish = SNSBackend.publish
    original_send = SESBackend.send_email
    original_send_raw = SESBackend.send_raw_email

    def publish(
        self: Any,
        message: str,
        arn: str | None,
        phone_number: str | None = None,
        subject: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> str:
        message_id: str = original_publish(
            self, message, arn, phone_number, subject, *args, **kwargs
        )
        if phone_number:
            sender = _sms_sender(kwargs.get("message_attributes"))
            outbox.add("sms", phone_number, message, None, message_id, sender)
        elif arn and ":endpoint/" in arn:
            outbox.add("push", arn, message, subject, message_id)
        elif arn:
            outbox.add("topic", arn, message, subject, message_id)
        return message_id

    def send_email(
        self: Any, source: str, subject: str, body: str, destinations: dict[str, list[str]]
    ) -> Any:
        sent = original_send(self, source, subject, body, destinations)
        for address in [a for group in destinations.values() for a in group]:
            outbox.add("email", address, body, subject, sent.id)
        return sent

    def send_raw_email(self: Any, source: str, destinations: list[str], raw_data: str) -> Any:
        sent = original_send_raw(self, source, destinations, raw_data)
        subject, text = _email_body(raw_data)
        for address in destinations:
            outbox.add("email", address, text, subject, sent.id)
        return sent

    SNSBackend.publish = publish  # type: ignore[method-assign]
    SESBackend.send_email = send_email  # type: ignore[method-assign]
    SESBackend.send_raw_email = send_raw_email  # type: ignore[method-assign]
