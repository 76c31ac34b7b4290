"""The journey's timetable, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain import appointment_journey as journey
from chalicelib.domain.tenants import out_of_quiet_hours

TENANT: dict[str, Any] = {"quiet_hours": {"start": "21:00", "end": "08:00"}}
SHANGHAI = "Asia/Shanghai"


def appointment(start: datetime, kind: str = "follow_up") -> dict[str, Any]:
    return {"start": start.isoformat(), "type": kind}


def test_default_reminders_at_7d_1d_2h() -> None:
    start = datetime(2026, 12, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    planned = journey.plan(appointment(start), TENANT, SHANGHAI, now)
    assert [r["step"] for r in planned["reminders"]] == [
        "reminder_7d",
        "reminder_1d",
        "reminder_2h",
    ]
    assert planned["reminders"][0]["at"] == "2026-12-03T02:00:00Z"
    assert planned["await_answer"] is True
    assert planned["answer_deadline"] == "2026-12-09T02:00:00Z"
    assert planned["visit_check_at"] == "2026-12-10T04:00:00Z"


def test_booking_an_hour_ahead_gets_only_the_confirmation() -> None:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    planned = journey.plan(appointment(now + timedelta(hours=1)), TENANT, SHANGHAI, now)
    assert planned["reminders"] == []
    assert planned["await_answer"] is False
    assert planned["confirmation_at"] == "2026-11-23T02:00:00Z"


def test_quiet_hours_move_sends_to_the_morning_in_the_patients_zone() -> None:
    # 08:30 Shanghai visit: the 2-hour reminder would be 06:30, inside quiet hours.
    start = datetime(2026, 12, 10, 0, 30, tzinfo=UTC)
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    planned = journey.plan(appointment(start), TENANT, SHANGHAI, now)
    two_hours = next(r for r in planned["reminders"] if r["step"] == "reminder_2h")
    assert two_hours["at"] == "2026-12-10T00:00:00Z"  # 08:00 local
    # A patient in London gets the same reminders at their own daytime.
    london = journey.plan(appointment(start), TENANT, "Europe/London", now)
    seven_days = next(r for r in london["reminders"] if r["step"] == "reminder_7d")
    assert seven_days["at"] == "2026-12-03T08:00:00Z"  # 00:30 London → 08:00 London


def test_confirmation_of_a_late_night_booking_waits_for_morning() -> None:
    late = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    planned = journey.plan(appointment(late + timedelta(days=5)), TENANT, SHANGHAI, late)
    assert planned["confirmation_at"] == "2026-11-24T00:00:00Z"


def test_tenant_offsets_per_appointment_type() -> None:
    tenant = {**TENANT, "journey": {"reminder_offsets_minutes": {"procedure": [2880, 1440]}}}
    start = datetime(2026, 12, 10, 2, 0, tzinfo=UTC)
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    steps = [
        r["step"]
        for r in journey.plan(appointment(start, "procedure"), tenant, SHANGHAI, now)["reminders"]
    ]
    assert steps == ["reminder_2d", "reminder_1d"]
    default = journey.plan(appointment(start), tenant, SHANGHAI, now)["reminders"]
    assert len(default) == 3


@pytest.mark.parametrize(
    ("local", "expected"), [("21:30", "08:00+1"), ("07:59", "08:00"), ("12:00", "12:00")]
)
def test_out_of_quiet_hours(local: str, expected: str) -> None:
    zone = ZoneInfo(SHANGHAI)
    hour, minute = map(int, local.split(":"))
    moment = datetime(2026, 11, 23, hour, minute, tzinfo=zone)
    moved = out_of_quiet_hours(moment, zone, TENANT["quiet_hours"]).astimezone(zone)
    day_shift = 1 if expected.endswith("+1") else 0
    assert moved.strftime("%H:%M") == expected.removesuffix("+1")
    assert moved.day == 23 + day_shift


# --- which step follows which (the state machine's loop) ---

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def a_plan(**overrides: Any) -> Any:
    planned = journey.plan(
        appointment(datetime(2026, 12, 10, 2, 0, tzinfo=UTC)), TENANT, SHANGHAI, NOW
    )
    return {**planned, **overrides}


def walk(plan: Any, *, answered: bool) -> list[str]:
    steps, step = [], "confirmation"
    while step != "done":
        steps.append(step)
        step = journey.following(plan, step, answered=answered, now=NOW)["step"]
    return steps


def test_the_timed_steps_in_order_and_the_deadline_only_while_unanswered() -> None:
    plan = a_plan()
    assert walk(plan, answered=False) == [
        "confirmation",
        "reminder_7d",
        "reminder_1d",
        "answer_deadline",  # the same moment as the 1-day reminder, after it
        "reminder_2h",
        "visit_check",
    ]
    assert "answer_deadline" not in walk(plan, answered=True)
    assert "answer_deadline" not in walk(a_plan(await_answer=False), answered=False)


def test_a_no_show_is_followed_up_twice_then_put_before_staff() -> None:
    plan = a_plan()
    assert journey.after_visit("attended", NOW)["step"] == "done"
    assert journey.after_visit("kept_by_hospital", NOW)["step"] == "done"
    first = journey.after_visit("noshow", NOW)
    assert first == {"step": "noshow_followup", "at": "2026-11-23T02:00:00Z"}
    look = journey.after_noshow_message(plan, first["step"], NOW)
    assert look == {"step": "rebook_check", "at": "2026-11-26T02:00:00Z"}  # 3 days later
    assert journey.after_rebook_check("rebook_check", True, NOW)["step"] == "done"
    second = journey.after_rebook_check("rebook_check", False, NOW)
    assert second["step"] == "noshow_second"
    last_look = journey.after_noshow_message(plan, "noshow_second", NOW)
    assert last_look["step"] == "final_rebook_check"
    assert journey.after_rebook_check("final_rebook_check", False, NOW)["step"] == "noshow_task"


def test_after_a_failed_step_the_journey_goes_on_where_it_can() -> None:
    plan = a_plan()
    # A message that could not be sent does not cancel the ones after it; not knowing whether
    # the patient answered, the deadline's look is kept.
    assert journey.after_failure(plan, "confirmation", NOW)["step"] == "reminder_7d"
    assert journey.after_failure(plan, "reminder_1d", NOW)["step"] == "answer_deadline"
    assert journey.after_failure(plan, "noshow_followup", NOW)["step"] == "rebook_check"
    # A failed check decides nothing after it.
    for step in ("visit_check", "rebook_check", "final_rebook_check", "noshow_task"):
        assert journey.after_failure(plan, step, NOW)["step"] == "done"


def test_the_execution_starts_with_ids_and_the_start_step_only() -> None:
    started = journey.start_input("renji", "a-1", 2, NOW)
    assert started == {
        "tenant_id": "renji",
        "appointment_id": "a-1",
        "journey_version": 2,
        "journey": {"plan": {}, "next": {"step": "start", "at": "2026-11-23T02:00:00Z"}},
    }
    assert type(started["journey"]["next"]["step"]) is str  # stored and serialised as text


@pytest.mark.parametrize("minutes", [7 * 24 * 60, 24 * 60, 120, 90, 45])
def test_a_reminders_name_gives_back_its_offset(minutes: int) -> None:
    assert journey.reminder_offset_minutes(journey.reminder_step(minutes)) == minutes
