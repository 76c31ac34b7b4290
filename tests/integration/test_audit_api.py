"""The audit trail through the API: every read and change of a patient's data is recorded (who,
what, when, from where, outcome; fields by name, never values; patients by pseudonym), chained
per tenant-day so an edited entry is found, readable by record, by actor and by the patient,
and a read outside one's departments needs a reason and alerts the privacy topic."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.settings import get_settings
from local.identity import sign_in_invited
from tests.conftest import Api, TenantCtx, error_code, error_paths, payload, unique


def _audit(api: Api, tenant: TenantCtx, patient_id: str) -> list[dict[str, Any]]:
    response = api.call("GET", f"/patients/{patient_id}/audit", tenant.admin)
    assert response.status_code == 200, response.body
    items: list[dict[str, Any]] = payload(response)["items"]
    return items


def _today(runtime: Any) -> str:
    from chalicelib import clock

    return clock.now().date().isoformat()


def _chain_items(runtime: Any, tenant_id: str, day: str) -> list[dict[str, Any]]:
    """Every entry of the tenant's day, over its chains."""
    from chalicelib.domain.audit import CHAIN_SHARDS

    table = get_settings().table_name
    items: list[dict[str, Any]] = []
    for shard in range(CHAIN_SHARDS):
        answer = runtime.client("dynamodb").query(
            TableName=table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"T#{tenant_id}#AUDIT#{day}#{shard}"}},
            ConsistentRead=True,
        )
        items += answer["Items"]
    return items


def _member(runtime: Any, api: Api, tenant: TenantCtx, **body: Any) -> tuple[str, str]:
    """A signed-in staff member: (their id, their token)."""
    invite = {"email": f"{unique('nurse')}@renji.example", "name": "王芳", **body}
    invited = api.call("POST", "/staff", tenant.admin, invite)
    assert invited.status_code == 201, invited.body
    token = sign_in_invited(runtime.client("cognito-idp"), runtime.pool, invite["email"])
    return payload(invited)["id"], token


