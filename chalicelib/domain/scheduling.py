"""Bookable slots, derived from a schedule's weekly hours in the tenant's time zone.

Slots are not stored: they are computed for the range asked, and only the number already booked
in each is kept (a counter item per slot). Local wall-clock times become UTC through zoneinfo, so
a clinic's 08:00 stays 08:00 across daylight-saving changes; a local time that does not exist
(the hour skipped in spring) offers no slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import FieldError, Problems, ValidationFailed, invalid
from chalicelib.domain.tenants import booking_horizon_days, department_names

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RANGE = timedelta(days=31)
BEYOND_BOOKING_HORIZON = "beyond_booking_horizon"


@dataclass(frozen=True)
class Slot:
    schedule_id: str
    department: str
    clinician: str
    location: str
    start: datetime  # UTC
    end: datetime
    capacity: int

    @property
    def key(self) -> str:
        """Stable reference: `<schedule>@<start UTC>`."""
        return f"{self.schedule_id}@{utc_iso(self.start)}"


def check_schedule(schedule: Document, tenant: Document, clinician_department: str | None) -> None:
    problems = Problems()
    departments = department_names(tenant)
    if schedule["department"] not in departments:
        problems.add("$.department", "is not a department of this hospital")
    if clinician_department is None:
        problems.add("$.clinician", "is not a clinician of this hospital")
    elif clinician_department != schedule["department"]:
        problems.add("$.clinician", "works in another department")
    for day, windows in schedule["weekly_hours"].items():
        spans = sorted(
            (time.fromisoformat(w["start"]), time.fromisoformat(w["end"])) for w in windows
        )
        for index, (start, end) in enumerate(spans):
            if start >= end:
                problems.add(f"$.weekly_hours.{day}", "each window must end after it starts")
            elif index and start < spans[index - 1][1]:
                problems.add(f"$.weekly_hours.{day}", "windows overlap")
    problems.raise_if_any()


def _local(day: date, clock_time: time, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a local wall-clock time, or None if the clocks skip it that day."""
    local = datetime.combine(day, clock_time, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return instant


def slots_between(
    schedule: Document, zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[Slot]:
    """Every slot of `schedule` starting in [start, end)."""
    length = timedelta(minutes=schedule["slot_minutes"])
    closed = set(schedule.get("closed_dates", []))
    day = start.astimezone(zone).date()
    last_day = end.astimezone(zone).date()
    while day <= last_day:
        windows = (
            []
            if day.isoformat() in closed
            else schedule["weekly_hours"].get(WEEKDAYS[day.weekday()], [])
        )
        for window in windows:
            cursor = datetime.combine(day, time.fromisoformat(window["start"]))
            window_end = datetime.combine(day, time.fromisoformat(window["end"]))
            while cursor + length <= window_end:
                slot_start = _local(day, cursor.time(), zone)
                if slot_start and start <= slot_start < end:
                    # The end is the start plus the slot's length in real time, which holds on
                    # the night the clocks change too.
                    yield Slot(
                        schedule["id"],
                        schedule["department"],
                        schedule["clinician"],
                        schedule["location"],
                        slot_start,
                        slot_start + length,
                        schedule["capacity"],
                    )
                cursor += length
        day += timedelta(days=1)


def find_slot(schedule: Document, zone: ZoneInfo, start: datetime) -> Slot | None:
    """The slot of `schedule` that starts exactly at `start`, if the schedule offers one."""
    for slot in slots_between(schedule, zone, start, start + timedelta(seconds=1)):
        if slot.start == start:
            return slot
    return None


def check_range(start: datetime, end: datetime) -> None:
    if end <= start:
        raise invalid("to", "must be after from")
    if end - start > MAX_RANGE:
        raise invalid("to", "the range may span at most 31 days")


def last_bookable_day(tenant: Document, now: datetime) -> date:
    """The last day, in the hospital's time, that the tenant's booking horizon reaches."""
    today = now.astimezone(ZoneInfo(tenant["time_zone"])).date()
    return today + timedelta(days=booking_horizon_days(tenant))


def booking_horizon(tenant: Document, now: datetime) -> datetime:
    """The first moment past the tenant's booking horizon (UTC): the hospital's midnight that
    ends its last bookable day, so that day is bookable whole."""
    after = last_bookable_day(tenant, now) + timedelta(days=1)
    return datetime.combine(after, time(0), tzinfo=ZoneInfo(tenant["time_zone"])).astimezone(UTC)


def check_within_horizon(start: datetime, tenant: Document, now: datetime) -> None:
    """Refuse a slot past the booking horizon: its journey would outlive its execution."""
    if start >= booking_horizon(tenant, now):
        message = (
            f"is beyond the booking horizon: this hospital books up to "
            f"{booking_horizon_days(tenant)} days ahead (until "
            f"{last_bookable_day(tenant, now).isoformat()})"
        )
        raise ValidationFailed(
            f"$.slot.start: {message}",
            code=BEYOND_BOOKING_HORIZON,
            details=[FieldError("$.slot.start", message)],
        )
