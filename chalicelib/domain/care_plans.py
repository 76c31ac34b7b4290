"""Care plans and the aftercare agenda they give. Pure: a plan and times in, an agenda out.

A care plan says what follows an event (a discharge, a surgery, a fulfilled appointment of some
types): questionnaires on given days after it, education to push, and when to invite the patient
back for a re-check. Each planned message goes out on its day at the plan's local send time, in
the patient's time zone, moved out of quiet hours. An urgent answer may add one more check-in a
few days later (the plan's `on_urgent` branch).

The journey is a set of timers, not a queue: each step is sent at its own time, and a check-in's
reminder and hand-over, and a re-check's booking window, run beside the later steps. `due` names
the earliest timer; the state machine waits for it, does it, and asks again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.domain import aftercare
from chalicelib.domain.aftercare import AftercareStep, StepKind, StepStatus
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Problems, invalid
from chalicelib.domain.step_results import AnswerTimers, DueStep
from chalicelib.domain.tenants import out_of_quiet_hours

EVENTS = ("discharge", "surgery", "appointment.fulfilled")
DEFAULT_SEND_TIME = "10:00"
DEFAULT_REMIND_AFTER_HOURS = 24
DEFAULT_ESCALATE_AFTER_HOURS = 48
MAX_EXTRA_CHECK_INS = 3  # an urgent answer to an extra check-in branches again, but not forever

S = StepStatus
OPEN_CHECK_IN = frozenset({S.PLANNED, S.AWAITING_ANSWER})  # an answer still counts (in time)
# Steps as stored or as `agenda` builds them: the rules below only read them.
Steps = Sequence[Mapping[str, Any]]


class StepAction(StrEnum):
    """A timer of the journey; each value is the aftercare task's action that serves it."""

    SEND = "send"
    REMIND = "remind"
    ESCALATE = "escalate"
    RECHECK_OUTCOME = "recheck_outcome"
    # Nothing due, but an urgent answer may add a check-in while the journey sleeps: wake at
    # each moment such a check-in can be due (the plan's send time) while a check-in is open.
    LOOK = "look"


def check_plan(plan: Document, questionnaire_ids: set[str], department_ids: set[str]) -> None:
    """What JSON Schema cannot say: references exist, days and hours make sense together."""
    problems = Problems()
    trigger = plan["trigger"]
    if trigger.get("appointment_types") and trigger["event"] != "appointment.fulfilled":
        problems.add(
            "$.trigger.appointment_types", "only an appointment.fulfilled trigger has types"
        )
    for index, department in enumerate(trigger.get("departments", [])):
        if department not in department_ids:
            problems.add(f"$.trigger.departments[{index}]", f"no department {department!r}")
    days: set[int] = set()
    for index, check_in in enumerate(plan.get("check_ins", [])):
        if check_in["questionnaire"] not in questionnaire_ids:
            problems.add(
                f"$.check_ins[{index}].questionnaire",
                f"no questionnaire {check_in['questionnaire']!r}",
            )
        if check_in["day"] in days:
            problems.add(f"$.check_ins[{index}].day", "two check-ins on one day")
        days.add(check_in["day"])
    urgent = plan.get("on_urgent", {}).get("questionnaire")
    if urgent is not None and urgent not in questionnaire_ids:
        problems.add("$.on_urgent.questionnaire", f"no questionnaire {urgent!r}")
    remind = plan.get("remind_after_hours", DEFAULT_REMIND_AFTER_HOURS)
    escalate = plan.get("escalate_after_hours", DEFAULT_ESCALATE_AFTER_HOURS)
    if escalate <= remind:
        problems.add("$.escalate_after_hours", "must be later than remind_after_hours")
    recheck = plan.get("recheck")
    if recheck and recheck.get("department") and recheck["department"] not in department_ids:
        problems.add("$.recheck.department", f"no department {recheck['department']!r}")
    if not plan.get("check_ins") and not plan.get("education") and not recheck:
        problems.add("$", "a care plan needs at least a check-in, education or a re-check")
    problems.raise_if_any()


def matches(plan: Document, event: Document) -> bool:
    """Does this event start this plan?"""
    trigger = plan["trigger"]
    if plan.get("enabled", True) is False or trigger["event"] != event["type"]:
        return False
    departments = trigger.get("departments")
    if departments and event.get("department") not in departments:
        return False
    types = trigger.get("appointment_types")
    return not types or event.get("appointment_type") in types


def _send_time(plan: Document) -> time:
    hour, minute = (int(part) for part in plan.get("send_time", DEFAULT_SEND_TIME).split(":"))
    return time(hour, minute)


def _on_day(
    plan: Document, day: date, zone: ZoneInfo, quiet: Document, not_before: datetime
) -> str:
    """The plan's send time on a local day, no earlier than `not_before`, out of quiet hours."""
    moment = datetime.combine(day, _send_time(plan), tzinfo=zone)
    return utc_iso(out_of_quiet_hours(max(moment, not_before), zone, quiet))


def agenda(
    plan: Document, event_at: datetime, zone: ZoneInfo, quiet: Document, now: datetime
) -> list[AftercareStep]:
    """Every planned step, in time order: check-ins, education, the re-check invitation."""
    start_day = event_at.astimezone(zone).date()

    def on(day: int) -> str:
        return _on_day(plan, start_day + timedelta(days=day), zone, quiet, now)

    steps = [
        aftercare.check_in(f"checkin-d{item['day']}", item["questionnaire"], on(item["day"]))
        for item in plan.get("check_ins", [])
    ]
    steps += [
        aftercare.education(
            f"education-d{item['day']}-{index + 1}", item["title"], item["url"], on(item["day"])
        )
        for index, item in enumerate(plan.get("education", []))
    ]
    recheck = plan.get("recheck")
    if recheck:
        day = recheck["day"]
        steps.append(
            aftercare.recheck(f"recheck-d{day}", on(day), recheck.get("book_within_days", 14))
        )
    return sorted(steps, key=lambda step: (step["at"], step["id"]))


