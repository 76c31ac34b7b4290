"""Previews: what a journey would do under the tenant's current settings, before any patient is
booked. The same rules the journeys run (domain.appointment_journey: the plan and which step
follows which; the deliveries' rendering with the tenant's own wording), applied to a
hypothetical appointment and patient. Nothing is stored or sent."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import appointment_journey as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, require_role, tenant_of
from chalicelib.domain.appointment_journey import LeftOut, Step
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import invalid
from chalicelib.domain.messages import sample_fields
from chalicelib.domain.tenants import department_names
from chalicelib.services.deliveries import Deliveries, appointment_fields
from chalicelib.services.tenants import TenantService

ACTIONS: dict[str, str] = {
    Step.ANSWER_DEADLINE: "staff_task_if_unanswered",
    Step.VISIT_CHECK: "visit_check",
}


class PreviewStep(TypedDict):
    step: str
    at: str
    local_time: str
    action: str
    channel: NotRequired[str]
    subject: NotRequired[str]
    text: NotRequired[str]
    sms_segments: NotRequired[int]
    moved_by_quiet_hours: NotRequired[bool]


class JourneyPreview(TypedDict):
    booked_at: str
    steps: list[PreviewStep]
    left_out: list[LeftOut]


def hypothetical_patient(body: Document) -> Document:
    """A patient as the journeys read one: reachable on the listed channels, in that order,
    with consent given unless the body says it was withdrawn."""
    consent = body.get("consent", {})
    language = body["language"]
    return {
        "id": "preview",
        "name": {"given": sample_fields(language)["first_name"]},
        "language": language,
        "time_zone": body["time_zone"],
        "preferred_channels": list(body["channels"]),
        "consent": {
            channel: {"status": "granted" if consent.get(channel, True) else "withdrawn"}
            for channel in ("sms", "email", "push")
        },
    }


class JourneyPreviews:
    def __init__(self, tenants: TenantService, deliveries: Deliveries) -> None:
        self._tenants = tenants
        self._deliveries = deliveries

    def appointment(self, principal: Principal, body: Document) -> JourneyPreview:
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        wanted, patient = body["appointment"], hypothetical_patient(body["patient"])
        booked_at = (
            datetime.fromisoformat(body["booked_at"]) if "booked_at" in body else clock.now()
        )
        start = datetime.fromisoformat(wanted["start"])
        if start <= booked_at:
            raise invalid("$.appointment.start", "must be after the booking (booked_at)")
        departments = department_names(tenant)
        if wanted["department"] not in departments:
            raise invalid("$.appointment.department", "is not one of the hospital's departments")
        appointment = {
            "id": "preview",
            "type": wanted["type"],
            "department": wanted["department"],
            "start": utc_iso(start),
            "location": wanted.get("location", departments[wanted["department"]]),
            "patient_response": "pending",
        }
        plan, left_out = rules.plan_and_left_out(
            appointment, tenant, patient["time_zone"], booked_at
        )
        fields = appointment_fields(tenant, patient, appointment)
        zone = ZoneInfo(patient["time_zone"])
        steps: list[PreviewStep] = []
        for planned in rules.timed_steps(plan):
            at = datetime.fromisoformat(planned["at"])
            step: PreviewStep = {
                "step": planned["step"],
                "at": planned["at"],
                "local_time": at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                "action": ACTIONS.get(planned["step"], "message"),
            }
            if step["action"] == "message":
                channel = self._channel(patient)
                if channel is None:
                    why = "no channel: consent withdrawn on every channel the patient has"
                    left_out.append(
                        {"step": planned["step"], "would_be_at": planned["at"], "why": why}
                    )
                    continue
                rendered = self._deliveries.preview(
                    tenant, patient, planned["step"], channel, fields
                )
                step["channel"], step["text"] = channel, rendered.body
                if rendered.subject:
                    step["subject"] = rendered.subject
                if rendered.segments is not None:
                    step["sms_segments"] = rendered.segments
                own_moment = self._own_moment(planned["step"], start, booked_at, tenant)
                if own_moment is not None and own_moment != at:
                    step["moved_by_quiet_hours"] = True
            steps.append(step)
        return {"booked_at": utc_iso(booked_at), "steps": steps, "left_out": left_out}

    @staticmethod
    def _channel(patient: Document) -> str | None:
        """The first of the patient's channels with consent (a hypothetical patient has the
        contact details for each and no opt-out)."""
        for channel in patient["preferred_channels"]:
            if patient["consent"][channel]["status"] != "withdrawn":
                return str(channel)
        return None

    @staticmethod
    def _own_moment(
        step: str, start: datetime, booked_at: datetime, tenant: Document
    ) -> datetime | None:
        """The moment a message step would have without quiet hours."""
        if step == Step.CONFIRMATION:
            return booked_at
        offsets = rules.settings_of(tenant)["reminder_offsets_minutes"]
        for kind_offsets in offsets.values():
            for offset in kind_offsets:
                if rules.reminder_step(offset) == step:
                    return start - timedelta(minutes=offset)
        return None
