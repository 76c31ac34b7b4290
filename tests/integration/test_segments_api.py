"""Segments through the API: membership follows every write of the profile, time-dependent
segments follow the (virtual) calendar, listing is a Query, and tenants never see each other."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import Api, TenantCtx, payload

GUARDIAN = {"name": "Li Na", "relationship": "parent", "phone": "139 0013 9000"}


def members(api: Api, tenant: TenantCtx, segment: str, query: str = "") -> list[str]:
    response = api.call("GET", f"/segments/{segment}/patients{query}", tenant.staff)
    assert response.status_code == 200, response.body
    return [p["id"] for p in payload(response)["items"]]


def patch(api: Api, tenant: TenantCtx, patient: dict[str, Any], body: Any) -> dict[str, Any]:
    response = api.call(
        "PATCH",
        f"/patients/{patient['id']}",
        tenant.staff,
        body,
        headers={"If-Match": f'"{patient["version"]}"'},
    )
    assert response.status_code == 200, response.body
    changed: dict[str, Any] = payload(response)
    return changed


def test_membership_follows_a_change_of_tags(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    p = make_patient(tenant, medical={"conditions": ["hypertension"]})
    other = make_patient(tenant, medical={"conditions": ["myopia"]})
    assert members(api, tenant, "chronic") == [p["id"]]
    p = patch(api, tenant, p, {"medical": {"conditions": ["myopia"]}})
    assert members(api, tenant, "chronic") == []
    other = patch(api, tenant, other, {"medical": {"conditions": ["copd"], "risk_flags": ["fall"]}})
    assert members(api, tenant, "chronic") == [other["id"]]
    assert members(api, tenant, "high-risk") == [other["id"]]
    patch(api, tenant, other, {"medical": {"risk_flags": None}})
    assert members(api, tenant, "high-risk") == []


def test_class_and_department_segments_and_their_listing(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    p = make_patient(tenant, member_class="vip", departments=["cardiology"])
    assert members(api, tenant, "member:vip") == [p["id"]]
    assert members(api, tenant, "department:cardiology") == [p["id"]]
    listed = payload(api.call("GET", "/segments", tenant.staff))["items"]
    ids = {s["id"] for s in listed}
    assert {"chronic", "elderly", "department:cardiology", "member:vip"} <= ids
    patch(api, tenant, p, {"member_class": "gold", "departments": []})
    assert members(api, tenant, "member:vip") == []
    assert members(api, tenant, "member:gold") == [p["id"]]
    assert members(api, tenant, "department:cardiology") == []


def test_deleting_a_patient_removes_every_membership(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    p = make_patient(tenant, medical={"conditions": ["asthma"]}, member_class="vip")
    assert api.call("DELETE", f"/patients/{p['id']}", tenant.staff).status_code == 204
    for segment in ("chronic", "member:vip", "elderly"):
        assert members(api, tenant, segment) == [], segment


def test_elderly_and_minors_follow_the_calendar(
    runtime: Any, api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    from chalicelib import clock

    today = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    tomorrow = today + timedelta(days=1)
    old = make_patient(tenant, birth_date="1950-06-01")
    make_patient(tenant, birth_date="1990-06-01")
    turning_65 = make_patient(
        tenant, birth_date=tomorrow.replace(year=tomorrow.year - 65).isoformat()
    )
    turning_18 = make_patient(
        tenant,
        birth_date=tomorrow.replace(year=tomorrow.year - 18).isoformat(),
        guardian=GUARDIAN,
    )
    child = make_patient(tenant, birth_date="2019-05-01", guardian=GUARDIAN)
    assert members(api, tenant, "elderly") == [old["id"]]
    assert sorted(members(api, tenant, "guardians-of-minors")) == sorted(
        [turning_18["id"], child["id"]]
    )
    runtime.clock.advance(timedelta(days=1))
    assert sorted(members(api, tenant, "elderly")) == sorted([old["id"], turning_65["id"]])
    assert members(api, tenant, "guardians-of-minors") == [child["id"]]


def test_listing_pages_with_a_query_and_never_a_scan(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    from local.meter import meter

    made = {make_patient(tenant, medical={"risk_flags": ["fall"]})["id"] for _ in range(3)}
    before = meter.snapshot()
    first = payload(api.call("GET", "/segments/high-risk/patients?limit=2", tenant.staff))
    second = payload(
        api.call(
            "GET",
            f"/segments/high-risk/patients?limit=2&cursor={first['next_cursor']}",
            tenant.staff,
        )
    )
    after = meter.snapshot()
    assert {p["id"] for p in first["items"] + second["items"]} == made
    assert "next_cursor" not in second
    assert after.get("dynamodb:Scan", 0) == before.get("dynamodb:Scan", 0)
    assert after.get("dynamodb:Query", 0) - before.get("dynamodb:Query", 0) >= 2
    bad = api.call("GET", "/segments/high-risk/patients?cursor=VCNvdGhlciNQI3AtMQ", tenant.staff)
    assert bad.status_code == 400 and payload(bad)["error"]["details"][0]["path"] == "cursor"


def test_another_tenants_segments_are_out_of_reach(
    api: Api, make_tenant: Any, make_patient: Any
) -> None:
    mine, theirs = make_tenant(), make_tenant()
    make_patient(mine, medical={"conditions": ["diabetes"]})
    assert members(api, theirs, "chronic") == []
    unknown = api.call("GET", "/segments/department:nowhere/patients", mine.staff)
    assert unknown.status_code == 404
    assert payload(unknown)["error"]["code"] == "segment_not_found"


def test_flag_high_risk_is_a_service_call_others_can_make(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    from chalicelib.services.registry import services

    p = make_patient(tenant)
    updated = services().segments.flag_high_risk(tenant.id, p["id"], "urgent-answer")
    assert updated is not None and updated["medical"]["risk_flags"] == ["urgent-answer"]
    assert members(api, tenant, "high-risk") == [p["id"]]
    assert services().segments.flag_high_risk(tenant.id, "p-missing", "urgent-answer") is None


def test_patients_cannot_read_segments(runtime: Any, api: Api, tenant: TenantCtx) -> None:
    token = runtime.token("patient", tenant.id, "p-0123456789abcdef")
    assert api.call("GET", "/segments", token).status_code == 403
    assert api.call("GET", "/segments/chronic/patients", token).status_code == 403
