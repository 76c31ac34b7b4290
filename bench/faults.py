"""`make bench`'s faults section: the fault tier's appointment journeys (local/fault_journeys.py,
the same booking, clock moves and counting as tests/faults) played once without faults and once
per fault profile, each in its own clinic. For each: journeys, lost, duplicates, FAILED, staff
tasks, and what the retries add over the fault-free run: state transitions, Lambda
invocations, DynamoDB units and API requests, priced like the happy path (bench/journey.py).

BENCH_FAULT_JOURNEYS journeys per profile (default 10, half the fault tier's 20, to keep the
section to a few minutes on a laptop; the seeds are the fault tier's)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.journey import cost_usd, json_call, open_schedule, tenant_body, write_units

JOURNEYS = int(os.environ.get("BENCH_FAULT_JOURNEYS", "10"))


def _clinic(runtime: Any, http: Any, tenant: str, journeys: int, tag: int) -> Any:
    call = json_call(http)
    body = tenant_body(tenant) | {"journey": {"enabled": True}}
    call("POST", "/tenants", runtime.token("operator"), body)
    admin, staff = runtime.token("admin", tenant), runtime.token("staff", tenant)
    open_schedule(call, admin, capacity=journeys)
    patients = [
        call(
            "POST",
            "/patients",
            staff,
            {
                "name": {"given": "Wei"},
                "phone": f"139{tag:02d}{n:06d}",
                "email": f"p{tag}-{n}@patients.example.com",
                "preferred_channels": ["sms"],
            },
        )
        for n in range(journeys)
    ]
    return staff, patients


def faults_section(runtime: Any, http: Any, journeys: int = JOURNEYS) -> dict[str, Any]:
    from chalicelib import clock
    from local.api_client import Api
    from local.fault_journeys import NO_FAULTS, PROFILES, play, tally
    from local.meter import meter

    api = Api(http)
    zone = ZoneInfo("Asia/Shanghai")
    rows: dict[str, dict[str, Any]] = {}
    for tag, profile in enumerate([NO_FAULTS, *PROFILES]):
        tenant = f"bench-faults-{tag}"
        staff, patients = _clinic(runtime, http, tenant, journeys, tag)
        day = (clock.now().astimezone(zone) + timedelta(days=8)).date()
        start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=zone)
        runtime.settle()
        meter.reset()
        run = play(
            runtime,
            api,
            profile,
            tenant_id=tenant,
            staff=staff,
            schedule_id="cardio",
            patients=patients,
            start=start,
        )
        counts = meter.snapshot()  # before the count's own reads
        counted = tally(runtime, api, run)
        work = {
            "state_transitions": counted.state_transitions,
            "lambda_invocations": counts.get("lambda_invocations", 0),
            "dynamodb_reads": counts.get("dynamodb_reads", 0),
            "dynamodb_write_units": write_units(counts),
            "api_requests": run.api_requests,
        }
        cost = cost_usd(
            transitions=work["state_transitions"],
            lambdas=work["lambda_invocations"],
            api_requests=work["api_requests"],
            reads=work["dynamodb_reads"],
            write_units=work["dynamodb_write_units"],
        )
        rows[profile.name] = {
            "journeys": counted.journeys,
            "lost": len(counted.lost),
            "duplicates": len(counted.duplicates),
            "failed": len(counted.failed),
            "failed_unseen": len(counted.failed_unseen),
            "still_booked": len(counted.still_booked),
            "stuck_sending": len(counted.stuck_sending),
            "unknown_without_task": len(counted.unknown_without_task),
            "staff_tasks": sum(counted.staff_tasks.values()),
            "staff_tasks_by_kind": dict(sorted(counted.staff_tasks.items())),
            "faults_injected": dict(sorted(run.injected.items())),
            **work,
            "cost_per_1000_journeys_usd": round(cost * 1000 / journeys, 4),
        }
    base = rows[NO_FAULTS.name]
    for row in rows.values():
        for key in ("state_transitions", "lambda_invocations", "dynamodb_write_units"):
            row[f"extra_{key}_per_journey"] = round((row[key] - base[key]) / journeys, 2)
        row["extra_cost_per_1000_journeys_usd"] = round(
            row["cost_per_1000_journeys_usd"] - base["cost_per_1000_journeys_usd"], 4
        )
    return {"journeys_per_profile": journeys, "profiles": rows}


def print_section(section: dict[str, Any]) -> None:
    print(
        f"appointment journeys under seeded faults ({section['journeys_per_profile']} per profile;"
        " extra = over the fault-free run, per journey):"
    )
    header = (
        f"  {'profile':<17} {'lost':>4} {'dup':>4} {'FAILED':>6} {'tasks':>5} "
        f"{'transitions':>11} {'+trans':>7} {'+lambda':>7} {'$/1000':>8} {'+$/1000':>8}"
    )
    print(header)
    for name, row in section["profiles"].items():
        print(
            f"  {name:<17} {row['lost']:>4} {row['duplicates']:>4} {row['failed']:>6} "
            f"{row['staff_tasks']:>5} {row['state_transitions']:>11} "
            f"{row['extra_state_transitions_per_journey']:>7} "
            f"{row['extra_lambda_invocations_per_journey']:>7} "
            f"{row['cost_per_1000_journeys_usd']:>8} {row['extra_cost_per_1000_journeys_usd']:>8}"
        )
