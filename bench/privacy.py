"""What privacy costs: sealing and opening a profile's PHI fields, a keyed-hash look-up, and the
audit entry every patient-data request and journey task writes (its DynamoDB calls, and the
time it adds to a warm GET /patients/{id}, measured with it and without it on the emulator)."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

SAMPLES = 2000
REQUESTS = 100

PROFILE: dict[str, Any] = {
    "id": "p-0123456789abcdef",
    "name": {"given": "Wei", "family": "Zhang"},
    "birth_date": "1961-04-12",
    "sex": "male",
    "phone": "+8613800138000",
    "email": "zhang.wei@example.com",
    "medical": {"conditions": ["diabetes", "hypertension"], "allergies": ["penicillin"]},
    "external_ids": {"mrn": "MRN-0012345"},
    "language": "zh-CN",
    "time_zone": "Asia/Shanghai",
    "preferred_channels": ["sms"],
    "consent": {"sms": {"granted": True, "at": "2026-01-01T00:00:00Z"}},
}


class _Keys:
    def __init__(self) -> None:
        from chalicelib.services.keyring import derive

        self.keys = derive(os.urandom(32), "bench")

    def keys_for(self, tenant_id: str) -> Any:
        return self.keys


def _micros(run: Any, samples: int = SAMPLES) -> float:
    started = time.perf_counter()
    for _ in range(samples):
        run()
    return round((time.perf_counter() - started) / samples * 1e6, 1)


def crypto_costs() -> dict[str, Any]:
    from chalicelib.domain.patients import SEALED_FIELDS
    from chalicelib.store import sealing

    installed = sealing._source
    sealing.use_keys(_Keys())
    try:
        sealed = sealing.seal("patient", "bench", PROFILE["id"], PROFILE, SEALED_FIELDS)
        return {
            "seal_profile_us": _micros(
                lambda: sealing.seal("patient", "bench", PROFILE["id"], PROFILE, SEALED_FIELDS)
            ),
            "unseal_profile_us": _micros(
                lambda: sealing.unseal("patient", "bench", PROFILE["id"], sealed)
            ),
            "lookup_hash_us": _micros(
                lambda: sealing.lookup_hash("bench", "phone", "+8613800138000")
            ),
            "sealed_profile_bytes": len(str(sealed["sealed"])),
        }
    finally:
        sealing.use_keys(installed)


def request_overhead(runtime: Any, http: Any) -> dict[str, Any]:
    """A warm GET /patients/{id}, median of REQUESTS, with its audit entry and without (the
    entry's write replaced by nothing): what the trail adds to a read."""
    from bench.journey import json_call, tenant_body
    from chalicelib.services.registry import services
    from local.meter import meter

    call = json_call(http)
    tenant = "bench-privacy"
    call("POST", "/tenants", runtime.token("operator"), tenant_body(tenant))
    staff = runtime.token("staff", tenant)
    patient = call("POST", "/patients", staff, {"name": {"given": "Wei"}, "phone": "13800138000"})
    path = f"/patients/{patient['id']}"

    def timed() -> float:
        started = time.perf_counter()
        call("GET", path, staff)
        return (time.perf_counter() - started) * 1000

    for _ in range(10):
        timed()
    meter.reset()
    call("GET", path, staff)
    one_read = meter.snapshot()
    audited = [timed() for _ in range(REQUESTS)]
    audit = services().audit
    original = audit.record
    audit.record = lambda *args, **kwargs: None  # type: ignore[method-assign,assignment]
    try:
        meter.reset()
        call("GET", path, staff)
        unaudited_read = meter.snapshot()
        plain = [timed() for _ in range(REQUESTS)]
    finally:
        audit.record = original  # type: ignore[method-assign]
    return {
        "get_patient_ms_with_audit": round(statistics.median(audited), 2),
        "get_patient_ms_without_audit": round(statistics.median(plain), 2),
        "audit_dynamodb_calls_per_read": {
            key: one_read.get(key, 0) - unaudited_read.get(key, 0)
            for key in sorted(set(one_read) | set(unaudited_read))
            if key.startswith("dynamodb") and one_read.get(key, 0) != unaudited_read.get(key, 0)
        },
    }


def journey_audit(runtime: Any, tenant: str) -> dict[str, Any]:
    """How many audit entries (and patient pointers) a tenant's chains hold: after the happy
    path's journey, what its auditing wrote."""
    from chalicelib import clock
    from chalicelib.domain.audit import CHAIN_SHARDS
    from chalicelib.settings import get_settings

    dynamodb = runtime.client("dynamodb")
    entries = pointers = 0
    day = clock.now().date()
    days = {day.isoformat()}
    for item_day in range(-12, 2):
        days.add((day.fromordinal(day.toordinal() + item_day)).isoformat())
    chains = [f"{one}#{shard}" for one in sorted(days) for shard in range(CHAIN_SHARDS)]
    for chain in chains:
        answer = dynamodb.query(
            TableName=get_settings().table_name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"T#{tenant}#AUDIT#{chain}"}},
            ProjectionExpression="#d",
            ExpressionAttributeNames={"#d": "doc"},
        )
        for item in answer["Items"]:
            entries += 1
            pointers += len(item["doc"]["M"]["subjects"]["L"])
    return {"journey_audit_entries": entries, "journey_audit_subject_pointers": pointers}


def privacy_section(runtime: Any, http: Any) -> dict[str, Any]:
    return {**crypto_costs(), **request_overhead(runtime, http)}
