"""Messages that come back: patients' SMS replies and SES bounce/complaint notifications.

A reply belongs to the hospital that owns the number it was sent to (`destinationNumber`),
never to a hospital guessed from the patient's phone, and answers one of the appointments
awaited on that number (`domain.replies`): the only one, or the one whose code it names. A
reply that cannot tell which acts on nothing and is answered with the codes. STOP (and 退订)
turns that hospital's texts off for the number, or every hospital's when the number it answered
is unknown (the safe side); START turns them back on; HELP says who we are and how to stop.
Each inbound message is handled once, however often SNS delivers it, and only marked handled
for good once its action succeeded.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

from chalicelib import clock
from chalicelib.adapters.channels import Channels
from chalicelib.domain.access import Principal, Role
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.deliveries import DeliveryStatus
from chalicelib.domain.errors import Conflict, NotFound, Retryable
from chalicelib.domain.keywords import Reply, classify, reply_text
from chalicelib.domain.messages import Rendered
from chalicelib.domain.opt_outs import SMS_REPLY, SmsOptRecord
from chalicelib.domain.patients import first_name
from chalicelib.domain.replies import AwaitedAnswer, answered, which_one
from chalicelib.domain.tenants import reply_number
from chalicelib.observability import count, logger
from chalicelib.services.appointments import AppointmentService
from chalicelib.store.contacts import ContactRepository
from chalicelib.store.messages import DeliveryRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository

RACE_ATTEMPTS = 5


def _as_patient(
    phone: str, tenant_id: str, about: AwaitedAnswer, keyword: str | None = None
) -> Principal:
    """Who a reply acts as: the patient the text it answers was sent to."""
    return Principal(
        subject=f"sms:{phone}",
        role=Role.PATIENT,
        tenant_id=tenant_id,
        patient_id=about["patient_id"],
        reply_keyword=keyword,
    )


class InboundMessages:
    def __init__(
        self,
        contacts: ContactRepository,
        tenants: TenantRepository,
        patients: PatientRepository,
        appointments: AppointmentService,
        deliveries: DeliveryRepository,
        channels: Channels,
    ) -> None:
        self._channels = channels
        self._contacts = contacts
        self._deliveries = deliveries
        self._tenants = tenants
        self._patients = patients
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
            return self._handle(phone, body, notification.get("destinationNumber"))
        except Exception:
            # Not handled after all: SNS delivers it again (Lambda's retries, then the DLQ).
            self._contacts.forget_inbound(message_id)
            raise

    def _handle(self, phone: str, body: str, number: str | None) -> str:
        reply = classify(body)
        owner = self._tenants.owner_of_number(number) if number else None
        tenant = self._tenants.get(owner) if owner else None
        outcome, answer = self._act(reply, phone, number, tenant)
        if answer is None:
            answer = reply_text(
                outcome,
                tenant["name"] if tenant else "CareLoop",
                tenant["default_language"] if tenant else "en",
            )
        if answer:
            self._channels.send_sms(
                phone,
                Rendered(answer, None),
                sender_id=(tenant or {}).get("sender", {}).get("sms_sender_id"),
                origination_number=reply_number(tenant) if tenant else None,
            )
        count(f"InboundSms{reply.meaning.capitalize()}")
        logger.info("inbound sms", extra={"meaning": reply.meaning, "outcome": outcome})
        return outcome

    def _act(
        self, reply: Reply, phone: str, number: str | None, tenant: Document | None
    ) -> tuple[str, str | None]:
        """Do what the reply asks: the outcome, and the answer to text back when it is not one
        of the fixed ones (`reply_text`)."""
        now = utc_iso(clock.now())
        tenant_id = tenant["id"] if tenant else None
        said: SmsOptRecord = {"at": now, "how": SMS_REPLY, "keyword": reply.keyword or ""}
        if reply.meaning == "stop":
            news = self._contacts.opt_out(phone, said, tenant_id)
            return ("stop" if news else "already_stopped"), None
        if reply.meaning == "start":
            news = self._contacts.opt_in(phone, said, tenant_id)
            return ("start" if news else "already_started"), None
        if reply.meaning == "help":
            return "help", None
        if reply.meaning == "unknown" or tenant is None or number is None:
            return "ignored", None
        return self._answer(reply, phone, number, tenant, now)

    def _answer(
        self, reply: Reply, phone: str, number: str, tenant: Document, now: str
    ) -> tuple[str, str | None]:
        """Act on the one appointment the reply answers, or say which codes it can use."""
        found = answered(self._contacts.awaited(phone, number).entries, reply.code, now)
        if found is None:
            return "ignored", None
        if isinstance(found, list):
            count("InboundSmsAmbiguous")
            return "which_one", self._which_one(tenant, phone, found)
        return self._on_appointment(reply, phone, tenant["id"], found), None

    def _which_one(self, tenant: Document, phone: str, entries: list[AwaitedAnswer]) -> str:
        """The answer listing each awaited visit's code, first name and time (what the texts
        themselves carry), read as the patient each visit belongs to."""
        choices = []
        for entry in sorted(entries, key=lambda e: int(e["code"])):
            patient = self._patients.get(tenant["id"], entry["patient_id"])
            try:
                appointment = self._appointments.get(
                    _as_patient(phone, tenant["id"], entry), entry["appointment_id"]
                )
            except NotFound:
                continue
            if patient is None:
                continue
            start = datetime.fromisoformat(appointment["local"]["patient"]["start"])
            choices.append((entry["code"], first_name(patient), start.strftime("%m-%d %H:%M")))
        return which_one(tenant["name"], tenant["default_language"], choices)

    def _on_appointment(
        self, reply: Reply, phone: str, tenant_id: str, about: AwaitedAnswer
    ) -> str:
        """Confirm, cancel or ask to reschedule, as the patient the number was texted for."""
        meaning = reply.meaning
        patient = _as_patient(phone, tenant_id, about, reply.keyword)
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
