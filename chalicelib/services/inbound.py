"""Messages that come back: patients' SMS replies and SES bounce/complaint notifications.

A reply is about the appointment we last texted that number about. STOP (and 退订) turns SMS off
for the number and is confirmed once; START turns it back on; HELP says who we are and how to
stop. Each inbound message is handled once, however often SNS delivers it.
"""

from __future__ import annotations

import hashlib
import time

from chalicelib import clock
from chalicelib.adapters.channels import Channels
from chalicelib.domain.access import Principal, Role
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.deliveries import DeliveryStatus
from chalicelib.domain.errors import Conflict, NotFound, Retryable
from chalicelib.domain.keywords import classify, reply_text
from chalicelib.domain.messages import Rendered
from chalicelib.observability import count, logger
from chalicelib.services.appointments import AppointmentService
from chalicelib.store.contacts import ContactRepository
from chalicelib.store.messages import DeliveryRepository
from chalicelib.store.tenants import TenantRepository

RACE_ATTEMPTS = 5


class InboundMessages:
    def __init__(
        self,
        contacts: ContactRepository,
        tenants: TenantRepository,
        appointments: AppointmentService,
        deliveries: DeliveryRepository,
        channels: Channels,
    ) -> None:
        self._channels = channels
        self._contacts = contacts
        self._deliveries = deliveries
        self._tenants = tenants
        self._appointments = appointments

    def sms(self, notification: Document) -> str:
        phone = notification["originationNumber"]
        body = notification["messageBody"]
        message_id = (
            notification.get("inboundMessageId")
            or hashlib.sha256(
                f"{phone}|{body}|{notification.get('previousPublishedMessageId')}".encode()
            ).hexdigest()
        )
        if not self._contacts.first_time(message_id):
            count("InboundReplayed")
            return "replayed"
        try:
            return self._handle(phone, body)
        except Exception:
            # Not handled after all: SNS delivers it again (Lambda's retries, then the DLQ).
            self._contacts.forget_inbound(message_id)
            raise

    def _handle(self, phone: str, body: str) -> str:
        meaning = classify(body)
        about = self._contacts.last_texted(phone)
        tenant = self._tenants.get(about["tenant_id"]) if about else None
        outcome = self._act(meaning, phone, about)
        reply = reply_text(
            outcome,
            tenant["name"] if tenant else "CareLoop",
            tenant["default_language"] if tenant else "en",
        )
        if reply:
            sender_id = (tenant or {}).get("sender", {}).get("sms_sender_id")
            self._channels.send_sms(phone, Rendered(reply, None), sender_id=sender_id)
        count(f"InboundSms{meaning.capitalize()}")
        logger.info("inbound sms", extra={"meaning": meaning, "outcome": outcome})
        return outcome

    def _act(self, meaning: str, phone: str, about: Document | None) -> str:
        """Do what the reply asks; the result names which one-off answer, if any, to send."""
        now = utc_iso(clock.now())
        if meaning == "stop":
            return "stop" if self._contacts.opt_out(phone, now) else "already_stopped"
        if meaning == "start":
            return "start" if self._contacts.opt_in(phone) else "already_started"
        if meaning == "help":
            return "help"
        if meaning == "unknown" or about is None or "appointment_id" not in about:
            return "ignored"
        return self._on_appointment(meaning, phone, about)

    def _on_appointment(self, meaning: str, phone: str, about: Document) -> str:
        """Confirm, cancel or ask to reschedule, as the patient the number was texted for."""
        patient = Principal(
            subject=f"sms:{phone}",
            role=Role.PATIENT,
            tenant_id=about["tenant_id"],
            patient_id=about["patient_id"],
        )
        action = {
            "confirm": self._appointments.confirm,
            "cancel": self._appointments.cancel,
            "reschedule": self._appointments.request_reschedule,
        }[meaning]
        for attempt in range(RACE_ATTEMPTS):
            try:
                action(patient, about["appointment_id"])
            except Conflict as conflict:
                if conflict.code not in ("version_conflict", "concurrent_change"):
                    return "too_late"  # cancelled, rescheduled or over already
                time.sleep(0.05 * (attempt + 1))  # the journey wrote at the same moment
            except NotFound:
                return "too_late"
            else:
                return meaning
        # Not "too late": it kept racing. Handled again later (Lambda's retry of the event).
        raise Retryable("the appointment kept changing while the reply was applied")

    def email_feedback(self, notification: Document) -> int:
        """Mark deliveries delivered or bounced; suppress addresses that bounced permanently or
        complained."""
        kind = notification.get("notificationType") or notification.get("eventType")
        self._mark_delivery(kind, notification)
        if kind == "Bounce" and notification["bounce"].get("bounceType") == "Permanent":
            addresses = [r["emailAddress"] for r in notification["bounce"]["bouncedRecipients"]]
        elif kind == "Complaint":
            addresses = [
                r["emailAddress"] for r in notification["complaint"]["complainedRecipients"]
            ]
        else:
            return 0
        for address in addresses:
            self._contacts.suppress(address, kind.lower(), utc_iso(clock.now()))
        count("EmailSuppressed")
        return len(addresses)

    def _mark_delivery(self, kind: str | None, notification: Document) -> None:
        message_id = notification.get("mail", {}).get("messageId")
        about = self._contacts.message(message_id) if message_id else None
        if about is None or kind not in ("Delivery", "Bounce"):
            return
        status = DeliveryStatus.DELIVERED if kind == "Delivery" else DeliveryStatus.BOUNCED
        # A Delivery notice that arrives after a Bounce changes nothing: the bounce wins.
        self._deliveries.mark(about["tenant_id"], about["key"], status, utc_iso(clock.now()))
