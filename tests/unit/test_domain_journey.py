"""The journey's timetable, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain import journey

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
    moved = journey.out_of_quiet_hours(moment, zone, TENANT["quiet_hours"]).astimezone(zone)
    day_shift = 1 if expected.endswith("+1") else 0
    assert moved.strftime("%H:%M") == expected.removesuffix("+1")
    assert moved.day == 23 + day_shift
