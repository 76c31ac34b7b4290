"""Sending one journey step to one patient: at most once, and never silently not at all.

1. A message that no longer makes sense (`Message.not_after`: a reminder at or after the visit's
   start) is settled `skipped`, with the reason. Quiet hours (in the patient's zone) defer it.
2. The step is claimed before anything leaves: a `sending` record with a lease, in one
   transaction with the appointment's condition (`SendGuard`: still booked, same journey
   version) and send lock, and with the record a reply to the text will be resolved by. A step
   already settled answers as it was settled; a claim held by another attempt within its lease
   raises `Retryable`.
3. Each usable channel in the patient's order is tried. Another channel is tried only when one
   refuses for good (opted out at the carrier, a disabled device, a rejected address).
   Throttling or a failing provider gives the claim back (`failed`) and raises `Retryable`, so
   the state machine tries again later. A request that left without an answer is `unknown`:
   final, never sent again on any channel, and put before staff.
4. Nothing raises after a message has left: its outcome is written with retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import chain
from typing import cast
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.adapters.channels import Channels
from chalicelib.adapters.failures import OutcomeUnknown, SendRefused, retried
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.deliveries import (
    SETTLED,
    DeliveryRecord,
    DeliveryStatus,
    SendResult,
    deferred,
    lease_until,
    lease_usable,
    send_result,
)
from chalicelib.domain.errors import DependencyUnavailable, Retryable
from chalicelib.domain.messages import CHANNELS, Rendered, render, template_id, template_kind
from chalicelib.domain.patients import addressee, first_name
from chalicelib.domain.replies import awaiting, invitation, keywords, shown_code
from chalicelib.domain.tenants import (
    department_names,
    is_active,
    may_have_own_wording,
    out_of_quiet_hours,
    reply_number,
)
from chalicelib.observability import count, logger
from chalicelib.services.brief_cache import TENANT_SETTINGS_FOR, BriefCache
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.settings import get_settings
from chalicelib.store.config import ConfigRepository
from chalicelib.store.contacts import Awaited, ContactRepository
from chalicelib.store.devices import DeviceRepository
from chalicelib.store.messages import Claim, DeliveryRepository, SendGuard

S = DeliveryStatus


def channel_order(patient: Document) -> list[str]:
    preferred = [c for c in patient.get("preferred_channels", []) if c in CHANNELS]
    return preferred + [c for c in CHANNELS if c not in preferred]


Route = tuple[str, Document]  # a channel, and the patient as that channel needs them
CONTACT_FIELD = {"sms": "phone", "email": "email", "push": "push_endpoints"}
MISSING = {"sms": "no phone number", "email": "no email address", "push": "no device registered"}


def why_not(
    channel: str, patient: Document, contacts: ContactRepository, tenant_id: str
) -> str | None:
    """Why a channel cannot carry a message to this patient, or None if it can."""
    if channel == "push" and "guardian_of" in patient:
        return "a guardian is not reached through the minor's app"
    if patient.get("consent", {}).get(channel, {}).get("status") == "withdrawn":
        return "consent withdrawn"
    if not patient.get(CONTACT_FIELD[channel]):
        return MISSING[channel]
    if channel == "sms" and contacts.opted_out(patient["phone"], tenant_id):
        return "number opted out (STOP)"
    if channel == "email" and contacts.suppressed(patient["email"]):
        return "address suppressed (bounce or complaint)"
    return None


def patient_fields(tenant: Document, patient: Document) -> Document:
    """What every message may say: the clinic and the patient's first name."""
    return {"clinic": tenant["name"], "first_name": first_name(patient)}


def appointment_fields(tenant: Document, patient: Document, appointment: Document) -> Document:
    zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
    start = datetime.fromisoformat(appointment["start"]).astimezone(zone)
    names = department_names(tenant)
    return {
        **patient_fields(tenant, patient),
        "date": start.date().isoformat(),
        "time": start.strftime("%H:%M"),
        "location": appointment["location"],
        "department": names.get(appointment["department"], appointment["department"]),
        "notes": appointment.get("notes_for_patient", ""),
        "link": f"{get_settings().app_link_base}/a/{appointment['id']}",
    }


