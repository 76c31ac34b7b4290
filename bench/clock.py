"""How fast the virtual clock plays a patient-year: one chronic patient with a booking, a
surgery's care plan and a 90-day recall rule, never answering, on an emptied runtime with the
daily recall sweep running on the clock; a year in 365 one-day moves, and in one move."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.journey import json_call, open_schedule, tenant_body

START = datetime(2027, 1, 4, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Shanghai
PLAN = {
    "name": "Recovery",
    "trigger": {"event": "surgery", "departments": ["cardiology"]},
    "check_ins": [{"day": d, "questionnaire": "post-operative"} for d in (1, 3, 7, 14)],
    "recheck": {"day": 30, "book_within_days": 7, "appointment_type": "follow_up"},
}
RULE = {
    "name": "Review every 90 days",
    "match": {"condition": "diabetes"},
    "after_days": 90,
    "book": {"department": "cardiology", "appointment_type": "follow_up"},
}


def _one_patient(runtime: Any, http: Any) -> None:
    call = json_call(http)
    tenant = "bench-year"
    body = tenant_body(tenant) | {"journey": {"enabled": True}}
    call("POST", "/tenants", runtime.token("operator"), body)
    admin, staff = runtime.token("admin", tenant), runtime.token("staff", tenant)
    open_schedule(call, admin, capacity=5)
    call("PUT", "/care-plans/recovery", admin, PLAN)
    call("PUT", "/recall-rules/review", admin, RULE)
    patient = {
        "name": {"given": "Bench"},
        "phone": "13800138000",
        "medical": {"conditions": ["diabetes"]},
    }
    patient_id = call("POST", "/patients", staff, patient)["id"]
    token = runtime.token("patient", tenant, patient_id)
    slot = {"schedule_id": "cardio", "start": "2027-01-18T02:00:00Z"}
    call("POST", "/appointments", token, {"slot": slot, "type": "follow_up"})
    event = {"type": "surgery", "department": "cardiology", "occurred_at": "2027-01-04T01:00:00Z"}
    call("POST", f"/patients/{patient_id}/care-events", staff, event)


def _play(runtime: Any, http: Any, steps: list[timedelta]) -> tuple[float, list[Any]]:
    import app
    from local.schedules import ScheduleRunner

    runtime.reset(START)
    runner = ScheduleRunner(app, runtime.clock, only=("recall_sweep",)).start()
    try:
        _one_patient(runtime, http)
        began = time.perf_counter()
        for step in steps:
            runtime.clock.advance(step)
        elapsed = time.perf_counter() - began
    finally:
        runner.stop()
    return elapsed, runtime.outbox.transcript()


def patient_year(runtime: Any, http: Any) -> dict[str, Any]:
    daily, sent = _play(runtime, http, [timedelta(days=1)] * 365)
    once, sent_once = _play(runtime, http, [timedelta(days=365)])
    return {
        "clock_patient_year_daily_moves_s": round(daily, 2),
        "clock_patient_year_one_move_s": round(once, 2),
        "clock_patient_year_messages": len(sent),
        "clock_patient_year_same_outbox": sent == sent_once,
        "clock_patient_year_target_s": 10,
    }
