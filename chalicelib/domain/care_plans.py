"""Care plans and the aftercare agenda they give. Pure: a plan and times in, an agenda out.

A care plan says what follows an event (a discharge, a surgery, a fulfilled appointment of some
types): questionnaires on given days after it, education to push, and when to invite the patient
back for a re-check. Each planned message goes out on its day at the plan's local send time, in
the patient's time zone, moved out of quiet hours. An urgent answer may add one more check-in a
few days later (the plan's `on_urgent` branch).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Problems, invalid
from chalicelib.domain.journey import out_of_quiet_hours
from chalicelib.domain.task_results import AnswerTimers

EVENTS = ("discharge", "surgery", "appointment.fulfilled")
DEFAULT_SEND_TIME = "10:00"
DEFAULT_REMIND_AFTER_HOURS = 24
DEFAULT_ESCALATE_AFTER_HOURS = 48
MAX_EXTRA_CHECK_INS = 3  # an urgent answer to an extra check-in branches again, but not forever


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
) -> list[Document]:
    """Every planned step, in time order: check-ins, education, the re-check invitation."""
    start_day = event_at.astimezone(zone).date()
    steps: list[Document] = []
    for check_in in plan.get("check_ins", []):
        day = check_in["day"]
        steps.append(
            {
                "id": f"checkin-d{day}",
                "kind": "checkin",
                "questionnaire": check_in["questionnaire"],
                "at": _on_day(plan, start_day + timedelta(days=day), zone, quiet, now),
                "status": "planned",
            }
        )
    for index, item in enumerate(plan.get("education", [])):
        day = item["day"]
        steps.append(
            {
                "id": f"education-d{day}-{index + 1}",
                "kind": "education",
                "title": item["title"],
                "url": item["url"],
                "at": _on_day(plan, start_day + timedelta(days=day), zone, quiet, now),
                "status": "planned",
            }
        )
    recheck = plan.get("recheck")
    if recheck:
        day = recheck["day"]
        steps.append(
            {
                "id": f"recheck-d{day}",
                "kind": "recheck",
                "at": _on_day(plan, start_day + timedelta(days=day), zone, quiet, now),
                "book_within_days": recheck.get("book_within_days", 14),
                "status": "planned",
            }
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
    after: Document,
    steps: list[Document],
    answered_at: datetime,
    zone: ZoneInfo,
    quiet: Document,
) -> Document | None:
    """The plan's branch on an urgent answer: one more check-in some days later, or None."""
    branch = plan.get("on_urgent")
    if not branch:
        return None
    extras = [step for step in steps if step["id"].startswith("checkin-extra-")]
    if len(extras) >= MAX_EXTRA_CHECK_INS:
        return None
    day = answered_at.astimezone(zone).date() + timedelta(days=branch["extra_check_in_after_days"])
    return {
        "id": f"checkin-extra-{len(extras) + 1}",
        "kind": "checkin",
        "questionnaire": branch.get("questionnaire", after["questionnaire"]),
        "at": _on_day(plan, day, zone, quiet, answered_at),
        "status": "planned",
        "because": f"urgent answer to {after['id']}",
    }


def next_step(steps: list[Document]) -> Document | None:
    """The earliest step not yet done."""
    planned = [step for step in steps if step["status"] == "planned"]
    return min(planned, key=lambda step: (step["at"], step["id"])) if planned else None


def outcome(steps: list[Document]) -> str:
    """How the journey ended: the re-check loop decides it when the plan has one."""
    rechecks = [step["status"] for step in steps if step["kind"] == "recheck"]
    if "booked" in rechecks:
        return "rebooked"
    if rechecks:
        return "not_rebooked"
    return "completed"


def check_event_time(path: str, occurred_at: datetime, now: datetime) -> None:
    if occurred_at > now + timedelta(minutes=5):
        raise invalid(path, "the event cannot be in the future")
    if occurred_at < now - timedelta(days=90):
        raise invalid(path, "the event is more than 90 days old")
