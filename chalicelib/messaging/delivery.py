"""Sending one journey step to one patient, exactly once.

At send time: quiet hours (in the patient's zone) defer the step; each channel in the patient's
order of preference is tried, skipping one with no contact, withdrawn consent or no registered
device, and falling back when sending fails. The step's idempotency key (tenant, journey,
step) is claimed before anything leaves, so a replayed task never sends twice.
Every outcome is logged for the patient: sent, suppressed (with why), failed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.journey import out_of_quiet_hours
from chalicelib.domain.messages import CHANNELS, render, template_id, template_kind
from chalicelib.domain.tenants import department_names
from chalicelib.messaging import channels
from chalicelib.observability import count, logger
from chalicelib.settings import get_settings
from chalicelib.store.config import ConfigRepository
from chalicelib.store.contacts import ContactRepository
from chalicelib.store.devices import DeviceRepository
from chalicelib.store.messages import DeliveryRepository


def channel_order(patient: Document) -> list[str]:
    preferred = [c for c in patient.get("preferred_channels", []) if c in CHANNELS]
    return preferred + [c for c in CHANNELS if c not in preferred]


CONTACT_FIELD = {"sms": "phone", "email": "email", "push": "push_endpoints"}
MISSING = {"sms": "no phone number", "email": "no email address", "push": "no device registered"}


def why_not(channel: str, patient: Document, contacts: ContactRepository) -> str | None:
    """Why a channel cannot carry a message to this patient, or None if it can."""
    if patient.get("consent", {}).get(channel, {}).get("status") == "withdrawn":
        return "consent withdrawn"
    if not patient.get(CONTACT_FIELD[channel]):
        return MISSING[channel]
    if channel == "sms" and contacts.opted_out(patient["phone"]):
        return "number opted out (STOP)"
    if channel == "email" and contacts.suppressed(patient["email"]):
        return "address suppressed (bounce or complaint)"
    return None


def patient_fields(tenant: Document, patient: Document) -> Document:
    """What every message may say: the clinic and the patient's first name."""
    return {
        "clinic": tenant["name"],
        "first_name": patient["name"].get("preferred") or patient["name"]["given"],
    }


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
        "keywords": "C/N/R",
    }


def _send(channel: str, tenant: Document, patient: Document, rendered: Any) -> str:
    if channel == "sms":
        return channels.send_sms(tenant, patient["phone"], rendered)
    if channel == "email":
        return channels.send_email(tenant, patient["email"], rendered)
    return channels.send_push(patient["push_endpoints"][0], rendered)


class Deliveries:
    def __init__(
        self,
        repository: DeliveryRepository,
        contacts: ContactRepository,
        config: ConfigRepository,
        devices: DeviceRepository,
    ) -> None:
        self._log = repository
        self._devices = devices
        self._contacts = contacts
        self._config = config

    def _wording(self, tenant_id: str, step: str, channel: str, language: str) -> Document:
        """The tenant's own template for this step, channel and language, if it saved one."""
        saved = self._config.get(
            tenant_id, "TEMPLATE", template_id(template_kind(step), channel, language)
        )
        return saved or {}

    def deliver(
        self,
        tenant: Document,
        patient: Document,
        step: str,
        key: str,
        fields: Document,
        about: dict[str, str],
        now: datetime,
        wording: Document | None = None,
    ) -> Document:
        """Send `step` to the patient once per `key`. `about` names what the message is about
        ({"appointment_id": ...} or {"journey_id": ...}); it is logged and, for SMS, remembered
        so a reply from the number acts on it. `wording` ({"body", "subject"}), when given, is
        sent on every channel instead of the step's templates (a campaign's own text)."""
        zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
        later = out_of_quiet_hours(now, zone, tenant["quiet_hours"])
        if later != now:
            return {"status": "deferred", "retry_at": utc_iso(later)}
        record: Document = {
            "key": key,
            "patient_id": patient["id"],
            **about,
            "step": step,
            "status": "sending",
            "created_at": utc_iso(now),
        }
        earlier = self._log.begin(tenant["id"], key, record)
        if earlier is not None:
            count("MessageReplaySkipped")
            return {**earlier, "replayed": True}
        reasons: list[str] = []
        failed = False
        for channel in channel_order(patient):
            if channel == "push":
                # Devices are read only when push is tried: most sends go by SMS first.
                patient = {
                    **patient,
                    "push_endpoints": self._devices.endpoints(tenant["id"], patient["id"]),
                }
            blocked = why_not(channel, patient, self._contacts)
            if blocked:
                reasons.append(f"{channel}: {blocked}")
                continue
            chosen = wording or self._wording(tenant["id"], step, channel, patient["language"])
            try:
                # A template that fails to render is a failing channel like any other.
                rendered = render(
                    step,
                    channel,
                    patient["language"],
                    fields,
                    override=chosen.get("body"),
                    subject_override=chosen.get("subject"),
                )
                message_id = _send(channel, tenant, patient, rendered)
            except Exception as exc:  # any channel failure falls back to the next channel
                failed = True
                reasons.append(f"{channel}: failed ({type(exc).__name__})")
                logger.warning("channel failed", extra={"channel": channel, "key": key})
                continue
            record.update(
                status="sent", channel=channel, message_id=message_id, sent_at=utc_iso(now)
            )
            if rendered.segments is not None:
                record.update(sms_segments=rendered.segments, sms_encoding=rendered.encoding)
            if reasons:
                record["fell_back"] = reasons
            if channel == "email":
                # SES reports delivery and bounces by message id, on the feedback topic.
                self._contacts.remember_message(message_id, {"tenant_id": tenant["id"], "key": key})
            if channel == "sms":
                # A reply from this number is about this message (C/N/R only act on an
                # appointment's).
                self._contacts.remember_texted(
                    patient["phone"],
                    {"tenant_id": tenant["id"], "patient_id": patient["id"], **about},
                )
            self._log.finish(tenant["id"], key, record)
            count("MessageSent")
            return record
        record.update(status="failed" if failed else "suppressed", reasons=reasons)
        self._log.finish(tenant["id"], key, record)
        count("MessageSuppressed" if not failed else "MessageFailed")
        return record
