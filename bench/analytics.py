"""Issue 13: reading analytics costs the same whatever the hospital's size, and what keeping
them costs per change.

Two hospitals' years of appointments (1,000 and 100,000, spread over 12 months, 5 departments)
are counted with the same tallies the stream handler uses and written as counters (a rebuild's
write, so the bench does not wait for 100k journeys). Then a year by month is read through the
API, by department and whole: the items read and the time, for each size. Keeping them: the
items one booking's stream record writes (its counter items and its marker)."""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.journey import json_call, tenant_body

SIZES = (1_000, 100_000)
DEPARTMENTS = ("cardiology", "dermatology", "oncology", "pediatrics", "orthopedics")
YEAR_START = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
READS = 5


def _appointment(rng: random.Random, n: int) -> dict[str, Any]:
    booked = YEAR_START + timedelta(minutes=rng.randrange(365 * 24 * 60))
    start = booked + timedelta(days=rng.randrange(1, 40), hours=rng.randrange(8))
    status = rng.choice(("fulfilled", "fulfilled", "fulfilled", "noshow", "cancelled", "booked"))
    return {
        "id": f"a-{n}",
        "department": rng.choice(DEPARTMENTS),
        "clinician": f"dr-{rng.randrange(20)}",
        "type": rng.choice(("follow_up", "first_visit", "check_up")),
        "created_at": booked.isoformat(),
        "updated_at": start.isoformat(),
        "start": start.isoformat(),
        "status": status,
        "cancelled_by": "patient",
        "history": [{"at": booked.isoformat(), "change": "booked", "by": "patient"}],
    }


def _counted(tenant_id: str, size: int, zone: ZoneInfo) -> int:
    from chalicelib.domain import analytics
    from chalicelib.services.analytics import _partitions
    from chalicelib.store.analytics import AnalyticsRepository

    rng = random.Random(size)
    tally: analytics.Tally = Counter()
    for n in range(size):
        tally.update(analytics.appointment_tally(_appointment(rng, n), zone))
    totals = analytics.counter_moves(dict(tally))
    return AnalyticsRepository().replace(tenant_id, _partitions(), totals)


def _read_year(call: Any, admin: str, group_by: str) -> tuple[int, float]:
    """Items read (rows) and the median time of a year by month."""
    query = f"/analytics/appointments?from=2026-01-01&to=2026-12-31&group_by={group_by}"
    times, rows = [], 0
    for _ in range(READS):
        began = time.perf_counter()
        rows = len(call("GET", query, admin)["rows"])
        times.append((time.perf_counter() - began) * 1000)
    return rows, round(statistics.median(times), 1)


def items_written_per_booking() -> int:
    """A booking's stream record: its counter items (every grain and group) and its marker."""
    from chalicelib.domain import analytics

    booking = _appointment(random.Random(1), 0)
    booking["status"] = "booked"
    moved = analytics.change(Counter(), analytics.appointment_tally(booking, ZoneInfo("UTC")))
    return len(analytics.counter_moves(moved)) + 1


def analytics_section(runtime: Any, http: Any) -> dict[str, Any]:
    call = json_call(http)
    zone = ZoneInfo("Asia/Shanghai")
    figures: dict[str, Any] = {}
    for size in SIZES:
        tenant_id = f"bench-analytics-{size}"
        call("POST", "/tenants", runtime.token("operator"), tenant_body(tenant_id))
        written = _counted(tenant_id, size, zone)
        admin = runtime.token("admin", tenant_id)
        by_department, department_ms = _read_year(call, admin, "department")
        whole, whole_ms = _read_year(call, admin, "all")
        figures[f"analytics_{size}"] = {
            "appointments": size,
            "counter_items_written": written,
            "year_by_month_by_department_items_read": by_department,
            "year_by_month_by_department_ms": department_ms,
            "year_by_month_items_read": whole,
            "year_by_month_ms": whole_ms,
        }
    small, large = (figures[f"analytics_{size}"] for size in SIZES)
    figures["analytics_read_ratio_100k_vs_1k"] = round(
        large["year_by_month_by_department_items_read"]
        / small["year_by_month_by_department_items_read"],
        2,
    )
    figures["analytics_read_ratio_target"] = 1.2
    figures["analytics_items_written_per_booking"] = items_written_per_booking()
    return figures


def print_section(figures: dict[str, Any]) -> None:
    print("analytics: a year by month, by department (items read, median ms):")
    for size in SIZES:
        row = figures[f"analytics_{size}"]
        print(
            f"  {size:>7} appointments: {row['year_by_month_by_department_items_read']} items,"
            f" {row['year_by_month_by_department_ms']} ms (whole: {row['year_by_month_items_read']}"
            f" items, {row['year_by_month_ms']} ms)"
        )
    print(
        f"  ratio 100k/1k: {figures['analytics_read_ratio_100k_vs_1k']}"
        f" (target <= {figures['analytics_read_ratio_target']})"
    )
    written = figures["analytics_items_written_per_booking"]
    print(f"  items written per booking's stream record (counters and marker): {written}")


if __name__ == "__main__":
    from bench.__main__ import _start

    runtime, http = _start()
    try:
        section = analytics_section(runtime, http)
    finally:
        runtime.stop()
    print_section(section)
