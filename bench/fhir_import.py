"""What importing from a hospital's system costs on the emulator: a FHIR transaction of patients
and their past visits (first time, and the same bundle again), and a bulk NDJSON import of
patients read from S3 by the import machine. Wall times are the emulator's (moto in-process),
so only their ratios and the DynamoDB calls per record carry over to AWS."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

TRANSACTION_PATIENTS = 50  # each with one past fulfilled visit: 100 entries
BULK_PATIENTS = 1000


def _patient(tenant: str, n: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": f"urn:careloop:{tenant}:mrn", "value": f"B-{n:06d}"}],
        "name": [{"family": "Bench", "given": [f"Patient{n}"]}],
        "telecom": [{"system": "phone", "value": f"+86139{n:08d}", "use": "mobile"}],
        "birthDate": "1970-01-01",
    }


def _visit(tenant: str, n: int, start: str, end: str) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "identifier": [{"system": "urn:bench:appointment", "value": f"V-{n:06d}"}],
        "status": "fulfilled",
        "serviceType": [{"text": "cardiology"}],
        "start": start,
        "end": end,
        "participant": [
            {
                "actor": {"reference": f"Patient?identifier=urn:careloop:{tenant}:mrn|B-{n:06d}"},
                "status": "accepted",
            }
        ],
    }


def _calls(counts: dict[str, int]) -> int:
    """DynamoDB requests of every kind (a transaction is one)."""
    return sum(v for k, v in counts.items() if k.startswith("dynamodb:"))


def transaction_figures(runtime: Any, http: Any) -> dict[str, Any]:
    from bench.journey import json_call, tenant_body
    from chalicelib import clock
    from chalicelib.domain.common import utc_iso
    from local.meter import meter

    call = json_call(http)
    tenant = "bench-import"
    call("POST", "/tenants", runtime.token("operator"), tenant_body(tenant))
    admin = runtime.token("admin", tenant)
    visit = clock.now() - timedelta(days=400)
    start, end = utc_iso(visit), utc_iso(visit + timedelta(minutes=15))
    entries = [
        {"resource": resource, "request": {"method": "PUT", "url": resource["resourceType"]}}
        for n in range(TRANSACTION_PATIENTS)
        for resource in (_patient(tenant, n), _visit(tenant, n, start, end))
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    figures: dict[str, Any] = {"fhir_transaction_entries": len(entries)}
    for label in ("first", "again"):
        meter.reset()
        started = time.perf_counter()
        call("POST", "/fhir", admin, bundle)
        elapsed = (time.perf_counter() - started) * 1000
        counts = meter.snapshot()
        figures[f"fhir_transaction_{label}_ms"] = round(elapsed)
        figures[f"fhir_transaction_{label}_ms_per_entry"] = round(elapsed / len(entries), 2)
        figures[f"fhir_transaction_{label}_dynamodb_calls_per_entry"] = round(
            _calls(counts) / len(entries), 2
        )
    return figures


def bulk_figures(runtime: Any, http: Any) -> dict[str, Any]:
    from chalicelib.settings import get_settings
    from local.meter import meter

    tenant = "bench-import"
    admin = runtime.token("admin", tenant)
    lines = "\n".join(json.dumps(_patient(tenant, 10_000 + n)) for n in range(BULK_PATIENTS))
    runtime.client("s3").put_object(
        Bucket=get_settings().import_bucket,
        Key=f"{tenant}/bench/patients.ndjson",
        Body=(lines + "\n").encode(),
    )
    headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}
    body = json.dumps({"files": ["bench/patients.ndjson"]}).encode()
    meter.reset()
    started = time.perf_counter()
    response = http.request("POST", "/fhir/imports", headers=headers, body=body)
    assert response.status_code == 202, response.body
    runtime.settle()
    elapsed = time.perf_counter() - started
    job = json.loads(response.body)
    read = http.request("GET", f"/fhir/imports/{job['id']}", headers=headers)
    done = json.loads(read.body)
    assert done["status"] == "completed", done
    counts = meter.snapshot()
    return {
        "fhir_bulk_lines": BULK_PATIENTS,
        "fhir_bulk_seconds": round(elapsed, 2),
        "fhir_bulk_lines_per_second": round(BULK_PATIENTS / elapsed),
        "fhir_bulk_created": done["progress"]["created"],
        "fhir_bulk_lambda_invocations": counts.get("lambda_invocations", 0),
        "fhir_bulk_dynamodb_calls_per_line": round(_calls(counts) / BULK_PATIENTS, 2),
    }


def import_section(runtime: Any, http: Any) -> dict[str, Any]:
    return {**transaction_figures(runtime, http), **bulk_figures(runtime, http)}
