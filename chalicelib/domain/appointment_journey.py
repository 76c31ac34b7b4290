"""The appointment journey: when it does what, and which step follows which. Pure: times in,
times out.

The plan (`plan`) is made once, when the journey starts: the confirmation, the reminders, the
deadline for the patient's answer and the visit check, each at a moment computed in the
patient's time zone and moved out of the tenant's quiet hours (a patient abroad is not woken at
03:00 their time); reminders whose moment has passed at booking are left out. The state machine
is a loop (statemachines/appointment.asl.json): wait until the next step's moment, take the
step, ask `next_step` what follows. A missed visit adds the no-show steps: a follow-up message,
a look for a new booking some days later, a second message, another look, then a staff task.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypedDict
from zoneinfo import ZoneInfo

from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.step_results import NextStep, PlannedReminder, Timetable
from chalicelib.domain.tenants import out_of_quiet_hours

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


class Step(StrEnum):
    """The journey's steps other than the reminders (`reminder_<n><d|h|m>`, see
    `reminder_step`)."""

    START = "start"  # make the plan (and send the confirmation when it is due at once)
    CONFIRMATION = "confirmation"
    ANSWER_DEADLINE = "answer_deadline"  # no answer yet: a staff task
    VISIT_CHECK = "visit_check"  # attended (the visit event) or a no-show
    NOSHOW_FOLLOWUP = "noshow_followup"
    REBOOK_CHECK = "rebook_check"
    NOSHOW_SECOND = "noshow_second"
    FINAL_REBOOK_CHECK = "final_rebook_check"
    NOSHOW_TASK = "noshow_task"  # still not rebooked: staff call the patient
    DONE = "done"


# Steps that send the patient a message (beside the reminders).
MESSAGE_STEPS = frozenset({Step.CONFIRMATION, Step.NOSHOW_FOLLOWUP, Step.NOSHOW_SECOND})
# After a no-show message, the look for a new booking it leads to (some days later).
REBOOK_CHECK_AFTER = {
    Step.NOSHOW_FOLLOWUP: Step.REBOOK_CHECK,
    Step.NOSHOW_SECOND: Step.FINAL_REBOOK_CHECK,
}
# After a look that found no new booking, what comes next (at once).
NOT_REBOOKED_NEXT = {
    Step.REBOOK_CHECK: Step.NOSHOW_SECOND,
    Step.FINAL_REBOOK_CHECK: Step.NOSHOW_TASK,
}


def is_reminder(step: str) -> bool:
    return step.startswith("reminder_")


def sends_message(step: str) -> bool:
    return step in MESSAGE_STEPS or is_reminder(step)


def at(step: str, moment: datetime | str) -> NextStep:
    # A plain string (not the enum): it is stored, serialised and compared as one.
    return {"step": str(step), "at": moment if isinstance(moment, str) else utc_iso(moment)}


def done(now: datetime) -> NextStep:
    return at(Step.DONE, now)


def start_input(
    tenant_id: str, appointment_id: str, journey_version: int, now: datetime
) -> Document:
    """The input of a journey's execution: ids, and the first step (no plan yet)."""
    return {
        "tenant_id": tenant_id,
        "appointment_id": appointment_id,
        "journey_version": journey_version,
        "journey": {"plan": {}, "next": at(Step.START, now)},
    }


def timed_steps(plan: Timetable) -> list[NextStep]:
    """The steps before and at the visit, in time order: the confirmation, the reminders and the
    answer's deadline (when an answer is awaited; after a reminder of the same moment), then the
    visit check."""
    steps = [at(Step.CONFIRMATION, plan["confirmation_at"])]
    steps += [at(r["step"], r["at"]) for r in plan["reminders"]]
    if plan["await_answer"]:
        steps.append(at(Step.ANSWER_DEADLINE, plan["answer_deadline"]))
    steps.sort(key=lambda s: s["at"])  # stable: the deadline stays after a reminder it ties with
    steps.append(at(Step.VISIT_CHECK, plan["visit_check_at"]))
    return steps


def following(plan: Timetable, step: str, *, answered: bool, now: datetime) -> NextStep:
    """The timed step after `step`. Once the patient has answered, the deadline for the answer
    is passed over (no wait, no look)."""
    steps = timed_steps(plan)
    names = [s["step"] for s in steps]
    for upcoming in steps[names.index(step) + 1 :]:
        if upcoming["step"] == Step.ANSWER_DEADLINE and answered:
            continue
        return upcoming
    return done(now)


def between(plan: Timetable, step: str, upcoming: str) -> list[str]:
    """The timed steps after `step` and before `upcoming` that the journey went past (none
    unless `following` passed one over)."""
    names = [s["step"] for s in timed_steps(plan)] if plan else []
    if step not in names:
        return []
    later = names[names.index(step) + 1 :]
    return later[: later.index(upcoming)] if upcoming in later else []


def after_visit(attended_or_not: str, now: datetime) -> NextStep:
    """A no-show is followed up at once; anything else (attended, cancelled, the hospital's
    own) ends the journey."""
    return at(Step.NOSHOW_FOLLOWUP, now) if attended_or_not == "noshow" else done(now)