def reply_fields(record: DeliveryRecord, language: str, *, confirmed: bool) -> Document:
    """How a text invites a reply: only when it leaves from the hospital's two-way number with
    an awaited answer written (`reply_to`), naming the appointment's code when the number
    awaits several; after the patient confirmed, cancel and reschedule only."""
    if "reply_to" not in record:
        return {"keywords": "", "reply": ""}
    code = record.get("reply_code")
    return {
        "keywords": keywords(code, confirmed=confirmed),
        "reply": invitation(language, code, confirmed=confirmed),
    }


@dataclass(frozen=True)
class Message:
    """One step's message to one patient.

    `key` names the step once and for all (tenant aside): `<appointment>#v<n>#<step>`,
    `<journey>#<step>`, `campaign#<campaign>#<patient>` ... `about` names what the message is
    about ({"appointment_id": ...}); it is logged and, for a text, remembered for the reply.
    `wording` ({"body", "subject"}) replaces the step's templates on every channel (a
    campaign's own text). `guard` holds an appointment's conditions; `not_after` is the moment
    from which the message makes no sense any more (a reminder: the visit's start).
    `invites_reply`: a text of it asks for C/N/R until `not_after` (confirmations, reminders);
    `confirmed`: the patient has confirmed already, so it asks for N/R only."""

    step: str
    key: str
    fields: Document
    about: dict[str, str]
    wording: Document | None = None
    guard: SendGuard | None = None
    not_after: datetime | None = None
    invites_reply: bool = False
    confirmed: bool = False


def next_attempt(
    message: Message,
    patient: Document,
    earlier: DeliveryRecord | None,
    status: DeliveryStatus,
    now: datetime,
) -> DeliveryRecord:
    """The record of this attempt at the step: the first, or the one after `earlier`."""
    record = DeliveryRecord(
        key=message.key,
        patient_id=patient["id"],
        step=message.step,
        status=status,
        created_at=earlier["created_at"] if earlier else utc_iso(now),
        attempt=(earlier["attempt"] + 1) if earlier else 1,
    )
    record.update(message.about)  # type: ignore[typeddict-item]
    if "guardian_of" in patient:
        record["to_guardian"] = True
    return record


