"""Slots from weekly hours, and appointment status rules, without I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain import appointments as appt
from chalicelib.domain import scheduling as rules
from chalicelib.domain.errors import Conflict, ValidationFailed

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
TENANT = {"departments": [{"id": "cardiology", "name": "C"}]}


def schedule(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "s1",
        "department": "cardiology",
        "clinician": "dr-li",
        "location": "Room 1",
        "weekly_hours": {
            "mon": [{"start": "08:30", "end": "10:00"}],
            "tue": [{"start": "08:30", "end": "09:30"}, {"start": "13:30", "end": "14:00"}],
        },
        "slot_minutes": 30,
        "capacity": 1,
        **overrides,
    }


def test_slots_follow_weekly_hours_in_local_time() -> None:
    monday = datetime(2026, 11, 23, tzinfo=SHANGHAI)
    slots = list(rules.slots_between(schedule(), SHANGHAI, monday, monday + timedelta(days=2)))
    local = [s.start.astimezone(SHANGHAI).strftime("%a %H:%M") for s in slots]
    assert local == ["Mon 08:30", "Mon 09:00", "Mon 09:30", "Tue 08:30", "Tue 09:00", "Tue 13:30"]
    assert slots[0].start == datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert slots[0].key == "s1@2026-11-23T00:30:00Z"


def test_a_slot_must_fit_its_window_and_closed_dates_offer_nothing() -> None:
    short = schedule(slot_minutes=40)
    monday = datetime(2026, 11, 23, tzinfo=SHANGHAI)
    starts = [
        s.start.astimezone(SHANGHAI).strftime("%H:%M")
        for s in rules.slots_between(short, SHANGHAI, monday, monday + timedelta(days=1))
    ]
    assert starts == ["08:30", "09:10"]  # 09:50 would end after 10:00
    closed = schedule(closed_dates=["2026-11-23"])
    assert not list(rules.slots_between(closed, SHANGHAI, monday, monday + timedelta(days=1)))


def test_daylight_saving_keeps_wall_clock_hours() -> None:
    # London springs forward on 2027-03-28 (a Sunday): 01:00 local does not exist that day.
    sunday = {"sun": [{"start": "00:30", "end": "02:30"}]}
    day = datetime(2027, 3, 28, tzinfo=LONDON)
    slots = list(
        rules.slots_between(schedule(weekly_hours=sunday), LONDON, day, day + timedelta(days=1))
    )
    assert [s.start.astimezone(LONDON).strftime("%H:%M") for s in slots] == ["00:30", "02:00"]
    monday = {"mon": [{"start": "09:00", "end": "09:30"}]}
    before = list(
        rules.slots_between(
            schedule(weekly_hours=monday),
            LONDON,
            datetime(2027, 3, 22, tzinfo=LONDON),
            datetime(2027, 3, 23, tzinfo=LONDON),
        )
    )
    after = list(
        rules.slots_between(
            schedule(weekly_hours=monday),
            LONDON,
            datetime(2027, 3, 29, tzinfo=LONDON),
            datetime(2027, 3, 30, tzinfo=LONDON),
        )
    )
    assert before[0].start.hour == 9 and after[0].start.hour == 8  # 09:00 BST is 08:00 UTC


def test_find_slot_only_at_a_slot_start() -> None:
    start = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert rules.find_slot(schedule(), SHANGHAI, start) is not None
    assert rules.find_slot(schedule(), SHANGHAI, start + timedelta(minutes=15)) is None


def test_schedule_checks_name_each_problem() -> None:
    bad = schedule(
        weekly_hours={
            "mon": [{"start": "09:00", "end": "08:00"}],
            "tue": [{"start": "08:00", "end": "10:00"}, {"start": "09:00", "end": "11:00"}],
        },
        department="dermatology",
    )
    with pytest.raises(ValidationFailed) as exc:
        rules.check_schedule(bad, TENANT, clinician_department="cardiology")
    assert [d.path for d in exc.value.details] == [
        "$.department",
        "$.clinician",
        "$.weekly_hours.mon",
        "$.weekly_hours.tue",
    ]


def test_range_limits() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    with pytest.raises(ValidationFailed):
        rules.check_range(now, now)
    with pytest.raises(ValidationFailed):
        rules.check_range(now, now + timedelta(days=32))
    rules.check_range(now, now + timedelta(days=31))


@pytest.mark.parametrize(
    ("status", "to", "allowed"),
    [
        ("booked", "arrived", True),
        ("booked", "cancelled", True),
        ("arrived", "fulfilled", True),
        ("cancelled", "booked", False),
        ("fulfilled", "cancelled", False),
        ("noshow", "arrived", False),
        ("arrived", "noshow", False),
    ],
)
def test_status_transitions(status: str, to: str, allowed: bool) -> None:
    if allowed:
        appt.check_transition({"status": status}, to)
    else:
        with pytest.raises(Conflict):
            appt.check_transition({"status": status}, to)


def test_no_show_only_after_the_start_and_no_reschedule_after_it() -> None:
    booked = {"status": "booked", "start": "2026-11-24T01:00:00+00:00"}
    before, after = (
        datetime(2026, 11, 24, 0, 59, tzinfo=UTC),
        datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
    )
    with pytest.raises(Conflict):
        appt.check_noshow_allowed(booked, before)
    appt.check_noshow_allowed(booked, after)
    appt.check_can_change_time(booked, before)
    with pytest.raises(Conflict):
        appt.check_can_change_time(booked, after)


def test_local_times_for_hospital_and_patient() -> None:
    shown = appt.local_times(
        {"start": "2026-11-24T01:00:00Z", "end": "2026-11-24T01:30:00Z"},
        "Asia/Shanghai",
        "Europe/London",
    )
    assert shown["tenant"]["start"] == "2026-11-24T09:00:00+08:00"
    assert shown["patient"]["start"] == "2026-11-24T01:00:00+00:00"


def test_the_booking_horizon_ends_at_the_hospitals_midnight() -> None:
    from chalicelib.domain.tenants import MAX_BOOKING_HORIZON_DAYS

    london = {"time_zone": "Europe/London", "booking": {"horizon_days": 7}}
    # 2027-03-24 23:30 London (GMT); the horizon's last day is 2027-03-31, in summer time.
    now = datetime(2027, 3, 24, 23, 30, tzinfo=UTC)
    assert rules.booking_horizon(london, now) == datetime(2027, 3, 31, 23, 0, tzinfo=UTC)
    rules.check_within_horizon(datetime(2027, 3, 31, 22, 59, tzinfo=UTC), london, now)
    with pytest.raises(ValidationFailed) as refused:
        rules.check_within_horizon(datetime(2027, 3, 31, 23, 0, tzinfo=UTC), london, now)
    assert refused.value.code == "beyond_booking_horizon"
    assert [d.path for d in refused.value.details] == ["$.slot.start"]
    default = rules.booking_horizon({"time_zone": "Asia/Shanghai"}, now)
    assert default == datetime(2027, 9, 21, 16, 0, tzinfo=UTC)  # 180 days after 25 March
    schema = json.loads((ROOT / "chalicelib/schemas/v1/tenant.json").read_text())
    horizon = schema["$defs"]["booking"]["properties"]["horizon_days"]
    assert horizon["maximum"] == MAX_BOOKING_HORIZON_DAYS