def answer_timers(
    plan: Document, sent_at: datetime, zone: ZoneInfo, quiet: Document
) -> AnswerTimers:
    """When to remind the patient (out of quiet hours) and when to hand over to staff."""
    remind = sent_at + timedelta(hours=plan.get("remind_after_hours", DEFAULT_REMIND_AFTER_HOURS))
    escalate = sent_at + timedelta(
        hours=plan.get("escalate_after_hours", DEFAULT_ESCALATE_AFTER_HOURS)
    )
    remind = out_of_quiet_hours(remind, zone, quiet)
    return {"remind_at": utc_iso(min(remind, escalate)), "escalate_at": utc_iso(escalate)}


def extra_check_in(
    plan: Document,
    after: Mapping[str, Any],
    steps: Steps,
    answered_at: datetime,
    zone: ZoneInfo,
    quiet: Document,
) -> AftercareStep | None:
    """The plan's branch on an urgent answer: one more check-in some days later, or None."""
    branch = plan.get("on_urgent")
    if not branch:
        return None
    extras = [step for step in steps if step["id"].startswith("checkin-extra-")]
    if len(extras) >= MAX_EXTRA_CHECK_INS:
        return None
    day = answered_at.astimezone(zone).date() + timedelta(days=branch["extra_check_in_after_days"])
    return aftercare.check_in(
        f"checkin-extra-{len(extras) + 1}",
        branch.get("questionnaire", after["questionnaire"]),
        _on_day(plan, day, zone, quiet, answered_at),
        because=f"urgent answer to {after['id']}",
    )


def _next_send_moment(plan: Document, now: datetime, zone: ZoneInfo, quiet: Document) -> datetime:
    """The first moment after `now` a check-in added by `extra_check_in` could be due."""
    today = now.astimezone(zone).date()
    for day in (today, today + timedelta(days=1)):
        moment = datetime.combine(day, _send_time(plan), tzinfo=zone)
        moved = out_of_quiet_hours(moment, zone, quiet)
        if moved > now:
            return moved
    return out_of_quiet_hours(  # quiet hours ending after tomorrow's send time
        datetime.combine(today + timedelta(days=2), _send_time(plan), tzinfo=zone), zone, quiet
    )


def due(
    plan: Document, steps: Steps, now: datetime, zone: ZoneInfo, quiet: Document
) -> DueStep | None:
    """The journey's earliest timer (in the past when overdue), or None when nothing is left."""
    timers: list[tuple[datetime, int, StepAction, str]] = []
    open_check_in = ""  # the first check-in an urgent answer could still branch from
    for order, step in enumerate(steps):
        status = step["status"]
        if status == S.PLANNED:
            at = step.get("not_before") or step["at"]
            timers.append((datetime.fromisoformat(at), order, StepAction.SEND, step["id"]))
        elif status == S.AWAITING_ANSWER:
            open_check_in = open_check_in or step["id"]
            if "reminder" not in step:
                remind_at = datetime.fromisoformat(step["remind_at"])
                timers.append((remind_at, order, StepAction.REMIND, step["id"]))
            escalate_at = datetime.fromisoformat(step["escalate_at"])
            timers.append((escalate_at, order, StepAction.ESCALATE, step["id"]))
        elif status == S.AWAITING_BOOKING:
            closes_at = datetime.fromisoformat(step["closes_at"])
            timers.append((closes_at, order, StepAction.RECHECK_OUTCOME, step["id"]))
    if not timers:
        return None
    at, _, action, step_id = min(timers)
    if open_check_in and plan.get("on_urgent"):
        look = _next_send_moment(plan, now, zone, quiet)
        if look < at:
            at, action, step_id = look, StepAction.LOOK, open_check_in
    return {"step_id": step_id, "action": action.value, "at": utc_iso(at)}


def answer_window(
    plan: Document, step: Mapping[str, Any], zone: ZoneInfo
) -> tuple[datetime, datetime]:
    """When an answer to the check-in's questionnaire, however it is sent, counts for it: from
    the start of the check-in's local day until staff take over."""
    at = datetime.fromisoformat(step["at"])
    opens = datetime.combine(at.astimezone(zone).date(), time(0), tzinfo=zone)
    if "escalate_at" in step:
        return opens, datetime.fromisoformat(step["escalate_at"])
    hours = plan.get("escalate_after_hours", DEFAULT_ESCALATE_AFTER_HOURS)
    return opens, at + timedelta(hours=hours)


def check_in_answered_by(
    plan: Document, steps: Steps, questionnaire: str, at: datetime, zone: ZoneInfo
) -> Mapping[str, Any] | None:
    """The check-in an answer to `questionnaire` at `at` (not through a check-in's link) counts
    for: the latest one still open whose window holds `at`; None if there is none."""
    candidates = [
        step
        for step in steps
        if step["kind"] == StepKind.CHECKIN
        and step["questionnaire"] == questionnaire
        and step["status"] in OPEN_CHECK_IN
        and answer_window(plan, step, zone)[0] <= at < answer_window(plan, step, zone)[1]
    ]
    return max(candidates, key=lambda step: (step["at"], step["id"])) if candidates else None


def check_event_time(path: str, occurred_at: datetime, now: datetime) -> None:
    if occurred_at > now + timedelta(minutes=5):
        raise invalid(path, "the event cannot be in the future")
    if occurred_at < now - timedelta(days=90):
        raise invalid(path, "the event is more than 90 days old")
