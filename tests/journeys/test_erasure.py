"""Erasing a patient: every execution stops, every item that names them goes (a whole-table Scan,
test only, finds none), booked places come back, and what is kept names no one: the audit trail
(pseudonymous, still readable for the id), counters, and the number's STOP as a keyed hash that
still holds when the number comes back on a new record."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.settings import get_settings
from tests.conftest import Api, error_code, patient_body, payload
from tests.journeys.support import Journey, assert_stopped, local_moment, move_to
from tests.journeys.test_replies import reply

pytestmark = pytest.mark.journey


def _items(runtime: Any) -> list[dict[str, Any]]:
    dynamodb = runtime.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": get_settings().table_name}
    while True:
        page = dynamodb.scan(**kwargs)  # tests only: the product never scans
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _naming(items: list[dict[str, Any]], *values: str) -> list[str]:
    """The keys of the items that hold any of `values`, anywhere."""
    found = []
    for item in items:
        text = json.dumps(item, ensure_ascii=False, default=repr).lower()
        if any(v.lower() in text for v in values):
            found.append(f"{item['PK']['S']} | {item['SK']['S']}")
    return found


def test_an_erased_patient_leaves_nothing_that_names_them(
    runtime: Any, api: Api, journey: Any
) -> None:
    j: Journey = journey(birth_date="1957-09-30", medical={"conditions": ["diabetes"]})
    tenant = j.clinic.tenant
    patient_id = j.patient["id"]
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    assert len(j.sms()) == 1  # the confirmation invites a reply: an answer is awaited
    # A device, an app link invitation, a questionnaire answer, a staff read: more records.
    device = api.call("POST", "/me/devices", j.token, {"platform": "fcm", "token": "x" * 64})
    assert device.status_code in (200, 201), device.body
    invited = api.call(
        "POST", f"/patients/{patient_id}/link-invitations", tenant.staff, {"channel": "sms"}
    )
    assert invited.status_code == 201, invited.body
    answered = api.call(
        "POST",
        "/questionnaires/post-discharge/responses",
        j.token,
        {"answers": {"medication": "all", "new_symptoms": False, "breathless": False}},
    )
    assert answered.status_code == 201, answered.body
    # Points, a redemption's voucher and a complaint: the patient's ledger and more.
    assert api.call("PUT", "/loyalty/rules", tenant.admin, {"enabled": True}).status_code == 200
    reward = {"name": {"en": "Gift"}, "kind": "gift", "points": 10}
    assert api.call("PUT", "/rewards/gift", tenant.admin, reward).status_code == 200
    api.call("POST", "/rewards/gift/restock", tenant.admin, {"quantity": 1})
    given = api.call(
        "POST",
        f"/patients/{patient_id}/points/adjustments",
        tenant.staff,
        {"points": 50, "reason": "Points from the paper card"},
    )
    assert given.status_code == 201, given.body
    voucher = api.call("POST", "/me/redemptions", j.token, {"reward_id": "gift"})
    assert voucher.status_code == 201, voucher.body
    complaint = {"category": "waiting_time", "department": "cardiology", "text": "Slow"}
    assert api.call("POST", "/complaints", j.token, complaint).status_code == 201
    move_to(runtime, start - timedelta(days=7))  # the first reminder
    assert len(j.sms()) >= 2
    reply(runtime, api, f"+86{j.phone}", "STOP")  # the number's STOP outlives the record
    before = _items(runtime)
    assert _naming(before, patient_id), "the scenario made records of the patient"

    refused = api.call(
        "POST", f"/patients/{patient_id}/erasure", tenant.staff, {"reason": "asked to forget"}
    )
    assert refused.status_code == 403  # admins only
    short = api.call("POST", f"/patients/{patient_id}/erasure", tenant.admin, {"reason": "x"})
    assert short.status_code == 400
    reason = "The patient asked to be forgotten; identity checked at the desk"
    erased = api.call("POST", f"/patients/{patient_id}/erasure", tenant.admin, {"reason": reason})
    assert erased.status_code == 200, erased.body
    result = payload(erased)
    assert result["places_released"] == 1 and result["devices_removed"] == 1
    runtime.settle()
    # A container that never saw the patient reads the erased id: it stays unnamed.
    from chalicelib.services.registry import services

    services().audit._remembered.clear()
    assert api.call("GET", f"/patients/{patient_id}", tenant.staff).status_code == 404

    # Nothing names the patient: not their id, phone, email or name.
    phone, email = j.patient["phone"], j.patient["email"]
    names = (j.patient["name"]["given"] + " " + j.patient["name"]["family"],)
    leftovers = _naming(_items(runtime), patient_id, phone, phone[3:], email, *names)
    assert leftovers == []
    # Its journey stopped; the place it held is free again.
    assert_stopped(j.execution(appointment))
    counter = runtime.client("dynamodb").get_item(
        TableName=get_settings().table_name,
        Key={
            "PK": {"S": f"T#{tenant.id}#SLOTS#{appointment['department']}"},
            "SK": {"S": f"{appointment['start']}#{appointment['schedule_id']}"},
        },
    )
    assert counter["Item"]["booked"]["N"] == "0"

    # The record is gone; its audit trail is not, and says who erased it and why.
    assert api.call("GET", f"/patients/{patient_id}", tenant.admin).status_code == 404
    trail = payload(api.call("GET", f"/patients/{patient_id}/audit", tenant.admin))["items"]
    erasure = [e for e in trail if e["action"] == "erase_patient" and e["outcome"] == "200"]
    assert erasure and erasure[0]["reason"] == reason
    assert len(trail) > 5
    # Erasing again finds nothing.
    again = api.call("POST", f"/patients/{patient_id}/erasure", tenant.admin, {"reason": reason})
    assert again.status_code == 404 and error_code(again) == "not_found"

    # The number comes back on a new record: its STOP still holds.
    back = api.call("POST", "/patients", tenant.staff, patient_body(phone=j.phone))
    assert back.status_code == 201, back.body
    [state] = [o for o in payload(back)["opt_outs"] if o["channel"] == "sms"]
    assert state["opted_out"] is True


def test_a_patient_asks_for_erasure_from_the_app(runtime: Any, api: Api, journey: Any) -> None:
    j: Journey = journey()
    asked = api.call("POST", "/me/erasure-request", j.token)
    assert asked.status_code == 202, asked.body
    [task] = [t for t in j.tasks() if t["kind"] == "erasure_requested"]
    assert task["id"] == payload(asked)["task_id"]
    assert api.call("POST", "/me/erasure-request", j.clinic.tenant.staff).status_code == 403


def test_deleted_patients_are_erased_once_the_tenants_retention_has_passed(
    own_runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    runtime = own_runtime  # a month passes: no other test's journeys play along
    from chalicelib import clock
    from tests.journeys.support import run_schedule

    tenant = make_tenant(privacy={"deleted_patient_retention_days": 30})
    gone, kept = make_patient(tenant), make_patient(tenant, phone="13900139000")
    assert api.call("DELETE", f"/patients/{gone['id']}", tenant.staff).status_code == 204
    table = get_settings().table_name
    profile_key = {"PK": {"S": f"T#{tenant.id}#P#{gone['id']}"}, "SK": {"S": "PROFILE"}}

    run_schedule(runtime, "retention_sweep")
    assert "Item" in runtime.client("dynamodb").get_item(TableName=table, Key=profile_key)

    move_to(runtime, clock.now() + timedelta(days=31))
    report = run_schedule(runtime, "retention_sweep")
    assert report["erased"] >= 1
    assert "Item" not in runtime.client("dynamodb").get_item(TableName=table, Key=profile_key)
    assert _naming(_items(runtime), gone["id"]) == []
    assert api.call("GET", f"/patients/{kept['id']}", tenant.staff).status_code == 200
    trail = payload(api.call("GET", f"/patients/{gone['id']}/audit", tenant.admin))["items"]
    [purge] = [e for e in trail if e["action"] == "purge_deleted_patient"]
    assert purge["actor"] == {"kind": "system", "subject": "retention_sweep", "role": "system"}
    assert "30 days" in purge["reason"]
