"""What one aftercare journey costs (a surgery; check-ins on days 1 and 7 answered ok, education
on day 2, a re-check invitation on day 10 answered by a booking) and what the daily recall sweep
costs for 1,000 due patients, measured on the emulator."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.journey import cost_usd, json_call, open_schedule, tenant_body, write_units
from local.fault_journeys import billed_transitions, execution_history

PLAN = {
    "name": "Bench recovery",
    "trigger": {"event": "surgery"},
    "check_ins": [
        {"day": 1, "questionnaire": "post-operative"},
        {"day": 7, "questionnaire": "post-operative"},
    ],
    "education": [{"day": 2, "title": {"en": "Wound care"}, "url": "https://example.org/w"}],
    "recheck": {"day": 10, "book_within_days": 5, "appointment_type": "follow_up"},
}
OK = {"pain": 2, "wound": "healing", "fever": False, "mobility": "normal"}


def aftercare_path(runtime: Any, http: Any) -> dict[str, Any]:
    from chalicelib import clock
    from chalicelib.settings import get_settings
    from local.meter import meter

    call = json_call(http)

    tenant = "bench-aftercare"
    staff, token, patient = _clinic(runtime, call, tenant)
    runtime.settle()
    meter.reset()
    surgery = clock.now()
    event = call(
        "POST",
        f"/patients/{patient['id']}/care-events",
        staff,
        {"type": "surgery", "department": "cardiology", "occurred_at": clock.iso(surgery)},
    )
    runtime.settle()
    api_requests = 1
    for day in (1, 7):
        runtime.clock.set(surgery + timedelta(days=day, hours=2))
        runtime.settle()
        [text] = [m for m in runtime.outbox.messages(channel="sms") if "/q/" in m.body][-1:]
        response_id = text.body.rsplit("/q/", 1)[1].split()[0]
        call("PATCH", f"/me/questionnaire-responses/{response_id}", token, {"answers": OK})
        call("POST", f"/me/questionnaire-responses/{response_id}/submit", token)
        runtime.settle()
        api_requests += 2
    runtime.clock.set(surgery + timedelta(days=10, hours=2))
    runtime.settle()
    zone = ZoneInfo("Asia/Shanghai")
    visit_day = (clock.now().astimezone(zone) + timedelta(days=2)).date()
    start = datetime(visit_day.year, visit_day.month, visit_day.day, 10, 0, tzinfo=zone)
    call(
        "POST",
        "/appointments",
        token,
        {"slot": {"schedule_id": "cardio", "start": clock.iso(start)}, "type": "follow_up"},
    )
    api_requests += 1
    runtime.clock.set(surgery + timedelta(days=16))
    runtime.settle()
    counts = meter.snapshot()

    sfn = runtime.client("stepfunctions")
    machine = get_settings().aftercare_journey_arn.replace(":stateMachine:", ":execution:")
    arn = f"{machine}:{tenant}-{event['journeys'][0]}"
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    transitions = billed_transitions(execution_history(runtime, arn))
    # The booking's own writes and its appointment journey are the appointment's cost, but
    # they are metered here too: the figure is an upper bound for the aftercare journey.
    writes = write_units(counts)
    reads = counts.get("dynamodb_reads", 0)
    lambdas = counts.get("lambda_invocations", 0)
    per_journey = cost_usd(
        transitions=transitions,
        lambdas=lambdas,
        api_requests=api_requests,
        reads=reads,
        write_units=writes,
    )
    return {
        "aftercare_state_transitions": transitions,
        "aftercare_lambda_invocations": lambdas,
        "aftercare_api_requests": api_requests,
        "aftercare_dynamodb_reads": reads,
        "aftercare_dynamodb_write_units": writes,
        "aftercare_cost_per_1000_journeys_usd": round(per_journey * 1000, 4),
    }


def _clinic(runtime: Any, call: Any, tenant: str) -> tuple[str, str, Any]:
    """A tenant with the plan, a cardiology schedule and one patient."""
    call("POST", "/tenants", runtime.token("operator"), tenant_body(tenant))
    admin, staff = runtime.token("admin", tenant), runtime.token("staff", tenant)
    call("PUT", "/care-plans/recovery", admin, PLAN)
    open_schedule(call, admin, capacity=5)
    patient = call("POST", "/patients", staff, {"name": {"given": "Wei"}, "phone": "13800138001"})
    token = runtime.token("patient", tenant, patient["id"])
    return staff, token, patient


def recall_sweep(runtime: Any, due: int = 1000) -> dict[str, Any]:
    """Sweep one tenant with `due` recalls due today; journey starts are counted, not run (the
    figure is the sweep's own work: the index reads and the writes taking recalls out of it)."""
    from unittest.mock import patch

    from chalicelib import clock
    from chalicelib.adapters.executions import Executions
    from chalicelib.services.registry import services
    from chalicelib.store.care import RECALL, CareRepository
    from local.meter import meter

    tenant = "bench-recall"
    store = CareRepository()
    for number in range(due):
        store.put(
            tenant,
            RECALL,
            {
                "id": "bench-rule",
                "kind": "recall",
                "rule_id": "bench-rule",
                "patient_id": f"p-{number:016x}",
                "status": "scheduled",
                "due_date": clock.now().date().isoformat(),
                "updated_at": clock.iso(clock.now()),
            },
            None,
        )
    meter.reset()
    began = time.perf_counter()
    with patch.object(Executions, "start", lambda self, machine, name, payload: True):
        started = services().recall.sweep_tenant(tenant, clock.now().date())
    seconds = time.perf_counter() - began
    counts = meter.snapshot()
    return {
        "recall_sweep_due": due,
        "recall_sweep_started": started,
        "recall_sweep_seconds": round(seconds, 2),
        "recall_sweep_queries": counts.get("dynamodb:Query", 0),
        "recall_sweep_scans": counts.get("dynamodb:Scan", 0),
        "recall_sweep_writes": counts.get("dynamodb_writes", 0),
    }
