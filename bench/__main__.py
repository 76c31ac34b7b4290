"""`make bench`: the API Lambda's cold start against the floor for this stack (and what the
tenant's IAM session adds to it).

Both are measured the same way against the same embedded AWS: a fresh Python process imports
the app and handles its first GET /patients/{id} (ours authenticated with a verified JWT),
median of several runs. Then the journeys' costs, and appointment journeys under seeded faults
(bench/faults.py). Results go to bench/results.json (an output, not committed).

`python -m bench faults` runs only the faults section and updates its part of results.json.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
RUNS = int(os.environ.get("BENCH_RUNS", "15"))
TARGET_RATIO = 1.5


def _run(which: str, patient_id: str, token: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.cold_start_child", which, patient_id, token],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if out.returncode != 0:
        raise SystemExit(f"{which} cold start failed:\n{out.stdout}\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _start() -> tuple[Any, Any]:
    from chalice.test import Client

    from local.runtime import quiet_logs, start
    from local.vclock import VirtualClock

    logging.disable(logging.WARNING)
    # The emulated functions run in this process: their metrics flushes (EMF lines on stdout)
    # would come between the figures. Powertools reads this at each flush.
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    quiet_logs()
    runtime = start(clock=VirtualClock())
    return runtime, Client(runtime.app, stage_name="local", project_dir=str(ROOT)).http


def faults_only() -> None:
    from bench.faults import faults_section, print_section

    runtime, http = _start()
    try:
        section = faults_section(runtime, http)
    finally:
        runtime.stop()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["faults"] = section
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_section(section)
    print(f"wrote {RESULTS.relative_to(ROOT)} (faults)")


def _journey_figures(runtime: Any, http: Any) -> dict[str, Any]:
    from bench.analytics import analytics_section
    from bench.care import aftercare_path, recall_sweep
    from bench.clock import patient_year
    from bench.faults import faults_section
    from bench.fhir_import import import_section
    from bench.journey import busy_hospital, happy_path
    from bench.privacy import journey_audit, privacy_section

    figures = happy_path(runtime, http)
    figures.update(journey_audit(runtime, "bench-journey"))
    figures.update(busy_hospital(runtime, http))
    figures["privacy"] = privacy_section(runtime, http)
    figures["fhir_import"] = import_section(runtime, http)
    figures.update(aftercare_path(runtime, http))
    figures.update(recall_sweep(runtime))
    figures["faults"] = faults_section(runtime, http)
    figures.update(analytics_section(runtime, http))
    figures.update(patient_year(runtime, http))  # last: it empties the runtime
    return figures


def main() -> None:
    from bench.journey import json_call, tenant_body

    runtime, http = _start()
    try:
        call = json_call(http)
        tenant = "bench-clinic"
        call("POST", "/tenants", runtime.token("operator"), tenant_body(tenant))
        staff = runtime.token("staff", tenant)
        patient = {"name": {"given": "Bench"}, "phone": "13800138000"}
        patient_id = call("POST", "/patients", staff, patient)["id"]

        env = {
            **os.environ,
            # A fresh process reaches the emulator as a cold Lambda reaches AWS: over the
            # network (this process calls its backends in-process, local/runtime.py).
            "AWS_ENDPOINT_URL": runtime.endpoint,
            "BENCH_TENANT": tenant,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "PYTHONDONTWRITEBYTECODE": "0",
        }
        # Warm the filesystem cache and .pyc files once for both, then alternate the runs.
        _run("careloop", patient_id, staff, env)
        _run("floor", patient_id, staff, env)
        ours: list[dict[str, float]] = []
        floor: list[dict[str, float]] = []
        # The same without the tenant's IAM session (its AssumeRole and STS client), to say
        # what the per-tenant credentials cost a cold start.
        unfenced: list[dict[str, float]] = []
        for _ in range(RUNS):
            ours.append(_run("careloop", patient_id, staff, env))
            floor.append(_run("floor", patient_id, staff, env))
            unfenced.append(
                _run("careloop", patient_id, staff, {**env, "TENANT_DATA_ROLE_ARN": ""})
            )
        journey_figures = _journey_figures(runtime, http)
    finally:
        runtime.stop()

    def median(runs: list[dict[str, float]], key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 1)

    results: dict[str, Any] = {
        "runs": RUNS,
        "cold_start_ms": median(ours, "total_ms"),
        "cold_start_import_ms": median(ours, "import_ms"),
        "cold_start_first_request_ms": median(ours, "first_request_ms"),
        "floor_cold_start_ms": median(floor, "total_ms"),
        "floor_import_ms": median(floor, "import_ms"),
        "floor_first_request_ms": median(floor, "first_request_ms"),
        "cold_start_without_tenant_session_ms": median(unfenced, "total_ms"),
    }
    results["tenant_session_cold_start_ms"] = round(
        results["cold_start_ms"] - results["cold_start_without_tenant_session_ms"], 1
    )
    results["cold_start_ratio"] = round(
        results["cold_start_ms"] / results["floor_cold_start_ms"], 2
    )
    results["cold_start_target_ratio"] = TARGET_RATIO
    results.update(journey_figures)
    from bench.alternative import comparison_section

    # Side by side on the same workload: this journey, and a scheduler polling every minute.
    results["alternative"] = comparison_section(results)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"cold start, median of {RUNS} fresh processes (import + first GET /patients/{{id}}):")
    rows = (
        ("careloop", ours, results["cold_start_ms"]),
        ("floor", floor, results["floor_cold_start_ms"]),
    )
    for label, runs, total in rows:
        parts = f"import {median(runs, 'import_ms')}, first request "
        print(f"  {label:<9} {total:7.1f} ms  ({parts}{median(runs, 'first_request_ms')})")
    print(
        f"  of which the tenant's IAM session (STS client and AssumeRole): "
        f"{results['tenant_session_cold_start_ms']} ms"
    )
    verdict = "within" if results["cold_start_ratio"] <= TARGET_RATIO else "OVER"
    print(f"  ratio     {results['cold_start_ratio']:.2f}x  ({verdict} the {TARGET_RATIO}x target)")
    report_journeys(results)
    from bench.analytics import print_section as print_analytics

    print_analytics(results)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def report_journeys(results: dict[str, Any]) -> None:
    from bench.alternative import print_comparison
    from bench.faults import print_section

    print("appointment journey, happy path (book, confirm, 3 reminders, check in, fulfil):")
    for key in (
        "journey_state_transitions",
        "journey_state_transitions_target",
        "journey_lambda_invocations",
        "journey_task_dynamodb_reads",
        "journey_task_dynamodb_reads_target",
        "journey_task_dynamodb_reads_with_audit",
        "journey_dynamodb_reads_by_function",
        "journey_audit_dynamodb_reads",
        "journey_audit_write_units",
        "journey_audit_cost_per_1000_appointments_usd",
        "journey_busy_hospital_patients",
        "journey_busy_task_dynamodb_reads_per_journey",
        "journey_busy_task_dynamodb_reads_with_audit_per_journey",
        "journey_busy_audit_dynamodb_reads_per_journey",
        "journey_dynamodb_reads",
        "journey_dynamodb_writes",
        "journey_dynamodb_transactions",
        "journey_dynamodb_write_units",
        "cost_per_1000_appointments_usd",
        "journey_audit_entries",
        "journey_audit_subject_pointers",
    ):
        print(f"  {key:<36} {results[key]}")
    print("privacy (field encryption, keyed look-ups, the audit entry of a read):")
    for key, value in results["privacy"].items():
        print(f"  {key:<36} {value}")
    print("imports from a hospital's system (FHIR transaction; bulk NDJSON from S3):")
    for key, value in results["fhir_import"].items():
        print(f"  {key:<44} {value}")
    print("aftercare journey (2 check-ins answered, education, re-check booked) and recall sweep:")
    for key, value in results.items():
        if key.startswith(("aftercare_", "recall_sweep_")):
            print(f"  {key:<36} {value}")
    print("SMS segments per default template:")
    for name, figure in results["sms_segments_per_template"].items():
        print(
            f"  {name:<24} {figure['segments']} ({figure['encoding']}, "
            f"{figure['characters']} characters)"
        )
    print_section(results["faults"])
    print_comparison(results["alternative"])
    print("virtual clock, one patient-year (booking, care plan, 90-day recall, never answering):")
    for key, value in results.items():
        if key.startswith("clock_"):
            print(f"  {key:<36} {value}")


if __name__ == "__main__":
    faults_only() if sys.argv[1:] == ["faults"] else main()