class Deliveries:
    def __init__(
        self,
        repository: DeliveryRepository,
        contacts: ContactRepository,
        config: ConfigRepository,
        devices: DeviceRepository,
        channels: Channels,
        queue: StaffQueue,
        sender_email: str,
    ) -> None:
        self._sender_email = sender_email
        self._wordings: BriefCache[Document] = BriefCache(TENANT_SETTINGS_FOR)
        self._log = repository
        self._devices = devices
        self._contacts = contacts
        self._config = config
        self._channels = channels
        self._queue = queue

    def _wording(self, tenant: Document, step: str, channel: str, language: str) -> Document:
        """The tenant's own template for this step, channel and language, if it saved one ({}
        when not): a setting, kept briefly like the tenant's others (services/brief_cache).
        The tenant lists the wordings it saved, so the product's own costs no read."""
        template = template_id(template_kind(step), channel, language)
        if not may_have_own_wording(tenant, template):
            return {}
        found = self._wordings.get(
            f"{tenant['id']}|{template}",
            lambda: self._config.get(tenant["id"], "TEMPLATE", template) or {},
        )
        return found or {}

    @staticmethod
    def addressee(
        tenant: Document, patient: Document, now: datetime, *, guardian_only: bool = False
    ) -> Document:
        """Who a message about `patient` goes to now: a minor's guardian, or the patient."""
        today = now.astimezone(ZoneInfo(patient.get("time_zone") or tenant["time_zone"])).date()
        return addressee(patient, tenant, today, guardian_only=guardian_only)

    @staticmethod
    def held_until(tenant: Document, patient: Document, now: datetime) -> datetime:
        """When a message to `patient` may leave: `now`, or the end of their quiet hours."""
        zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
        return out_of_quiet_hours(now, zone, tenant["quiet_hours"])

    def deliver(
        self, tenant: Document, patient: Document, message: Message, now: datetime
    ) -> SendResult:
        if not is_active(tenant):
            return self.skip(tenant, patient, message, now, "the hospital was deactivated")
        patient = self.addressee(tenant, patient, now)
        later = self.held_until(tenant, patient, now)
        if message.not_after is not None and later >= message.not_after:
            why = "the visit has begun" if now >= message.not_after else "quiet hours last past it"
            return self.skip(tenant, patient, message, now, why)
        if later != now:
            return deferred(later)
        reasons: list[str] = []
        routes = self._routes(tenant, patient, reasons)
        first = next(routes, None)
        if first is not None:
            # Most messages are claimed for the first time: the claim itself says whether one
            # was made before, so no read comes first.
            fresh = next_attempt(message, patient, None, S.SENDING, now)
            sent = self._claim_and_send(
                tenant, message, fresh, chain([first], routes), reasons, now, only_if_new=True
            )
            if sent is not None:
                return sent
        return self._deliver_as_recorded(
            tenant, patient, message, now, unroutable=reasons if first is None else None
        )

    def _deliver_as_recorded(
        self,
        tenant: Document,
        patient: Document,
        message: Message,
        now: datetime,
        *,
        unroutable: list[str] | None,
    ) -> SendResult:
        """A step claimed before (a replay, a retry, another attempt) or with nowhere to go
        (`unroutable`: why no channel can carry it): what was recorded decides."""
        earlier = self._log.get(tenant["id"], message.key)
        if earlier is not None:
            if earlier["status"] in SETTLED:
                count("MessageReplaySkipped")
                return send_result(earlier, replayed=True)
            if earlier["status"] == S.SENDING and lease_usable(earlier.get("lease_until", ""), now):
                raise Retryable("another attempt is sending this message")
        record = next_attempt(message, patient, earlier, S.SENDING, now)
        if unroutable is not None:
            return self._settle_unsent(tenant, record, now, S.SUPPRESSED, reasons=unroutable)
        reasons: list[str] = []
        routes = self._routes(tenant, patient, reasons)
        first = next(routes, None)
        if first is None:
            return self._settle_unsent(tenant, record, now, S.SUPPRESSED, reasons=reasons)
        sent = self._claim_and_send(
            tenant, message, record, chain([first], routes), reasons, now, only_if_new=False
        )
        if sent is None:  # cannot happen: only a claim `only_if_new` gives way
            raise Retryable("the message's claim gave way")
        return sent

    def _claim_and_send(
        self,
        tenant: Document,
        message: Message,
        record: DeliveryRecord,
        routes: Iterator[Route],
        reasons: list[str],
        now: datetime,
        *,
        only_if_new: bool,
    ) -> SendResult | None:
        """Claim the step and send; None when `only_if_new` and the step was claimed before
        (or its appointment moved on): the caller reads what was recorded and decides."""
        first, patient = next(routes)
        record["channel"] = first
        record["lease_until"] = lease_until(now)
        awaited = None
        if first == "sms":
            awaited = self._awaited(tenant, patient, message, record, now)
        claim = self._log.claim(
            tenant["id"], record, utc_iso(now), message.guard, awaited, only_if_new=only_if_new
        )
        if claim is Claim.BUSY:
            raise Retryable("another message of this appointment is being sent")
        if only_if_new and claim is not Claim.CLAIMED:
            return None
        if claim is Claim.NOT_DUE:
            return self._settle_unsent(
                tenant, record, now, S.SKIPPED, why="the appointment was cancelled or moved"
            )
        if claim is Claim.TAKEN:
            return self._taken(tenant["id"], message.key)
        return self._send_claimed(
            tenant, message, record, chain([(first, patient)], routes), reasons
        )

    def _awaited(
        self,
        tenant: Document,
        patient: Document,
        message: Message,
        record: DeliveryRecord,
        now: datetime,
    ) -> Awaited | None:
        """The answers awaited on the hospital's number with this text's (written with its
        claim), or None when the text invites no reply (no two-way number, or not a step
        that asks for one). Notes the number and shown code on the record."""
        number = reply_number(tenant)
        if not (number and message.invites_reply and message.not_after):
            return None
        found = self._contacts.awaited(patient["phone"], number)
        code, entries = awaiting(
            found.entries,
            patient["id"],
            message.about["appointment_id"],
            utc_iso(message.not_after),
            utc_iso(now),
        )
        record["reply_to"] = number
        shown = shown_code(code, entries)
        if shown is not None:
            record["reply_code"] = shown
        return Awaited(found.phone, number, entries, found.revision)

    def _routes(self, tenant: Document, patient: Document, reasons: list[str]) -> Iterator[Route]:
        """The channels that can carry a message to the patient, in their order, each with the
        patient as that channel needs them. A channel that cannot is noted in `reasons` when it
        is reached: contact checks run only for the channels reached, and the devices are read
        only when push is."""
        for channel in channel_order(patient):
            if channel == "push":
                patient = {
                    **patient,
                    "push_endpoints": self._devices.endpoints(tenant["id"], patient["id"]),
                }
            blocked = why_not(channel, patient, self._contacts, tenant["id"])
            if blocked:
                reasons.append(f"{channel}: {blocked}")
            else:
                yield channel, patient

    def _send_claimed(
        self,
        tenant: Document,
        message: Message,
        record: DeliveryRecord,
        routes: Iterator[Route],
        reasons: list[str],
    ) -> SendResult:
        refused: list[str] = []
        for channel, patient in routes:
            record["channel"] = channel
            if not lease_usable(record["lease_until"], clock.now()):
                # Too slow: a cancel may be about to win. Give the claim back; try again.
                self._give_back(tenant["id"], record, message, [*refused, "lease ran out"])
                raise Retryable("the claim's lease ran out before the message left")
            try:
                rendered = self._render(tenant, patient, message, channel, record)
            except Exception as exc:  # a template that fails to render is a refusing channel
                refused.append(f"{channel}: template failed ({type(exc).__name__})")
                logger.warning("template failed", extra={"channel": channel, "key": record["key"]})
                continue
            try:
                message_id = self._send(channel, tenant, patient, rendered)
            except SendRefused as refusal:
                refused.append(f"{channel}: refused ({refusal.reason})")
                logger.warning("channel refused", extra={"channel": channel, "key": record["key"]})
                continue
            except OutcomeUnknown:
                return self._unknown(tenant, record, message)
            except DependencyUnavailable as busy:
                self._give_back(tenant["id"], record, message, [*refused, f"{channel}: {busy}"])
                raise
            record["status"] = S.SENT
            record["message_id"] = message_id
            record["sent_at"] = utc_iso(clock.now())
            record.pop("lease_until", None)
            if rendered.segments is not None and rendered.encoding is not None:
                record["sms_segments"] = rendered.segments
                record["sms_encoding"] = rendered.encoding
            if refused or reasons:
                record["fell_back"] = [*reasons, *refused]
            if channel == "email":
                # SES reports delivery and bounces by message id, on the feedback topic.
                self._after_sending(
                    partial(
                        self._contacts.remember_message,
                        message_id,
                        {"tenant_id": tenant["id"], "key": record["key"]},
                    )
                )
            self._settle(tenant["id"], record, message)
            count("MessageSent")
            return send_result(record)
        record.pop("lease_until", None)
        record["status"] = S.SUPPRESSED
        record["reasons"] = [*reasons, *refused]
        self._settle(tenant["id"], record, message)
        count("MessageSuppressed")
        return send_result(record)

    def _render(
        self,
        tenant: Document,
        patient: Document,
        message: Message,
        channel: str,
        record: DeliveryRecord,
    ) -> Rendered:
        chosen = message.wording or self._wording(
            tenant, message.step, channel, patient["language"]
        )
        fields = {
            **message.fields,
            **reply_fields(record, patient["language"], confirmed=message.confirmed),
        }
        child = patient.get("guardian_of")
        if child:
            fields["first_name"] = first_name(patient)  # the guardian's; the child is named
        return render(
            message.step,
            channel,
            patient["language"],
            fields,
            override=chosen.get("body"),
            subject_override=chosen.get("subject"),
            about_child=child,
        )

    def preview(
        self, tenant: Document, patient: Document, step: str, channel: str, fields: Document
    ) -> Rendered:
        """The text `step` would have on `channel` (the tenant's own wording where it saved
        one), as a message inviting a reply from the hospital's two-way number would read;
        nothing is claimed or sent."""
        number = reply_number(tenant)
        inviting = channel == "sms" and number is not None and not step.startswith("noshow")
        record = cast(DeliveryRecord, {"reply_to": number} if inviting else {})
        message = Message(step=step, key="preview", fields=fields, about={})
        return self._render(tenant, patient, message, channel, record)

    def _send(self, channel: str, tenant: Document, patient: Document, rendered: Rendered) -> str:
        if channel == "sms":
            # From the hospital's two-way number if it has one (so replies come back to it),
            # else from its sender ID.
            return self._channels.send_sms(
                patient["phone"],
                rendered,
                sender_id=tenant.get("sender", {}).get("sms_sender_id"),
                origination_number=reply_number(tenant),
            )
        if channel == "email":
            # From the hospital's own domain once its stack verified it (with its configuration
            # set, so bounces come back); else from the platform's identity under the
            # hospital's name. Replies go to the hospital's own address either way.
            sender = tenant["sender"]
            configuration_set = sender.get("email_configuration_set")
            from_address = sender["email_from"] if configuration_set else self._sender_email
            return self._channels.send_email(
                from_address=f"{tenant['name']} <{from_address}>",
                reply_to=sender["email_from"],
                to=patient["email"],
                message=rendered,
                fallback_subject=tenant["name"],
                configuration_set=configuration_set,
            )
        return self._channels.send_push(patient["push_endpoints"][0], rendered)

    def _unknown(self, tenant: Document, record: DeliveryRecord, message: Message) -> SendResult:
        """The request left and its answer was lost: the patient may have the message. It is
        not sent again, on this channel or another; staff are told so they can check."""
        record.pop("lease_until", None)
        record["status"] = S.UNKNOWN
        task_id = f"{record['key'].replace('#', '-').replace('_', '-').lower()}-unknown"
        record["staff_task_id"] = task_id
        self._settle(tenant["id"], record, message)
        count("MessageOutcomeUnknown")
        self._after_sending(
            lambda: self._queue.open_task(
                tenant["id"],
                task_id,
                "message_outcome_unknown",
                {
                    "patient_id": record["patient_id"],
                    "step": record["step"],
                    "channel": record.get("channel", ""),
                    **message.about,
                },
                tenant=tenant,
            )
        )
        return send_result(record)

    def _give_back(
        self, tenant_id: str, record: DeliveryRecord, message: Message, reasons: list[str]
    ) -> None:
        """This attempt failed without sending: the claim is released (`failed`), so the
        state machine's retry can claim the step again. If even this write fails, the lease
        runs out and frees it."""
        record.pop("lease_until", None)
        record["status"] = S.FAILED
        record["reasons"] = reasons
        try:
            retried(lambda: self._log.settle(tenant_id, record, message.guard))
        except Exception:
            logger.warning("could not release a claim", extra={"key": record["key"]})
        count("MessageAttemptFailed")

    def _settle(self, tenant_id: str, record: DeliveryRecord, message: Message) -> None:
        """Write the outcome of an attempt that may have sent: never raise, retry a while."""
        self._after_sending(lambda: self._log.settle(tenant_id, record, message.guard))

    @staticmethod
    def _after_sending(write: Callable[[], object]) -> None:
        """A write after the message left: retried, and never raised (the message must not
        be sent again because its record could not be written)."""
        try:
            retried(write)
        except Exception:
            logger.exception("could not record what was sent")
            count("DeliveryRecordLost")

    def _settle_unsent(
        self,
        tenant: Document,
        record: DeliveryRecord,
        now: datetime,
        status: DeliveryStatus,
        *,
        reasons: list[str] | None = None,
        why: str | None = None,
    ) -> SendResult:
        record.pop("lease_until", None)
        record["status"] = status
        if reasons is not None:
            record["reasons"] = reasons
        if why is not None:
            record["why"] = why
        if not self._log.record_outcome(tenant["id"], record, utc_iso(now)):
            return self._taken(tenant["id"], record["key"])
        count("MessageSuppressed" if status == S.SUPPRESSED else "MessageSkipped")
        return send_result(record)

    def skip(
        self, tenant: Document, patient: Document, message: Message, now: datetime, why: str
    ) -> SendResult:
        """Log the step as skipped (it no longer makes sense), unless it was settled already."""
        earlier = self._log.get(tenant["id"], message.key)
        if earlier is not None and earlier["status"] in SETTLED:
            return send_result(earlier, replayed=True)
        record = next_attempt(message, patient, earlier, S.SKIPPED, now)
        return self._settle_unsent(tenant, record, now, S.SKIPPED, why=why)

    def _taken(self, tenant_id: str, key: str) -> SendResult:
        """Someone else settled or holds the step: their outcome, or try again later."""
        current = self._log.get(tenant_id, key)
        if current is not None and current["status"] in SETTLED:
            return send_result(current, replayed=True)
        raise Retryable("another attempt is sending this message")
