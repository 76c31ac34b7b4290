"""Tenants: the operator creates; a tenant's admin reads and edits its own; nobody sees others."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, TenantCtx, error_paths, payload, tenant_body, unique


def test_operator_creates_and_duplicate_is_409(runtime: Any, api: Api) -> None:
    operator = runtime.token("operator")
    tenant_id = unique("t")
    created = api.call("POST", "/tenants", operator, tenant_body(tenant_id))
    assert created.status_code == 201
    assert created.headers["ETag"] == '"1"'
    assert created.headers["Location"] == f"/tenants/{tenant_id}"
    doc = payload(created)
    assert doc["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    again = api.call("POST", "/tenants", operator, tenant_body(tenant_id))
    assert again.status_code == 409
    assert payload(again)["error"]["code"] == "tenant_exists"


def test_an_operators_refused_create_frees_its_idempotency_key(runtime: Any, api: Api) -> None:
    """A create refused (the id is taken) gives its Idempotency-Key back: the corrected request
    under the same key is carried out, not refused as a reuse (the release is a DeleteItem on
    the operator's PLATFORM# record, which tests/permissions holds the API's policy to)."""
    operator = runtime.token("operator")
    taken = unique("t")
    assert api.call("POST", "/tenants", operator, tenant_body(taken)).status_code == 201
    key = {"Idempotency-Key": unique("operator-create")}
    refused = api.call("POST", "/tenants", operator, tenant_body(taken), headers=key)
    assert refused.status_code == 409 and payload(refused)["error"]["code"] == "tenant_exists"
    again = api.call("POST", "/tenants", operator, tenant_body(taken), headers=key)
    assert again.status_code == 409 and payload(again)["error"]["code"] == "tenant_exists"
    corrected = api.call("POST", "/tenants", operator, tenant_body(unique("t")), headers=key)
    assert corrected.status_code == 201, corrected.body


def test_admin_and_staff_read_their_own_tenant_only(api: Api, make_tenant: Any) -> None:
    a: TenantCtx = make_tenant()
    b: TenantCtx = make_tenant()
    assert api.call("GET", f"/tenants/{a.id}", a.admin).status_code == 200
    assert api.call("GET", f"/tenants/{a.id}", a.staff).status_code == 200
    assert api.call("GET", f"/tenants/{b.id}", a.admin).status_code == 404
    assert api.call("GET", f"/tenants/{b.id}", a.operator).status_code == 200


def test_admin_edits_with_if_match(api: Api, tenant: TenantCtx) -> None:
    path = f"/tenants/{tenant.id}"
    patch = {"quiet_hours": {"start": "20:00", "end": "07:30"}}
    assert api.call("PATCH", path, tenant.admin, patch).status_code == 428
    stale = api.call("PATCH", path, tenant.admin, patch, headers={"If-Match": '"7"'})
    assert stale.status_code == 409
    assert payload(stale)["error"]["code"] == "version_conflict"
    ok = api.call("PATCH", path, tenant.admin, patch, headers={"If-Match": '"1"'})
    assert ok.status_code == 200, ok.body
    assert ok.headers["ETag"] == '"2"'
    assert payload(api.call("GET", path, tenant.staff))["quiet_hours"]["start"] == "20:00"


def test_staff_cannot_edit_and_id_is_read_only(api: Api, tenant: TenantCtx) -> None:
    path = f"/tenants/{tenant.id}"
    assert (
        api.call(
            "PATCH", path, tenant.staff, {"name": "X"}, headers={"If-Match": '"1"'}
        ).status_code
        == 403
    )
    renamed = api.call("PATCH", path, tenant.admin, {"id": "other"}, headers={"If-Match": '"1"'})
    assert renamed.status_code == 400
    assert payload(renamed)["error"]["details"][0]["path"] == "$.id"


def test_invalid_tenant_fields_are_named_together(runtime: Any, api: Api) -> None:
    body = tenant_body(
        unique("t"), time_zone="Asia/Atlantis", quiet_hours={"start": "25:00", "end": "08:00"}
    )
    response = api.call("POST", "/tenants", runtime.token("operator"), body)
    assert response.status_code == 400
    paths = error_paths(response)
    assert paths == ["$.quiet_hours.start", "$.time_zone"]
    newline_id = api.call("POST", "/tenants", runtime.token("operator"), tenant_body("t-x\n"))
    assert newline_id.status_code == 400


def test_sender_identity_is_the_operators(api: Api, tenant: TenantCtx) -> None:
    path = f"/tenants/{tenant.id}"
    sender = {"sender": {"email_from": "spoof@elsewhere.example.com"}}
    assert (
        api.call("PATCH", path, tenant.admin, sender, headers={"If-Match": '"1"'}).status_code
        == 403
    )
    assert (
        api.call("PATCH", path, tenant.operator, sender, headers={"If-Match": '"1"'}).status_code
        == 200
    )


def test_patient_cannot_read_the_tenant_record(runtime: Any, api: Api, tenant: TenantCtx) -> None:
    token = runtime.token("patient", tenant.id, "p-1")
    assert api.call("GET", f"/tenants/{tenant.id}", token).status_code == 403


def test_booking_horizon_is_a_checked_setting(runtime: Any, api: Api, tenant: TenantCtx) -> None:
    operator = runtime.token("operator")
    for days in (0, 336, "90"):
        body = tenant_body(unique("t"), booking={"horizon_days": days})
        refused = api.call("POST", "/tenants", operator, body)
        assert refused.status_code == 400, days
        assert error_paths(refused) == ["$.booking.horizon_days"], days
    path = f"/tenants/{tenant.id}"
    too_far = api.call(
        "PATCH", path, tenant.admin, {"booking": {"horizon_days": 400}}, headers={"If-Match": '"1"'}
    )
    assert too_far.status_code == 400
    assert error_paths(too_far) == ["$.booking.horizon_days"]
    eleven_months = api.call(
        "PATCH", path, tenant.admin, {"booking": {"horizon_days": 335}}, headers={"If-Match": '"1"'}
    )
    assert eleven_months.status_code == 200, eleven_months.body
    assert payload(api.call("GET", path, tenant.staff))["booking"] == {"horizon_days": 335}
