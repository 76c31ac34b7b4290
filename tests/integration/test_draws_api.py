"""Draws through the API: announced, closed (the list and seed committed, only their hashes
shown), run once at its time (the seed and list revealed, matching the commitments, and the
winners those give), verifiable by anyone; patients see their own draws only."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from tests.conftest import Api, TenantCtx, error_code, error_paths, payload


def draw_body(**overrides: Any) -> dict[str, Any]:
    from chalicelib import clock

    body: dict[str, Any] = {
        "name": "Spring check-up draw",
        "member_classes": ["vip", "gold"],
        "winners": 2,
        "draw_at": clock.iso(clock.now() + timedelta(hours=1)),
    }
    body.update(overrides)
    return body


def members(tenant: TenantCtx, make_patient: Any) -> dict[str, list[str]]:
    made: dict[str, list[str]] = {"vip": [], "gold": [], "standard": []}
    for n, member_class in enumerate(["vip"] * 3 + ["gold"] * 2 + ["standard"] * 2):
        patient = make_patient(tenant, member_class=member_class, phone=f"1380013{n:04d}")
        made[member_class].append(patient["id"])
    return made


def test_a_draw_commits_first_reveals_after_and_reruns_to_the_same_winners(
    runtime: Any, api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    made = members(tenant, make_patient)
    created = api.call("POST", "/draws", tenant.staff, draw_body())
    assert created.status_code == 201, created.body
    draw = payload(created)
    assert draw["status"] == "open" and "seed_commitment" not in draw
    path = f"/draws/{draw['id']}"

    # Not yet committed: it cannot run.
    early = api.call("POST", f"{path}/run", tenant.admin)
    assert early.status_code == 409 and error_code(early) == "draw_not_committed"

    closed = api.call("POST", f"{path}/close", tenant.staff)
    assert closed.status_code == 200, closed.body
    committed = payload(closed)
    assert committed["status"] == "committed"
    assert committed["eligible_count"] == 5
    assert "seed" not in committed and "eligible" not in committed
    assert "winner_ids" not in committed
    # Closing again changes nothing (the same commitments).
    again = payload(api.call("POST", f"{path}/close", tenant.staff))
    assert again["seed_commitment"] == committed["seed_commitment"]
    shown = payload(api.call("GET", path, tenant.staff))
    assert "seed" not in shown and shown["eligible_commitment"] == committed["eligible_commitment"]
    hidden = api.call("GET", f"{path}/verification", tenant.admin)
    assert hidden.status_code == 409 and error_code(hidden) == "draw_not_drawn"

    # A patient who joins a class afterwards is not in the committed list.
    late = make_patient(tenant, member_class="vip", phone="13900139999")

    # Not before its time.
    not_due = api.call("POST", f"{path}/run", tenant.admin)
    assert not_due.status_code == 409 and error_code(not_due) == "draw_not_due"
    runtime.clock.advance(timedelta(hours=2))
    assert api.call("POST", f"{path}/run", tenant.staff).status_code == 403
    ran = api.call("POST", f"{path}/run", tenant.admin)
    assert ran.status_code == 200, ran.body
    drawn = payload(ran)
    assert drawn["status"] == "drawn" and len(drawn["winner_ids"]) == 2
    eligible = sorted(made["vip"] + made["gold"])
    assert drawn["eligible"] == eligible and late["id"] not in drawn["eligible"]

    # Running twice answers the stored result; nothing can make it draw again.
    for _ in range(2):
        rerun = payload(api.call("POST", f"{path}/run", tenant.admin))
        assert rerun["winner_ids"] == drawn["winner_ids"] and rerun["seed"] == drawn["seed"]
    assert api.call("POST", f"{path}/cancel", tenant.admin).status_code == 409
    assert api.call("POST", f"{path}/close", tenant.staff).status_code == 409

    # Anyone can check it from the verification alone, with nothing of ours.
    check = payload(api.call("GET", f"{path}/verification", tenant.staff))
    assert check["eligible"] == eligible
    text = "\n".join(sorted(set(check["eligible"]))).encode()
    assert hashlib.sha256(text).hexdigest() == check["eligible_commitment"]
    assert check["eligible_commitment"] == committed["eligible_commitment"]
    assert hashlib.sha256(check["seed"].encode()).hexdigest() == committed["seed_commitment"]
    assert len(check["eligible"]) == committed["eligible_count"]
    key = bytes.fromhex(check["seed"])
    ranked = sorted(
        check["eligible"],
        key=lambda p: (hmac.new(key, p.encode(), hashlib.sha256).hexdigest(), p),
    )
    assert ranked[: check["winners"]] == check["winner_ids"] == drawn["winner_ids"]

    # Patients: their own draws, the commitments, whether they won; nobody else's ids.
    for patient_id in [*eligible, made["standard"][0], late["id"]]:
        token = runtime.token("patient", tenant.id, patient_id)
        mine = payload(api.call("GET", "/me/draws", token))["items"]
        if patient_id not in eligible:
            assert mine == []
            continue
        assert [d["id"] for d in mine] == [draw["id"]]
        assert mine[0]["won"] is (patient_id in drawn["winner_ids"])
        assert mine[0]["eligible_commitment"] == committed["eligible_commitment"]
        others = set(eligible) - {patient_id}
        assert not any(other in str(mine) for other in others)
    listed = payload(api.call("GET", "/draws", tenant.staff))["items"]
    assert [d["id"] for d in listed] == [draw["id"]] and "eligible" not in listed[0]


def test_bodies_are_checked_naming_the_field(api: Api, tenant: TenantCtx) -> None:
    from chalicelib import clock

    cases = [
        (draw_body(winners=0), "$.winners"),
        (draw_body(member_classes=[]), "$.member_classes"),
        (draw_body(member_classes=["VIP!"]), "$.member_classes[0]"),
        (draw_body(member_classes=["vip", "vip"]), "$.member_classes"),
        (draw_body(draw_at=clock.iso(clock.now() - timedelta(hours=1))), "$.draw_at"),
        (draw_body(draw_at="tomorrow"), "$.draw_at"),
        ({k: v for k, v in draw_body().items() if k != "name"}, "$.name"),
    ]
    for body, field in cases:
        response = api.call("POST", "/draws", tenant.staff, body)
        assert response.status_code == 400, (body, response.body)
        assert field in error_paths(response), (body, error_paths(response))


def test_another_tenants_draw_is_not_found_and_roles_hold(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    mine, theirs = make_tenant(), make_tenant()
    draw = payload(api.call("POST", "/draws", theirs.staff, draw_body()))
    for method, suffix in (
        ("GET", ""),
        ("POST", "/close"),
        ("POST", "/run"),
        ("POST", "/cancel"),
        ("GET", "/verification"),
    ):
        response = api.call(method, f"/draws/{draw['id']}{suffix}", mine.admin)
        assert response.status_code == 404, (suffix, response.body)
        assert draw["id"] not in response.body.decode()
    assert payload(api.call("GET", "/draws", mine.staff))["items"] == []
    patient = make_patient(mine)
    token = runtime.token("patient", mine.id, patient["id"])
    assert api.call("POST", "/draws", token, draw_body()).status_code == 403
    assert api.call("GET", "/draws", token).status_code == 403
    assert api.call("GET", f"/draws/{draw['id']}", token).status_code == 403
    assert api.call("GET", "/me/draws", mine.staff).status_code == 403
    # Cancelled by an admin (not staff); a cancelled draw neither closes nor runs.
    own = payload(api.call("POST", "/draws", mine.staff, draw_body()))
    assert api.call("POST", f"/draws/{own['id']}/cancel", mine.staff).status_code == 403
    cancelled = api.call("POST", f"/draws/{own['id']}/cancel", mine.admin)
    assert payload(cancelled)["status"] == "cancelled"
    for suffix in ("/close", "/run"):
        refused = api.call("POST", f"/draws/{own['id']}{suffix}", mine.admin)
        assert refused.status_code == 409 and error_code(refused) == "invalid_status_change"


def test_a_large_class_is_committed_in_chunks_and_paged(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    """More members than a segment page (200) and than a stored chunk: written straight to the
    segment entries (as a profile write would), committed and revealed whole."""
    from chalicelib.domain.segments import Entry
    from chalicelib.store import draws as draw_store
    from chalicelib.store.segments import entry_item
    from chalicelib.tenant_scope import acting_for

    ids = [f"p-bulk{n:05d}" for n in range(1203)]
    with acting_for(tenant.id):
        for patient_id in ids:
            entry_item(tenant.id, Entry("SEG#member:bulk", f"P#{patient_id}")).save()
    draw = payload(api.call("POST", "/draws", tenant.staff, draw_body(member_classes=["bulk"])))
    committed = payload(api.call("POST", f"/draws/{draw['id']}/close", tenant.staff))
    assert committed["eligible_count"] == len(ids)
    assert len(ids) > draw_store.CHUNK_SIZE
    runtime.clock.advance(timedelta(hours=2))
    drawn = payload(api.call("POST", f"/draws/{draw['id']}/run", tenant.admin))
    assert drawn["eligible"] == sorted(ids)
    text = "\n".join(sorted(ids)).encode()
    assert hashlib.sha256(text).hexdigest() == committed["eligible_commitment"]
