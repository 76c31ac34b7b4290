"""PHI fields are encrypted at the application level: the raw table (an export, a backup) shows
none of a patient's name, phone, email, birth date, medical tags, MRN, appointment notes or
answers; lookups still work through keyed hashes; and shredding a tenant's data key makes its
records unreadable for good."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.settings import get_settings
from tests.conftest import Api, patient_body, payload
from tests.integration.test_segments_api import members
from tests.journeys.support import iso, local_moment

PHI = {
    "given": "Xiuyingzz",
    "family": "Qiaofengzz",
    "national_phone": "13912345678",
    "e164": "+8613912345678",
    "email": "qiao.xiuyingzz@example.org",
    "birth_date": "1958-03-17",
    "condition": "copd",
    "allergy": "penicillinzz",
    "mrn": "MRN-778899ZZ",
    "notes": "Bring the inhaler diary Zq",
    "guardian": "Qiaoguardzz",
}


def _whole_table(runtime: Any) -> str:
    """Every item of the table as raw JSON (a Scan: tests only, never the product)."""
    dynamodb = runtime.client("dynamodb")
    items: list[Any] = []
    kwargs: dict[str, Any] = {"TableName": get_settings().table_name}
    while True:
        page = dynamodb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return json.dumps(items, ensure_ascii=False, default=repr).lower()
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_the_raw_table_holds_no_phi_and_lookups_still_work(
    runtime: Any, api: Api, make_clinic: Any
) -> None:
    clinic = make_clinic()
    tenant = clinic.tenant
    created = api.call(
        "POST",
        "/patients",
        tenant.staff,
        {
            "name": {"given": PHI["given"], "family": PHI["family"]},
            "phone": PHI["national_phone"],
            "email": PHI["email"],
            "birth_date": PHI["birth_date"],
            "medical": {"conditions": [PHI["condition"]], "allergies": [PHI["allergy"]]},
            "external_ids": {"mrn": PHI["mrn"]},
            "guardian": {"name": PHI["guardian"], "relationship": "child", "phone": "13700137999"},
            "preferred_channels": ["sms"],
        },
        headers={"Idempotency-Key": "create-patient-encrypted-1"},
    )
    assert created.status_code == 201, created.body
    patient = payload(created)
    start = iso(local_moment(days=3, hour=10))
    booked = api.call(
        "POST",
        "/appointments",
        tenant.staff,
        {
            "patient_id": patient["id"],
            "slot": {"schedule_id": clinic.schedule_id, "start": start},
            "type": "follow_up",
            "notes_for_patient": PHI["notes"],
        },
    )
    assert booked.status_code == 201, booked.body

    raw = _whole_table(runtime)
    for name, value in PHI.items():
        assert value.lower() not in raw, f"{name} is readable in the raw table"

    # Everything still reads back whole, and the look-ups work through their keyed hashes.
    got = payload(api.call("GET", f"/patients/{patient['id']}", tenant.staff))
    assert got["name"]["given"] == PHI["given"] and got["phone"] == PHI["e164"]
    assert got["medical"]["conditions"] == [PHI["condition"]]
    for query in ({"phone": PHI["national_phone"]}, {"mrn": PHI["mrn"]}):
        found = payload(api.call("POST", "/patients/search", tenant.staff, query))["items"]
        assert [p["id"] for p in found] == [patient["id"]], query
    appointment = payload(api.call("GET", f"/appointments/{payload(booked)['id']}", tenant.staff))
    assert appointment["notes_for_patient"] == PHI["notes"]
    assert members(api, tenant, "chronic") == [patient["id"]]
    assert members(api, tenant, f"condition:{PHI['condition']}") == [patient["id"]]
    assert members(api, tenant, "elderly") == [patient["id"]]


def test_a_shredded_tenants_records_are_unreadable(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    from chalicelib.adapters.kms import KeyService
    from chalicelib.services.keyring import Keyring
    from chalicelib.store import sealing
    from chalicelib.store.data_keys import DataKeyRepository

    tenant, neighbour = make_tenant(), make_tenant()
    patient = make_patient(tenant)
    theirs = make_patient(neighbour)
    assert api.call("GET", f"/patients/{patient['id']}", tenant.staff).status_code == 200

    Keyring(DataKeyRepository(), KeyService()).shred(tenant.id)
    keyring: Any = sealing._source
    keyring.forget(tenant.id)  # as every warm container does within its cache time

    gone = api.call("GET", f"/patients/{patient['id']}", tenant.staff)
    assert gone.status_code == 404
    # No new key is made for a shredded tenant: a new record cannot be written either.
    refused = api.call("POST", "/patients", tenant.staff, patient_body(phone="13600136000"))
    assert refused.status_code == 404, refused.body
    # The neighbour is untouched.
    assert api.call("GET", f"/patients/{theirs['id']}", neighbour.staff).status_code == 200
