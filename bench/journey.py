"""What one appointment journey costs on the happy path (booked, confirmed, reminded 7 days,
1 day and 2 hours before, checked in, fulfilled, event published), measured on the emulator:
state transitions, Lambda invocations, DynamoDB reads and writes, API requests; and the cost
of 1,000 such appointments at AWS's published on-demand prices (us-east-1), messages excluded.
Reads are told apart by who made them: the journey's own tasks (the figure the issue's target
of 20 is about), the path's API requests, the visit event's consumers; the audit chain's reads
are counted beside (an audit entry per journey action reads its chain's head first).
Also the SMS segments of every default SMS template."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# AWS published on-demand prices, us-east-1, as listed on the services' pricing pages in 2025.
PRICES = {
    "step_functions_per_transition": 0.025 / 1000,  # Standard workflows
    "lambda_per_request": 0.20 / 1_000_000,
    "lambda_per_gb_second": 0.0000166667,  # x86
    "dynamodb_per_write_unit": 0.625 / 1_000_000,  # on-demand write request unit
    "dynamodb_per_read_unit": 0.125 / 1_000_000,  # on-demand read request unit
    "api_gateway_per_request": 3.50 / 1_000_000,  # REST API, first 333 million
}
LAMBDA_GB_SECONDS_EACH = 0.25 * 0.1  # 256 MB for ~100 ms, a generous estimate per invocation

# The messages' own prices are chalicelib/domain/message_prices.py's (analytics read them too).


def cost_usd(
    *, transitions: int, lambdas: int, api_requests: int, reads: int, write_units: int
) -> float:
    """What that much work costs at PRICES: Step Functions transitions, Lambda invocations
    (tasks, and the API function behind each API Gateway request), DynamoDB units. Reads are
    counted as strongly consistent items under 4 KB (1 unit each)."""
    per_invocation = (
        PRICES["lambda_per_request"] + LAMBDA_GB_SECONDS_EACH * PRICES["lambda_per_gb_second"]
    )
    return (
        transitions * PRICES["step_functions_per_transition"]
        + lambdas * per_invocation
        + api_requests * (PRICES["api_gateway_per_request"] + per_invocation)
        + write_units * PRICES["dynamodb_per_write_unit"]
        + reads * PRICES["dynamodb_per_read_unit"]
    )


def write_units(counts: dict[str, int]) -> int:
    """A transaction's item costs two write units, any other write one."""
    return counts.get("dynamodb_writes", 0) + 2 * counts.get("dynamodb_transaction_items", 0)