def test_reads_and_changes_are_recorded_by_whom_and_which_fields_never_values(
    runtime: Any, api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    patient = make_patient(tenant)
    path = f"/patients/{patient['id']}"
    assert api.call("GET", path, tenant.staff).status_code == 200
    changed = api.call(
        "PATCH",
        path,
        tenant.staff,
        {"email": "new.address@example.com", "medical": {"conditions": ["diabetes"]}},
        headers={"If-Match": '"1"', "User-Agent": "CareLoopConsole/1.0"},
    )
    assert changed.status_code == 200, changed.body

    entries = _audit(api, tenant, patient["id"])
    # Newest first by time; the virtual clock stands still here, so one moment holds all three.
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    by_action = {e["action"]: e for e in entries}
    assert {"patch_patient", "get_patient", "create_patient"} <= set(by_action)
    patch = by_action["patch_patient"]
    assert patch["fields"] == ["email", "medical"]
    assert patch["outcome"] == "200" and patch["actor"]["role"] == "staff"
    assert patch["actor"]["kind"] == "person"

    raw = json.dumps(_chain_items(runtime, tenant.id, _today(runtime)), ensure_ascii=False)
    for secret in (patient["id"], "new.address@example.com", "diabetes", "Zhang", "13800138000"):
        assert secret not in raw, secret  # the trail names the patient by pseudonym only
    full = [json.loads(json.dumps(i)) for i in _chain_items(runtime, tenant.id, _today(runtime))]
    sources = [i["doc"]["M"]["source"]["M"] for i in full]
    assert any(s.get("user_agent", {}).get("S") == "CareLoopConsole/1.0" for s in sources)


def test_a_refused_read_is_recorded_with_its_outcome(
    api: Api, make_tenant: Any, make_patient: Any
) -> None:
    tenant = make_tenant()
    patient = make_patient(tenant)
    stale = api.call(
        "PATCH",
        f"/patients/{patient['id']}",
        tenant.staff,
        {"email": "a@b.example"},
        headers={"If-Match": '"7"'},
    )
    assert stale.status_code == 409
    [latest] = [e for e in _audit(api, tenant, patient["id"]) if e["action"] == "patch_patient"]
    assert latest["outcome"] == "409 version_conflict"
    assert latest["fields"] == []  # a refused change changed nothing


def test_the_chain_verifies_and_an_edited_entry_is_found(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    from chalicelib.domain.audit import CHAIN_SHARDS

    tenant = make_tenant()
    # More entries than chains, so that the longest chain holds two or more: removing its first
    # entry then leaves a gap (a chain emptied entirely, or cut at its end, is not found by
    # its links alone).
    for _ in range(CHAIN_SHARDS // 2 + 1):
        patient = make_patient(tenant)
        api.call("GET", f"/patients/{patient['id']}", tenant.staff)
    day = _today(runtime)
    verified = api.call("GET", f"/audit/verification?day={day}", tenant.admin)
    assert verified.status_code == 200, verified.body
    report = payload(verified)
    assert report["intact"] is True and report["entries"] >= 6

    # Someone with table access rewrites the outcome of the first entry of the longest chain.
    chains: dict[str, list[dict[str, Any]]] = {}
    for item in _chain_items(runtime, tenant.id, day):
        chains.setdefault(item["PK"]["S"], []).append(item)
    pk, entries = max(chains.items(), key=lambda chain: len(chain[1]))
    assert len(entries) >= 2
    shard = int(pk.rsplit("#", 1)[1])
    table = get_settings().table_name
    dynamodb = runtime.client("dynamodb")
    dynamodb.update_item(
        TableName=table,
        Key={"PK": {"S": pk}, "SK": entries[0]["SK"]},
        UpdateExpression="SET #doc.#outcome = :o",
        ExpressionAttributeNames={"#doc": "doc", "#outcome": "outcome"},
        ExpressionAttributeValues={":o": {"S": "404 not_found"}},
    )
    report = payload(api.call("GET", f"/audit/verification?day={day}", tenant.admin))
    assert report["intact"] is False
    reason = "its content does not match its hash"
    assert report["first_broken"] == {"shard": shard, "seq": 1, "reason": reason}

    # ... and removing an entry breaks its chain where it was.
    dynamodb.delete_item(TableName=table, Key={"PK": {"S": pk}, "SK": entries[0]["SK"]})
    report = payload(api.call("GET", f"/audit/verification?day={day}", tenant.admin))
    assert report["first_broken"] == {
        "shard": shard,
        "seq": 1,
        "reason": "an entry is missing here",
    }


def test_admins_see_what_one_member_looked_at(
    runtime: Any, api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    member_id, token = _member(runtime, api, tenant)
    first, second = make_patient(tenant), make_patient(tenant, phone="13900139000")
    for patient in (first, second):
        assert api.call("GET", f"/patients/{patient['id']}", token).status_code == 200
    listed = api.call("GET", f"/audit?actor={member_id}&limit=1", tenant.admin)
    assert listed.status_code == 200, listed.body
    page = payload(listed)
    assert len(page["items"]) == 1 and len(page["items"][0]["patients"]) == 1
    rest = payload(
        api.call("GET", f"/audit?actor={member_id}&cursor={page['next_cursor']}", tenant.admin)
    )
    seen = [p for e in [*page["items"], *rest["items"]] for p in e["patients"]]
    assert sorted(seen) == sorted([first["id"], second["id"]])
    # Only admins read the trail, and the actor must be named.
    assert api.call("GET", f"/audit?actor={member_id}", token).status_code == 403
    missing = api.call("GET", "/audit", tenant.admin)
    assert missing.status_code == 400 and error_paths(missing) == ["actor"]
    bad = api.call("GET", f"/audit?actor={member_id}&cursor=xyz", tenant.admin)
    assert bad.status_code == 400 and error_paths(bad) == ["cursor"]


def test_the_patient_sees_who_accessed_their_record_as_the_hospital_chooses(
    runtime: Any, api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    patient = make_patient(tenant)
    _, token = _member(runtime, api, tenant)
    assert api.call("GET", f"/patients/{patient['id']}", token).status_code == 200
    own = runtime.token("patient", tenant.id, patient["id"])
    lines = payload(api.call("GET", "/me/access-log", own))["items"]
    [read] = [line for line in lines if line["action"] == "get_patient"]
    assert read["who"] == "hospital staff" and read["change"] is False
    assert {"at", "who", "role", "action", "change"} <= set(read)
    assert next(line for line in lines if line["action"] == "create_patient")["change"] is True

    named = api.call(
        "PATCH",
        f"/tenants/{tenant.id}",
        tenant.admin,
        {"privacy": {"access_log_names": "name"}},
        headers={"If-Match": f'"{tenant.doc["version"]}"'},
    )
    assert named.status_code == 200, named.body
    lines = payload(api.call("GET", "/me/access-log", own))["items"]
    assert "王芳" in [line["who"] for line in lines]
    # The patient's own reads are theirs; another patient's log does not show them.
    assert api.call("GET", "/me/access-log", tenant.staff).status_code == 403


def test_a_read_outside_ones_departments_needs_a_reason_and_alerts_privacy(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    departments = [{"id": "cardiology", "name": "心内科"}, {"id": "dermatology", "name": "皮肤科"}]
    tenant = make_tenant(departments=departments)
    topic = runtime.client("sns").create_topic(Name=f"careloop-local-{tenant.id}-privacy")
    _, token = _member(runtime, api, tenant, departments=["cardiology"])
    theirs = make_patient(tenant, departments=["cardiology"])
    other = make_patient(tenant, departments=["dermatology"], phone="13900139000")
    unassigned = make_patient(tenant, phone="13700137000")

    assert api.call("GET", f"/patients/{theirs['id']}", token).status_code == 200
    assert api.call("GET", f"/patients/{unassigned['id']}", token).status_code == 200
    refused = api.call("GET", f"/patients/{other['id']}", token)
    assert refused.status_code == 403 and error_code(refused) == "break_glass_required"
    short = api.call(
        "GET", f"/patients/{other['id']}", token, headers={"X-Break-Glass-Reason": "need"}
    )
    assert short.status_code == 403
    for sublist in ("appointments", "questionnaire-responses"):
        listed = api.call("GET", f"/patients/{other['id']}/{sublist}", token)
        assert listed.status_code == 403 and error_code(listed) == "break_glass_required"
    reason = "patient collapsed in the cardiology waiting room"
    allowed = api.call(
        "GET", f"/patients/{other['id']}", token, headers={"X-Break-Glass-Reason": reason}
    )
    assert allowed.status_code == 200, allowed.body

    entries = _audit(api, tenant, other["id"])
    flagged = [e for e in entries if e.get("break_glass")]
    assert [e["outcome"] for e in flagged] == ["200"] and flagged[0]["break_glass"] == reason
    assert any(e["outcome"].startswith("403") for e in entries if e["action"] == "get_patient")
    alerts = [m for m in runtime.outbox.messages(channel="topic") if m.to == topic["TopicArn"]]
    assert len(alerts) == 1
    assert other["id"] not in alerts[0].body and reason not in alerts[0].body
    own = runtime.token("patient", tenant.id, other["id"])
    lines = payload(api.call("GET", "/me/access-log", own))["items"]
    assert any(line.get("emergency_access") for line in lines)
    # Admins are not fenced by departments.
    assert api.call("GET", f"/patients/{other['id']}", tenant.admin).status_code == 200


def test_another_tenants_admin_finds_nothing(api: Api, make_tenant: Any, make_patient: Any) -> None:
    tenant, other = make_tenant(), make_tenant()
    patient = make_patient(tenant)
    api.call("GET", f"/patients/{patient['id']}", tenant.staff)
    assert _audit(api, other, patient["id"]) == []
