"""When an appointment journey does what: the plan of confirmation, reminders, the deadline for
the patient's answer, the visit check and no-show follow-ups. Pure: times in, times out.

Send times are computed in the patient's time zone and moved out of the tenant's quiet hours
(a patient abroad is not woken at 03:00 their time). Reminders whose moment has passed at
booking are skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.task_results import PlannedReminder, Timetable
from chalicelib.domain.tenants import is_quiet

DEFAULTS: Document = {
    "reminder_offsets_minutes": {"default": [7 * 24 * 60, 24 * 60, 120]},
    "answer_deadline_minutes_before": 24 * 60,
    "visit_grace_minutes": 120,
    "noshow_retry_days": 3,
}


def execution_name(tenant_id: str, appointment_id: str, journey_version: int) -> str:
    """One execution per appointment and journey version: a retried start is a no-op, and a
    reschedule (version n + 1) starts a new one."""
    return f"{tenant_id}-{appointment_id}-v{journey_version}"


def settings_of(tenant: Document) -> Document:
    configured = tenant.get("journey", {})
    merged = {**DEFAULTS, **configured}
    merged["reminder_offsets_minutes"] = {
        **DEFAULTS["reminder_offsets_minutes"],
        **configured.get("reminder_offsets_minutes", {}),
    }
    return merged


def out_of_quiet_hours(moment: datetime, zone: ZoneInfo, quiet_hours: Document) -> datetime:
    """The first moment at or after `moment` that is outside quiet hours, local to `zone`."""
    local = moment.astimezone(zone)
    if not is_quiet(local.time().replace(microsecond=0), quiet_hours):
        return moment
    end_hour, end_minute = (int(part) for part in quiet_hours["end"].split(":"))
    candidate = local.replace(hour=end_hour, minute=end_minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(moment.tzinfo)


def reminder_step(offset_minutes: int) -> str:
    if offset_minutes % (24 * 60) == 0:
        return f"reminder_{offset_minutes // (24 * 60)}d"
    if offset_minutes % 60 == 0:
        return f"reminder_{offset_minutes // 60}h"
    return f"reminder_{offset_minutes}m"


def plan(appointment: Document, tenant: Document, patient_zone: str, now: datetime) -> Timetable:
    """The journey's timetable, as the state machine's Wait states read it (UTC ISO strings)."""
    settings = settings_of(tenant)
    zone = ZoneInfo(patient_zone)
    quiet = tenant["quiet_hours"]
    start = datetime.fromisoformat(appointment["start"])
    offsets = settings["reminder_offsets_minutes"].get(
        appointment["type"], settings["reminder_offsets_minutes"]["default"]
    )
    confirmation = out_of_quiet_hours(now, zone, quiet)
    reminders: list[PlannedReminder] = []
    for offset in sorted(set(offsets), reverse=True):
        planned = start - timedelta(minutes=offset)
        if planned <= now:
            continue  # already past at booking
        shifted = out_of_quiet_hours(planned, zone, quiet)
        if shifted >= start or shifted <= confirmation:
            continue  # pushed past the visit by quiet hours, or no later than the confirmation
        reminders.append({"step": reminder_step(offset), "at": utc_iso(shifted)})
    deadline = start - timedelta(minutes=settings["answer_deadline_minutes_before"])
    return {
        "confirmation_at": utc_iso(confirmation),
        "reminders": reminders,
        # An answer is awaited only if the patient has time to give one after the confirmation.
        "await_answer": deadline > confirmation,
        "answer_deadline": utc_iso(max(deadline, confirmation)),
        "visit_check_at": utc_iso(start + timedelta(minutes=settings["visit_grace_minutes"])),
        "noshow_retry_seconds": settings["noshow_retry_days"] * 24 * 3600,
    }
