"""Previews: what a journey would do under the tenant's current settings, before any patient is
booked or any event happens. The same rules the journeys run (domain.appointment_journey: the
plan and which step follows which; domain.care_plans: a plan's agenda and answer timers; the
deliveries' rendering with the tenant's own wording), applied to a hypothetical appointment or
event and patient. Nothing is stored or sent."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import appointment_journey as rules
from chalicelib.domain import care_plans
from chalicelib.domain import recall as recall_rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, require_role, tenant_of
from chalicelib.domain.aftercare import StepKind
from chalicelib.domain.appointment_journey import LeftOut, Step
from chalicelib.domain.common import Document, is_valid_id, utc_iso
from chalicelib.domain.errors import NotFound, invalid
from chalicelib.domain.messages import sample_fields
from chalicelib.domain.tenants import department_names
from chalicelib.services.aftercare.steps import step_message
from chalicelib.services.aftercare.views import booking_link
from chalicelib.services.care_config import CareConfigService
from chalicelib.services.deliveries import Deliveries, appointment_fields, patient_fields
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


class CarePlanPreview(TypedDict):
    event_at: str
    steps: list[PreviewStep]
    left_out: list[LeftOut]


NOWHERE = "no channel: consent withdrawn on every channel the patient has"


def _moment(step: str, at: str, zone: ZoneInfo, action: str) -> PreviewStep:
    local = datetime.fromisoformat(at).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return {"step": step, "at": at, "local_time": local, "action": action}


class RecallPreview(TypedDict):
    due_date: str
    steps: list[PreviewStep]
    left_out: list[LeftOut]


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
    def __init__(
        self, tenants: TenantService, deliveries: Deliveries, care_config: CareConfigService
    ) -> None:
        self._tenants = tenants
        self._deliveries = deliveries
        self._care_config = care_config

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
        moved = rules.moved_by_quiet_hours(plan, start, booked_at)
        steps: list[PreviewStep] = []
        for planned in rules.timed_steps(plan):
            name, at = planned["step"], planned["at"]
            if name in ACTIONS:
                steps.append(_moment(name, at, zone, ACTIONS[name]))
                continue
            message = self._message(tenant, patient, name, at, name, fields, zone)
            if message is None:
                left_out.append({"step": name, "would_be_at": at, "why": NOWHERE})
                continue
            if name in moved:
                message["moved_by_quiet_hours"] = True
            steps.append(message)
        return {"booked_at": utc_iso(booked_at), "steps": steps, "left_out": left_out}

    def care_plan(self, principal: Principal, plan_id: str, body: Document) -> CarePlanPreview:
        """A care plan's steps after an event at `event_at`: each message with its moment,
        channel and text, and for a check-in the reminder and the staff task that follow if
        it is not answered."""
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        plan = self._care_config.plan(tenant["id"], plan_id) if is_valid_id(plan_id) else None
        if plan is None:
            raise NotFound("care plan not found")
        patient = hypothetical_patient(body["patient"])
        zone, quiet = ZoneInfo(patient["time_zone"]), tenant["quiet_hours"]
        event_at = datetime.fromisoformat(body["event_at"])
        department = body.get("department") or next(
            iter((plan.get("trigger") or {}).get("departments") or [""])
        )
        steps: list[PreviewStep] = []
        left_out: list[LeftOut] = []
        for step in care_plans.agenda(plan, event_at, zone, quiet, event_at):
            template, fields = step_message(
                tenant, patient, department, dict(step), "preview", "preview"
            )
            message = self._message(tenant, patient, step["id"], step["at"], template, fields, zone)
            if message is None:
                left_out.append({"step": step["id"], "would_be_at": step["at"], "why": NOWHERE})
                continue
            steps.append(message)
            if step["kind"] == StepKind.CHECKIN:
                timers = care_plans.answer_timers(
                    plan, datetime.fromisoformat(step["at"]), zone, quiet
                )
                reminder = self._message(
                    tenant,
                    patient,
                    f"{step['id']}#reminder",
                    timers["remind_at"],
                    "checkin_reminder",
                    fields,
                    zone,
                )
                if reminder is not None:
                    reminder["action"] = "reminder_if_unanswered"
                    steps.append(reminder)
                steps.append(
                    _moment(
                        f"{step['id']}#escalation",
                        timers["escalate_at"],
                        zone,
                        "staff_task_if_unanswered",
                    )
                )
        steps.sort(key=lambda s: s["at"])
        return {"event_at": utc_iso(event_at), "steps": steps, "left_out": left_out}

    def recall_rule(self, principal: Principal, rule_id: str, body: Document) -> RecallPreview:
        """A recall rule's cycle counted from `from_date` (the visit, or the day a condition was
        recorded): the invitation, reminder and last call with their moments, channel and text,
        and the staff task if the patient still has not booked."""
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        rule = self._care_config.rule(tenant["id"], rule_id) if is_valid_id(rule_id) else None
        if rule is None:
            raise NotFound("recall rule not found")
        patient = hypothetical_patient(body["patient"])
        zone = ZoneInfo(patient["time_zone"])
        counted_from = date.fromisoformat(body["from_date"])
        due = counted_from + timedelta(days=rule["after_days"])
        starts = datetime.combine(counted_from, time(0, 0), tzinfo=zone)
        fields: Document = {
            **patient_fields(tenant, patient),
            "department": department_names(tenant).get(rule["book"]["department"], ""),
            "link": booking_link("preview"),
        }
        steps: list[PreviewStep] = []
        left_out: list[LeftOut] = []
        for planned in recall_rules.sequence_plan(rule, due, zone, tenant["quiet_hours"], starts):
            if planned["step"] == "staff_task":
                steps.append(
                    _moment(planned["step"], planned["at"], zone, "staff_task_if_unbooked")
                )
                continue
            message = self._message(
                tenant, patient, planned["step"], planned["at"], planned["step"], fields, zone
            )
            if message is None:
                left_out.append(
                    {"step": planned["step"], "would_be_at": planned["at"], "why": NOWHERE}
                )
            else:
                steps.append(message)
        return {"due_date": due.isoformat(), "steps": steps, "left_out": left_out}

    def _message(
        self,
        tenant: Document,
        patient: Document,
        step: str,
        at: str,
        template: str,
        fields: Document,
        zone: ZoneInfo,
    ) -> PreviewStep | None:
        channel = self._channel(patient)
        if channel is None:
            return None
        rendered = self._deliveries.preview(tenant, patient, template, channel, fields)
        found = _moment(step, at, zone, "message")
        found["channel"], found["text"] = channel, rendered.body
        if rendered.subject:
            found["subject"] = rendered.subject
        if rendered.segments is not None:
            found["sms_segments"] = rendered.segments
        return found

    @staticmethod
    def _channel(patient: Document) -> str | None:
        """The first of the patient's channels with consent (a hypothetical patient has the
        contact details for each and no opt-out)."""
        for channel in patient["preferred_channels"]:
            if patient["consent"][channel]["status"] != "withdrawn":
                return str(channel)
        return None
