"""Fifty patients book the same capacity-1 slot at once, over HTTP against the threaded local
server: exactly one gets it, the rest get 409, and the slot holds one appointment."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import Api, ClinicCtx, free_slots, payload, slot_ref

BOOKERS = 50


def post(url: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_fifty_concurrent_bookings_of_one_place(
    runtime: Any, api: Api, app_url: str, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic(capacity=1)
    tokens = [
        runtime.token("patient", clinic.tenant.id, make_patient(clinic.tenant)["id"])
        for _ in range(BOOKERS)
    ]
    slot = free_slots(api, clinic.tenant.staff)[0]
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(BOOKERS)

    def book(token: str) -> None:
        start.wait()
        outcome = post(
            f"{app_url}/appointments", token, {"slot": slot_ref(slot), "type": "first_visit"}
        )
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=book, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * (BOOKERS - 1)
    assert {body["error"]["code"] for status, body in results if status == 409} == {"slot_full"}
    day = slot["local_start"][:10]
    booked = payload(
        api.call("GET", f"/departments/cardiology/appointments?date={day}", clinic.tenant.staff)
    )["items"]
    assert len([a for a in booked if a["start"] == slot["start"]]) == 1
    assert slot["start"] not in [s["start"] for s in free_slots(api, clinic.tenant.staff)]
