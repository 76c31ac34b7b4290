"""Loyalty over the API: published rules, staff adjustments, the rewards catalogue, and
redemptions that never take a balance or a stock below zero, even when they race (over HTTP
against the threaded local server)."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

from tests.conftest import Api, TenantCtx, error_code, error_paths, payload
from tests.integration.test_concurrent_booking import post

RULES = {
    "enabled": True,
    "points": {"follow_up_attended": 50, "check_in_on_time": 10},
    "caps": {"per_patient_per_year": 2000},
    "expiry_days": 365,
}
REWARD = {
    "name": {"zh-CN": "体检套餐", "en": "Check-up"},
    "kind": "check_up_package",
    "points": 100,
}


def loyal_tenant(api: Api, make_tenant: Any) -> TenantCtx:
    tenant: TenantCtx = make_tenant()
    published = api.call("PUT", "/loyalty/rules", tenant.admin, RULES)
    assert published.status_code == 200, published.body
    return tenant


def add_reward(api: Api, tenant: TenantCtx, reward_id: str, stock: int, points: int = 100) -> None:
    saved = api.call("PUT", f"/rewards/{reward_id}", tenant.admin, {**REWARD, "points": points})
    assert saved.status_code == 200, saved.body
    restocked = api.call("POST", f"/rewards/{reward_id}/restock", tenant.admin, {"quantity": stock})
    assert restocked.status_code == 200 and payload(restocked)["stock"] == stock


def give(api: Api, tenant: TenantCtx, patient_id: str, points: int) -> None:
    adjusted = api.call(
        "POST",
        f"/patients/{patient_id}/points/adjustments",
        tenant.staff,
        {"points": points, "reason": "Opening balance from the paper card"},
    )
    assert adjusted.status_code == 201, adjusted.body


def test_rules_are_versioned_and_published_to_patients(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    tenant: TenantCtx = make_tenant()
    patient = make_patient(tenant)
    token = runtime.token("patient", tenant.id, patient["id"])
    before = payload(api.call("GET", "/loyalty/rules", token))
    assert (before["enabled"], before["version"]) == (False, 0), "off until a hospital says so"
    first = api.call("PUT", "/loyalty/rules", tenant.admin, RULES)
    assert first.status_code == 200 and payload(first)["version"] == 1
    second = api.call("PUT", "/loyalty/rules", tenant.admin, {**RULES, "expiry_days": 180})
    assert payload(second)["version"] == 2
    stale = api.call("PUT", "/loyalty/rules", tenant.admin, {**RULES, "version": 1})
    assert stale.status_code == 409 and error_code(stale) == "version_conflict"
    seen = payload(api.call("GET", "/loyalty/rules", token))
    assert (seen["version"], seen["expiry_days"]) == (2, 180)
    assert seen["points"]["referral_first_visit"] == 100, "a default for every event"
    old = payload(api.call("GET", "/loyalty/rules?version=1", token))
    assert old["expiry_days"] == 365
    assert api.call("GET", "/loyalty/rules?version=9", token).status_code == 404
    assert api.call("PUT", "/loyalty/rules", tenant.staff, RULES).status_code == 403
    bad = api.call("PUT", "/loyalty/rules", tenant.admin, {**RULES, "points": {"birthday": 5}})
    assert bad.status_code == 400 and error_paths(bad) == ["$.points.birthday"]


def test_adjustments_need_a_reason_and_never_go_below_zero(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    tenant = loyal_tenant(api, make_tenant)
    patient = make_patient(tenant)
    path = f"/patients/{patient['id']}/points/adjustments"
    no_reason = api.call("POST", path, tenant.staff, {"points": 5})
    assert no_reason.status_code == 400 and error_paths(no_reason) == ["$.reason"]
    give(api, tenant, patient["id"], 30)
    too_much = api.call("POST", path, tenant.staff, {"points": -31, "reason": "Entered twice"})
    assert too_much.status_code == 409 and error_code(too_much) == "insufficient_points"
    taken = api.call("POST", path, tenant.staff, {"points": -10, "reason": "Entered twice"})
    assert taken.status_code == 201
    seen = payload(api.call("GET", f"/patients/{patient['id']}/points", tenant.staff))
    assert (seen["balance"], seen["pending"]) == (20, 0)
    # Both at one moment of the frozen clock: their order among themselves is not told.
    assert sorted((line["kind"], line["points"]) for line in seen["history"]) == [
        ("adjust", -10),
        ("adjust", 30),
    ]
    assert {line["by"] for line in seen["history"]} == {subject_of(tenant.staff)}
    token = runtime.token("patient", tenant.id, patient["id"])
    mine = payload(api.call("GET", "/me/points/history", token))["items"]
    assert all("by" not in line for line in mine), "the patient sees no staff ids"
    assert api.call("POST", path, token, {"points": 5, "reason": "myself"}).status_code == 403


def test_twenty_concurrent_redemptions_against_a_balance_for_three(
    runtime: Any, api: Api, app_url: str, make_tenant: Any, make_patient: Any
) -> None:
    tenant = loyal_tenant(api, make_tenant)
    patient = make_patient(tenant)
    add_reward(api, tenant, "check-up", stock=100)
    give(api, tenant, patient["id"], 300)
    token = runtime.token("patient", tenant.id, patient["id"])
    outcomes = race(app_url, [token] * 20, "check-up")
    assert sorted(status for status, _ in outcomes) == [201] * 3 + [409] * 17
    assert {b["error"]["code"] for s, b in outcomes if s == 409} == {"insufficient_points"}
    points = payload(api.call("GET", "/me/points", token))
    assert points["balance"] == 0
    vouchers = payload(api.call("GET", "/me/vouchers", token))["items"]
    assert len({v["code"] for v in vouchers}) == 3
    [reward] = payload(api.call("GET", "/rewards", token))["items"]
    assert reward["stock"] == 97


def test_a_stock_of_five_and_ten_concurrent_redemptions(
    runtime: Any, api: Api, app_url: str, make_tenant: Any, make_patient: Any
) -> None:
    tenant = loyal_tenant(api, make_tenant)
    add_reward(api, tenant, "gift", stock=5, points=10)
    tokens = []
    for _ in range(10):
        patient = make_patient(tenant)
        give(api, tenant, patient["id"], 100)
        tokens.append(runtime.token("patient", tenant.id, patient["id"]))
    outcomes = race(app_url, tokens, "gift")
    assert sorted(status for status, _ in outcomes) == [201] * 5 + [409] * 5
    assert {b["error"]["code"] for s, b in outcomes if s == 409} == {"out_of_stock"}
    [reward] = payload(api.call("GET", "/rewards", tenant.staff))["items"]
    assert reward["stock"] == 0
    balances = sorted(payload(api.call("GET", "/me/points", t))["balance"] for t in tokens)
    assert balances == [90] * 5 + [100] * 5, "a refused redemption takes nothing"


def subject_of(token: str) -> str:
    claims = token.split(".")[1]
    sub: str = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"]
    return sub


def race(app_url: str, tokens: list[str], reward_id: str) -> list[tuple[int, Any]]:
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(tokens))

    def redeem(token: str) -> None:
        start.wait()
        outcome = post(f"{app_url}/me/redemptions", token, {"reward_id": reward_id})
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=redeem, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_a_voucher_is_used_once_at_the_desk_and_loyalty_off_refuses(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    tenant = loyal_tenant(api, make_tenant)
    patient = make_patient(tenant)
    add_reward(api, tenant, "discount", stock=2)
    give(api, tenant, patient["id"], 100)
    token = runtime.token("patient", tenant.id, patient["id"])
    missing = api.call("POST", "/me/redemptions", token, {"reward_id": "nothing-here"})
    assert missing.status_code == 404
    invalid = api.call("POST", "/me/redemptions", token, {})
    assert invalid.status_code == 400 and error_paths(invalid) == ["$.reward_id"]
    redeemed = api.call("POST", "/me/redemptions", token, {"reward_id": "discount"})
    assert redeemed.status_code == 201, redeemed.body
    code = payload(redeemed)["code"]
    used = api.call("POST", f"/vouchers/{code}/use", tenant.staff)
    assert used.status_code == 200 and payload(used)["status"] == "used"
    again = api.call("POST", f"/vouchers/{code}/use", tenant.staff)
    assert again.status_code == 409 and error_code(again) == "voucher_not_usable"
    other: TenantCtx = make_tenant()
    assert api.call("POST", f"/vouchers/{code}/use", other.staff).status_code == 404
    assert api.call("POST", f"/vouchers/{code}/use", token).status_code == 403
    off = api.call("PUT", "/loyalty/rules", tenant.admin, {**RULES, "enabled": False})
    assert off.status_code == 200
    refused = api.call("POST", "/me/redemptions", token, {"reward_id": "discount"})
    assert refused.status_code == 403 and error_code(refused) == "loyalty_off"