def json_call(http: Any) -> Callable[..., Any]:
    """A caller of the API through the Chalice test client that insists on success."""

    def call(method: str, path: str, token: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        raw = json.dumps(body).encode() if body is not None else b""
        response = http.request(method, path, headers=headers, body=raw)
        assert response.status_code in (200, 201), response.body
        return json.loads(response.body)

    return call


def tenant_body(tenant: str) -> dict[str, Any]:
    return {
        "id": tenant,
        "name": "Bench Hospital",
        "time_zone": "Asia/Shanghai",
        "default_language": "zh-CN",
        "country": "CN",
        "sender": {"sms_sender_id": "Bench", "email_from": "care@bench.example.com"},
        "departments": [{"id": "cardiology", "name": "心内科"}],
    }


def open_schedule(call: Any, admin: str, capacity: int) -> None:
    """Dr Li's cardiology schedule, 08:00 to 17:00 every day, 30-minute slots ("cardio")."""
    call("PUT", "/clinicians/dr-li", admin, {"name": "Dr Li", "department": "cardiology"})
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    call(
        "PUT",
        "/schedules/cardio",
        admin,
        {
            "department": "cardiology",
            "clinician": "dr-li",
            "location": "Building 2",
            "weekly_hours": {d: [{"start": "08:00", "end": "17:00"}] for d in days},
            "slot_minutes": 30,
            "capacity": capacity,
        },
    )


def sms_segments() -> dict[str, Any]:
    from chalicelib.domain.messages import DEFAULT_TEMPLATES, render, sample_fields

    figures: dict[str, Any] = {}
    for kind, channel, language in sorted(DEFAULT_TEMPLATES):
        if channel == "sms":
            rendered = render(kind, "sms", language, sample_fields(language))
            figures[f"{kind}.{language}"] = {
                "segments": rendered.segments,
                "encoding": rendered.encoding,
                "characters": len(rendered.body),
            }
    return figures


def play_path(
    runtime: Any, http: Any, tenant: str, patients: int
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The measured path for `patients` patients of one hospital, booked into the same slot
    (so their steps fall in the same minutes, as a busy hospital's do): booked, confirmed in
    the app, reminded 7 days, 1 day and 2 hours before, checked in, fulfilled, the visit event
    published. What the emulator was asked to do meanwhile, and the appointments."""
    from chalicelib import clock
    from local.meter import meter

    call = json_call(http)
    call("POST", "/tenants", runtime.token("operator"), tenant_body(tenant))
    admin, staff = runtime.token("admin", tenant), runtime.token("staff", tenant)
    open_schedule(call, admin, capacity=patients)
    tokens = []
    for n in range(patients):
        patient = call(
            "POST",
            "/patients",
            staff,
            {
                "name": {"given": "Wei"},
                "phone": f"1380013{n:04d}",
                "preferred_channels": ["sms"],
            },
        )
        tokens.append(runtime.token("patient", tenant, patient["id"]))
    zone = ZoneInfo("Asia/Shanghai")
    day = (clock.now().astimezone(zone) + timedelta(days=10)).date()
    start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=zone)
    slot = {
        "schedule_id": "cardio",
        "start": start.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

    runtime.settle()
    meter.reset()
    booked = [
        call("POST", "/appointments", token, {"slot": slot, "type": "follow_up"})
        for token in tokens
    ]
    runtime.settle()
    for token, appointment in zip(tokens, booked, strict=True):
        call("POST", f"/appointments/{appointment['id']}/confirm", token)
    for before in (timedelta(days=7), timedelta(days=1), timedelta(hours=2)):
        runtime.clock.set(start - before)
        runtime.settle()
    for appointment in booked:
        call("POST", f"/appointments/{appointment['id']}/check-in", staff)
        call("POST", f"/appointments/{appointment['id']}/fulfil", staff)
    runtime.clock.set(start + timedelta(hours=2, minutes=1))
    runtime.settle()
    return meter.snapshot(), booked


def task_reads(counts: dict[str, int], *, audit: bool = True) -> int:
    """Reads made by the appointment journey's own functions (with or without the audit
    chain's heads, which the issue's target reports beside the journey's own)."""
    reads = sum(v for k, v in counts.items() if k.startswith("dynamodb_reads@appointment_journey"))
    if audit:
        return reads
    return reads - sum(
        v for k, v in counts.items() if k.startswith("dynamodb_reads:audit@appointment_journey")
    )


def busy_hospital(runtime: Any, http: Any, patients: int = 20) -> dict[str, Any]:
    """The same path for many patients at once: the warm container's brief cache of the
    tenant's settings and wording then serves most steps, as it would at a hospital."""
    counts, _ = play_path(runtime, http, "bench-busy", patients)
    return {
        "journey_busy_hospital_patients": patients,
        "journey_busy_task_dynamodb_reads_per_journey": round(
            task_reads(counts, audit=False) / patients, 2
        ),
        "journey_busy_task_dynamodb_reads_with_audit_per_journey": round(
            task_reads(counts) / patients, 2
        ),
        "journey_busy_audit_dynamodb_reads_per_journey": round(
            counts.get("dynamodb_reads:audit", 0) / patients, 2
        ),
    }


def happy_path(runtime: Any, http: Any) -> dict[str, Any]:
    from chalicelib.adapters.executions import execution_arn
    from chalicelib.domain.appointment_journey import execution_name
    from chalicelib.settings import get_settings
    from local.fault_journeys import billed_transitions, execution_history

    tenant = "bench-journey"
    counts, (booked,) = play_path(runtime, http, tenant, 1)

    sfn = runtime.client("stepfunctions")
    arn = execution_arn(
        get_settings().appointment_journey_arn,
        execution_name(tenant, booked["id"], booked["journey_version"]),
    )
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    transitions = billed_transitions(execution_history(runtime, arn))
    api_requests = 4  # book, confirm, check in, fulfil
    writes = write_units(counts)
    reads = counts.get("dynamodb_reads", 0)
    lambdas = counts.get("lambda_invocations", 0)
    per_appointment = cost_usd(
        transitions=transitions,
        lambdas=lambdas,
        api_requests=api_requests,
        reads=reads,
        write_units=writes,
    )
    by_function = {
        key.split("@", 1)[1]: value
        for key, value in counts.items()
        if key.startswith("dynamodb_reads@")
    }
    # The journey's own tasks (the state machine's functions), apart from the API requests of the
    # path (run here outside any function: "emulator") and the visit event's consumers.
    return {
        "journey_state_transitions": transitions,
        "journey_state_transitions_target": 18,
        # The journey's own reads (target 20); its audit entries' chain heads beside them.
        "journey_task_dynamodb_reads": task_reads(counts, audit=False),
        "journey_task_dynamodb_reads_target": 20,
        "journey_task_dynamodb_reads_with_audit": task_reads(counts),
        "journey_dynamodb_reads_by_function": by_function,
        "journey_audit_dynamodb_reads": counts.get("dynamodb_reads:audit", 0),
        # Beside the journey: what its audit trail costs (entries with their subject pointers,
        # written in transactions at two write units an item, and the chain heads read first).
        "journey_audit_write_units": 2 * counts.get("dynamodb_transaction_items:audit", 0),
        "journey_audit_cost_per_1000_appointments_usd": round(
            1000
            * cost_usd(
                transitions=0,
                lambdas=0,
                api_requests=0,
                reads=counts.get("dynamodb_reads:audit", 0),
                write_units=2 * counts.get("dynamodb_transaction_items:audit", 0),
            ),
            4,
        ),
        "journey_lambda_invocations": lambdas,
        "journey_api_requests": api_requests,
        "journey_dynamodb_reads": reads,
        "journey_dynamodb_writes": counts.get("dynamodb_writes", 0),
        "journey_dynamodb_transactions": counts.get("dynamodb_transactions", 0),
        "journey_dynamodb_transaction_items": counts.get("dynamodb_transaction_items", 0),
        "journey_dynamodb_write_units": writes,
        "journey_dynamodb_operations": {
            k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("dynamodb:")
        },
        "cost_per_1000_appointments_usd": round(per_appointment * 1000, 4),
        "cost_prices_usd": PRICES,
        "sms_segments_per_template": sms_segments(),
    }