def after_noshow_message(plan: Timetable, step: str, now: datetime) -> NextStep:
    """The look for a new booking, `noshow_retry_seconds` after the message (sent or not)."""
    later = now + timedelta(seconds=plan["noshow_retry_seconds"])
    return at(REBOOK_CHECK_AFTER[Step(step)], later)


def after_rebook_check(step: str, rebooked: bool, now: datetime) -> NextStep:
    return done(now) if rebooked else at(NOT_REBOOKED_NEXT[Step(step)], now)


def after_failure(plan: Timetable, step: str, now: datetime) -> NextStep:
    """Where a journey goes on after `step` failed every retry (staff were told): a message's
    failure does not cancel what follows it; a failed check ends the journey, as nothing after it
    could be decided. (A failed start is planned afresh by the service.)"""
    if step in REBOOK_CHECK_AFTER:
        return after_noshow_message(plan, step, now)
    if step == Step.CONFIRMATION or is_reminder(step) or step == Step.ANSWER_DEADLINE:
        # Not knowing whether the patient answered, the deadline's look is kept.
        return following(plan, step, answered=False, now=now)
    return done(now)


def reminder_offset_minutes(step: str) -> int:
    """How long before the visit a reminder step is meant (the inverse of `reminder_step`)."""
    amount, unit = int(step.removeprefix("reminder_")[:-1]), step[-1]
    return amount * {"d": 24 * 60, "h": 60, "m": 1}[unit]


def reminder_step(offset_minutes: int) -> str:
    if offset_minutes % (24 * 60) == 0:
        return f"reminder_{offset_minutes // (24 * 60)}d"
    if offset_minutes % 60 == 0:
        return f"reminder_{offset_minutes // 60}h"
    return f"reminder_{offset_minutes}m"


class LeftOut(TypedDict):
    """A reminder the tenant's offsets ask for that this appointment will not get, and why."""

    step: str
    would_be_at: str
    why: str


def _reminders(
    appointment: Document, tenant: Document, zone: ZoneInfo, now: datetime, confirmation: datetime
) -> tuple[list[PlannedReminder], list[LeftOut]]:
    settings = settings_of(tenant)
    start = datetime.fromisoformat(appointment["start"])
    offsets = settings["reminder_offsets_minutes"].get(
        appointment["type"], settings["reminder_offsets_minutes"]["default"]
    )
    planned: list[PlannedReminder] = []
    left_out: list[LeftOut] = []
    for offset in sorted(set(offsets), reverse=True):
        step, moment = reminder_step(offset), start - timedelta(minutes=offset)
        shifted = out_of_quiet_hours(moment, zone, tenant["quiet_hours"])
        if moment <= now:
            why = "its moment had passed when the appointment was booked"
        elif shifted >= start:
            why = "quiet hours would move it past the visit"
        elif shifted <= confirmation:
            why = "it would come no later than the confirmation"
        else:
            planned.append({"step": step, "at": utc_iso(shifted)})
            continue
        left_out.append({"step": step, "would_be_at": utc_iso(moment), "why": why})
    return planned, left_out


def moved_by_quiet_hours(plan: Timetable, start: datetime, booked_at: datetime) -> dict[str, str]:
    """The planned messages quiet hours moved, with the moment each would have had: the
    confirmation's is the booking, a reminder's its offset before the visit."""
    moved: dict[str, str] = {}
    if plan["confirmation_at"] != utc_iso(booked_at):
        moved[Step.CONFIRMATION] = utc_iso(booked_at)
    for reminder in plan["reminders"]:
        own = utc_iso(start - timedelta(minutes=reminder_offset_minutes(reminder["step"])))
        if own != reminder["at"]:
            moved[reminder["step"]] = own
    return moved


def plan(appointment: Document, tenant: Document, patient_zone: str, now: datetime) -> Timetable:
    """The journey's timetable, as the state machine's Wait states read it (UTC ISO strings)."""
    return plan_and_left_out(appointment, tenant, patient_zone, now)[0]


def plan_and_left_out(
    appointment: Document, tenant: Document, patient_zone: str, now: datetime
) -> tuple[Timetable, list[LeftOut]]:
    """The timetable, and the reminders left out of it with the reason (for a preview)."""
    settings = settings_of(tenant)
    zone = ZoneInfo(patient_zone)
    start = datetime.fromisoformat(appointment["start"])
    confirmation = out_of_quiet_hours(now, zone, tenant["quiet_hours"])
    reminders, left_out = _reminders(appointment, tenant, zone, now, confirmation)
    deadline = start - timedelta(minutes=settings["answer_deadline_minutes_before"])
    timetable: Timetable = {
        "confirmation_at": utc_iso(confirmation),
        "reminders": reminders,
        # An answer is awaited only if the patient has time to give one after the confirmation.
        "await_answer": deadline > confirmation,
        "answer_deadline": utc_iso(max(deadline, confirmation)),
        "visit_check_at": utc_iso(start + timedelta(minutes=settings["visit_grace_minutes"])),
        "noshow_retry_seconds": settings["noshow_retry_days"] * 24 * 3600,
    }
    return timetable, left_out
