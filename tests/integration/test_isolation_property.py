"""Property: whatever a token asks for, it never sees another tenant's data, and a patient
token never sees another patient. Hypothesis picks the actor, the operation and the target."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api, TenantCtx, payload


@dataclass(frozen=True)
class Actor:
    name: str
    token: str
    tenant: str
    patient: str | None  # set for patient tokens


@dataclass
class World:
    actors: list[Actor]
    patients: dict[str, dict[str, Any]]  # id → doc (with "_tenant")
    # tenant → its webhook ("webhook") and the dead letters its patients' answers became ("dead")
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # tenant → its draw among its patients (run, so revealed to its staff)
    draws: dict[str, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(runtime: Any, api: Api) -> World:
    from tests.conftest import patient_body, tenant_body, unique

    operator = runtime.token("operator")
    actors: list[Actor] = []
    patients: dict[str, dict[str, Any]] = {}
    for label in ("a", "b"):
        tenant_id = unique(f"iso-{label}")
        # Referrals on: the tenant's second patient registers with the first one's code.
        created = api.call(
            "POST", "/tenants", operator, tenant_body(tenant_id, referrals={"enabled": True})
        )
        assert created.status_code == 201
        staff = runtime.token("staff", tenant_id)
        ctx = TenantCtx(tenant_id, {}, operator, runtime.token("admin", tenant_id), staff)
        actors += [
            Actor(f"staff-{label}", ctx.staff, tenant_id, None),
            Actor(f"admin-{label}", ctx.admin, tenant_id, None),
        ]
        referral: dict[str, str] = {}
        for n in range(2):
            body = patient_body(
                name={"given": f"Iso{label}{n}"},
                phone=f"1350013500{n}",
                external_ids={"mrn": f"ISO-{label}-{n}"},
                member_class="iso",
                **referral,
            )
            doc = payload(api.call("POST", "/patients", staff, body))
            patients[doc["id"]] = {**doc, "_tenant": tenant_id}
            token = runtime.token("patient", tenant_id, doc["id"])
            actors.append(Actor(f"patient-{label}{n}", token, tenant_id, doc["id"]))
            code = api.call("GET", "/me/referral-code", token)
            referral = {"referral_code": payload(code)["code"]}
    world = World(actors, patients, seed_webhooks(runtime, api, actors))
    world.draws = seed_draws(runtime, api, actors)
    return world


def seed_draws(runtime: Any, api: Api, actors: list[Actor]) -> dict[str, dict[str, Any]]:
    """Each tenant's draw among its two patients (class `iso`), closed and run."""
    from datetime import timedelta

    from chalicelib import clock

    draw_at = clock.iso(clock.now() + timedelta(minutes=1))
    body = {"name": "Iso draw", "member_classes": ["iso"], "winners": 1, "draw_at": draw_at}
    created = {}
    for admin in (a for a in actors if a.name.startswith("admin")):
        draw = payload(api.call("POST", "/draws", admin.token, body))
        closed = api.call("POST", f"/draws/{draw['id']}/close", admin.token)
        assert payload(closed)["eligible_count"] == 2, closed.body
        created[admin.tenant] = draw
    runtime.clock.advance(timedelta(minutes=2))
    for admin in (a for a in actors if a.name.startswith("admin")):
        path = f"/draws/{created[admin.tenant]['id']}/run"
        ran = api.call("POST", path, admin.token)
        assert ran.status_code == 200, ran.body
        created[admin.tenant] = payload(ran)
    return created


def seed_webhooks(runtime: Any, api: Api, actors: list[Actor]) -> dict[str, dict[str, Any]]:
    """Each tenant's webhook, which its receiver refuses (400): each of its patients' submitted
    answers becomes a dead letter."""
    answers = {"pain": 1, "wound": "healing", "fever": False, "mobility": "normal"}
    seeded: dict[str, dict[str, Any]] = {}
    for admin in (a for a in actors if a.name.startswith("admin")):
        path = f"/iso/{admin.tenant}"
        runtime.webhooks.answer(path, *[400] * 200)
        body = {
            "url": runtime.webhooks.url(path),
            "events": ["questionnaire_response.submitted"],
            "secret": "iso-" + "s" * 24,
        }
        created = api.call("POST", "/webhooks", admin.token, body)
        assert created.status_code == 201, created.body
        for patient in (a for a in actors if a.tenant == admin.tenant and a.patient):
            started = payload(
                api.call(
                    "POST",
                    "/questionnaires/post-operative/responses",
                    patient.token,
                    {"answers": answers},
                )
            )
            submit = f"/me/questionnaire-responses/{started['id']}/submit"
            assert api.call("POST", submit, patient.token).status_code == 200
        runtime.settle()
        dead = payload(api.call("GET", "/webhooks/dead-letters", admin.token))["items"]
        assert len(dead) == 2, dead
        seeded[admin.tenant] = {"webhook": payload(created), "dead": [d["id"] for d in dead]}
    return seeded


OPERATIONS = ["get", "patch", "delete", "list", "phone", "mrn", "appointments", "responses"]
# A patient's own lists: another tenant's or another patient's is a 404, never an empty list.
SUBLISTS = {"appointments": "appointments", "responses": "questionnaire-responses"}
# Reads of one patient's data by id: a patient token may make them of its own record (but
# exports it through /me/export only).
READS = {
    **{operation: f"/patients/{{id}}/{sublist}" for operation, sublist in SUBLISTS.items()},
    "fhir-patient": "/fhir/Patient/{id}",
    "fhir-appointments": "/fhir/Appointment?patient={id}",
    "fhir-responses": "/fhir/QuestionnaireResponse?patient={id}",
    "export": "/patients/{id}/export",
    "timeline": "/patients/{id}/timeline",
}
OPERATIONS += [operation for operation in READS if operation not in OPERATIONS]
# The audit trail: a record's (admins; another tenant's id finds nothing of this tenant's, and
# never the other's), and the patient's own access log; an erasure of another tenant's patient.
PRIVACY_OPERATIONS = ("audit", "access-log", "erase")
OPERATIONS += PRIVACY_OPERATIONS


def privacy_operation(api: Api, actor: Actor, operation: str, target: dict[str, Any]) -> None:
    path = f"/patients/{target['id']}"
    if operation == "audit":
        response = api.call("GET", f"{path}/audit", actor.token)
        assert response.status_code == (200 if actor.name.startswith("admin") else 403)
        if response.status_code == 200 and target["_tenant"] != actor.tenant:
            # Only this tenant's own look-ups of that id (refused, or this very read): nothing
            # the other tenant did with its patient.
            for entry in payload(response)["items"]:
                refused = entry["outcome"][:3] in ("403", "404")
                assert entry["action"] == "get_patient_audit" or refused, entry
    elif operation == "access-log":
        response = api.call("GET", "/me/access-log", actor.token)
        assert response.status_code == (200 if actor.patient else 403)
    elif actor.name.startswith("admin") and not may_see(actor, target):
        # Only another tenant's patient: an erasure that is allowed would empty the world.
        reason = {"reason": "isolation property: must not be found"}
        response = api.call("POST", f"{path}/erasure", actor.token, reason)
        assert response.status_code == 404, response.body


# A tenant's webhooks and dead letters (admins list webhooks; staff and admins dead letters),
# and a replay of the target's tenant's dead letter.
WEBHOOK_LISTS = {"webhooks": "/webhooks", "dead-letters": "/webhooks/dead-letters"}
WEBHOOK_OPERATIONS = (*WEBHOOK_LISTS, "replay")


def webhook_operation(
    world: World, api: Api, actor: Actor, operation: str, target: dict[str, Any]
) -> Any:
    if operation in WEBHOOK_LISTS:
        return api.call("GET", WEBHOOK_LISTS[operation], actor.token)
    dead_letter = world.webhooks[target["_tenant"]]["dead"][0]
    return api.call("POST", f"/webhooks/dead-letters/{dead_letter}/replay", actor.token)


def webhook_statuses(actor: Actor, operation: str, target: dict[str, Any]) -> set[int]:
    if operation == "webhooks":
        return {200} if actor.name.startswith("admin") else {403}
    if actor.patient:
        return {403}
    if operation == "dead-letters":
        return {200}
    # Its own tenant's: replayed, or being replayed (a 409 until that replay has ended).
    return {202, 409} if target["_tenant"] == actor.tenant else {404}


def may_see(actor: Actor, patient: dict[str, Any]) -> bool:
    if patient["_tenant"] != actor.tenant:
        return False
    return actor.patient is None or actor.patient == patient["id"]


def patient_operation(api: Api, actor: Actor, operation: str, target: dict[str, Any]) -> Any:
    # Writes carry a version that never matches, so a permitted write answers 409 and changes
    # nothing, while a forbidden one must not even reveal that the record exists.
    stale = {"If-Match": '"999"'}
    path = f"/patients/{target['id']}"
    calls: dict[str, tuple[str, str, Any, dict[str, str] | None]] = {
        "get": ("GET", path, None, None),
        "patch": ("PATCH", path, {"language": "en"}, stale),
        "delete": ("DELETE", path, None, stale),
        "list": ("GET", "/patients?limit=200", None, None),
        "phone": ("POST", "/patients/search", {"phone": target["phone"]}, None),
        "mrn": ("POST", "/patients/search", {"mrn": target["external_ids"]["mrn"]}, None),
        **{read: ("GET", READS[read].format(id=target["id"]), None, None) for read in READS},
    }
    method, url, body, headers = calls[operation]
    return api.call(method, url, actor.token, body, headers=headers)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_cross_tenant_or_cross_patient_leak(world: World, api: Api, data: st.DataObject) -> None:
    actor = data.draw(st.sampled_from(world.actors), label="actor")
    operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
    target = world.patients[data.draw(st.sampled_from(sorted(world.patients)), label="target")]
    if operation in PRIVACY_OPERATIONS:
        privacy_operation(api, actor, operation, target)
        return
    response = patient_operation(api, actor, operation, target)

    visible = may_see(actor, target)
    if operation in ("list", "phone", "mrn") or (
        operation in ("delete", "export") and actor.patient
    ):
        expected = {403} if actor.patient else {200}
    elif operation in ("get", *READS):
        expected = {200} if visible else {404}
    else:
        expected = {409} if visible else {404}
    assert response.status_code in expected, (actor.name, operation, response.body)

    body = json.dumps(payload(response) or {})
    for other in world.patients.values():
        if not may_see(actor, other):
            assert other["id"] not in body
            assert other["external_ids"]["mrn"] not in body
            assert other["name"]["given"] not in body


@pytest.mark.parametrize("read", sorted(READS.values()))
def test_another_tenants_patient_lists_are_not_found(world: World, api: Api, read: str) -> None:
    """The example behind the property, every time: staff of tenant b asking for a patient of
    tenant a's appointments, answers, FHIR resources or export are told it does not exist, as
    for the patient itself."""
    staff_b = next(a for a in world.actors if a.name == "staff-b")
    theirs = next(p for p in world.patients.values() if p["_tenant"] != staff_b.tenant)
    response = api.call("GET", read.format(id=theirs["id"]), staff_b.token)
    assert response.status_code == 404, response.body
    assert payload(response)["error"]["code"] == "not_found"
    staff_a = next(
        a for a in world.actors if a.tenant == theirs["_tenant"] and a.name.startswith("staff")
    )
    assert api.call("GET", read.format(id=theirs["id"]), staff_a.token).status_code == 200


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_cross_tenant_webhook_or_dead_letter_leak(
    world: World, api: Api, data: st.DataObject
) -> None:
    """The same property for a tenant's webhooks and dead letters (not a patient's records):
    another tenant's are never listed, and replaying one is a 404."""
    actor = data.draw(st.sampled_from(world.actors), label="actor")
    operation = data.draw(st.sampled_from(WEBHOOK_OPERATIONS), label="operation")
    target = world.patients[data.draw(st.sampled_from(sorted(world.patients)), label="target")]
    response = webhook_operation(world, api, actor, operation, target)
    assert response.status_code in webhook_statuses(actor, operation, target), (
        actor.name,
        operation,
        response.body,
    )
    body = json.dumps(payload(response) or {})
    for tenant_id, seeded in world.webhooks.items():
        if tenant_id != actor.tenant:
            assert seeded["webhook"]["id"] not in body and seeded["webhook"]["url"] not in body
            assert not any(dead_letter in body for dead_letter in seeded["dead"])


def test_another_tenants_webhooks_and_dead_letters_are_not_found(world: World, api: Api) -> None:
    """The example behind the property: tenant b's admin cannot delete tenant a's webhook or
    replay its dead letters, and neither shows in tenant b's lists."""
    admin_b = next(a for a in world.actors if a.name == "admin-b")
    theirs = next(seeded for t, seeded in world.webhooks.items() if t != admin_b.tenant)
    deleted = api.call("DELETE", f"/webhooks/{theirs['webhook']['id']}", admin_b.token)
    assert deleted.status_code == 404 and payload(deleted)["error"]["code"] == "not_found"
    for dead_letter in theirs["dead"]:
        replay = api.call("POST", f"/webhooks/dead-letters/{dead_letter}/replay", admin_b.token)
        assert replay.status_code == 404, replay.body
    assert payload(api.call("GET", "/webhooks", admin_b.token))["items"] == [
        world.webhooks[admin_b.tenant]["webhook"]
    ]
    admin_a = next(a for a in world.actors if a.name == "admin-a")
    listed = payload(api.call("GET", "/webhooks", admin_a.token))["items"]
    assert [w["id"] for w in listed] == [theirs["webhook"]["id"]]


def test_an_import_reaches_only_the_importers_tenant(world: World, api: Api) -> None:
    """A FHIR transaction writes to the caller's tenant only: another tenant's MRN system is
    refused, the same MRN makes a patient of the importer's own, and another tenant's patient
    id is a patient CareLoop does not know."""
    admin_b = next(a for a in world.actors if a.name == "admin-b")
    theirs = next(p for p in world.patients.values() if p["_tenant"] != admin_b.tenant)

    def bundle(system_tenant: str, *extra: dict[str, Any]) -> dict[str, Any]:
        patient = {
            "resourceType": "Patient",
            "identifier": [
                {
                    "system": f"urn:careloop:{system_tenant}:mrn",
                    "value": theirs["external_ids"]["mrn"],
                }
            ],
            "name": [{"given": ["Imported"]}],
        }
        entries = [{"resource": patient, "request": {"method": "PUT", "url": "Patient"}}]
        entries += [
            {"resource": r, "request": {"method": "PUT", "url": "Appointment"}} for r in extra
        ]
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    refused = api.call("POST", "/fhir", admin_b.token, bundle(theirs["_tenant"]))
    assert refused.status_code == 400
    assert payload(refused)["error"]["details"][0]["path"] == "$.entry[0].resource.identifier"

    by_their_id = {
        "resourceType": "Appointment",
        "identifier": [{"system": "urn:iso", "value": "X-1"}],
        "status": "booked",
        "serviceType": [{"text": "cardiology"}],
        "start": "2030-01-01T01:00:00Z",
        "end": "2030-01-01T01:30:00Z",
        "participant": [{"actor": {"reference": f"Patient/{theirs['id']}"}, "status": "accepted"}],
    }
    unknown = api.call("POST", "/fhir", admin_b.token, bundle(admin_b.tenant, by_their_id))
    assert unknown.status_code == 400
    assert [d["path"] for d in payload(unknown)["error"]["details"]] == [
        "$.entry[1].resource.participant"
    ]

    made = api.call("POST", "/fhir", admin_b.token, bundle(admin_b.tenant))
    assert made.status_code == 200, made.body
    location = payload(made)["entry"][0]["response"]["location"]
    assert theirs["id"] not in location
    staff_a = next(
        a for a in world.actors if a.tenant == theirs["_tenant"] and a.name.startswith("staff")
    )
    unchanged = payload(api.call("GET", f"/patients/{theirs['id']}", staff_a.token))
    assert unchanged["name"] == theirs["name"] and unchanged["version"] == theirs["version"]
    # Not left in the world: the property's lists would show another tenant's MRN's twin.
    made_id = location.split("/")[1]
    reason = {"reason": "isolation test: an imported twin"}
    erased = api.call("POST", f"/patients/{made_id}/erasure", admin_b.token, reason)
    assert erased.status_code in (200, 202), erased.body


def test_another_tenants_bulk_import_and_files_are_not_found(
    world: World, api: Api, runtime: Any
) -> None:
    """Tenant a's bulk import is a 404 to tenant b's admin (status and report), and tenant b
    cannot name tenant a's files: paths are relative to b's own folder, '..' is refused."""
    from chalicelib.settings import get_settings

    admin_a = next(a for a in world.actors if a.name == "admin-a")
    admin_b = next(a for a in world.actors if a.name == "admin-b")
    runtime.client("s3").put_object(
        Bucket=get_settings().import_bucket, Key=f"{admin_a.tenant}/iso/p.ndjson", Body=b"\n"
    )
    started = api.call("POST", "/fhir/imports", admin_a.token, {"files": ["iso/p.ndjson"]})
    assert started.status_code == 202, started.body
    theirs = payload(started)["id"]
    for path in (f"/fhir/imports/{theirs}", f"/fhir/imports/{theirs}/rejections"):
        response = api.call("GET", path, admin_b.token)
        assert response.status_code == 404 and theirs not in response.body.decode()
    for named in ("iso/p.ndjson", f"../{admin_a.tenant}/iso/p.ndjson"):
        response = api.call("POST", "/fhir/imports", admin_b.token, {"files": [named]})
        assert response.status_code == 400, response.body


@pytest.fixture(scope="module")
def seeded_figures(world: World) -> dict[str, str]:
    """Each tenant's counters, with a department named after the tenant: tenant → that name."""
    from datetime import timedelta

    from chalicelib import clock
    from chalicelib.domain import analytics
    from chalicelib.store.analytics import AnalyticsRepository

    named: dict[str, str] = {}
    for tenant_id in {actor.tenant for actor in world.actors}:
        department = f"dept-{tenant_id}"
        moved: dict[analytics.CounterKey, int] = {
            ("appointments", "booked", "2026-11-20", (("department", department),)): 3,
            ("aftercare", "tasks_opened", "2026-11-20", (("department", department),)): 1,
        }
        AnalyticsRepository().apply_once(
            f"isolation-{tenant_id}", tenant_id, analytics.counter_moves(moved)
        )
        named[tenant_id] = department
        # Each of its patients missed a visit yesterday: both are on its drifting-away list.
        yesterday = (clock.now() - timedelta(days=1)).date().isoformat()
        for patient_id in (a.patient for a in world.actors if a.tenant == tenant_id and a.patient):
            AnalyticsRepository().change_signals(
                tenant_id, patient_id, {f"noshow#{yesterday}#a-iso-{patient_id}"}, set()
            )
    return named


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_tenant_reads_anothers_figures(
    world: World, api: Api, seeded_figures: dict[str, str], data: st.DataObject
) -> None:
    actor = data.draw(st.sampled_from(world.actors), label="actor")
    measure = data.draw(st.sampled_from(["appointments", "aftercare", "slots"]), label="measure")
    query = f"/analytics/{measure}?from=2026-11-01&to=2026-11-30&group_by=department"
    response = api.call("GET", query, actor.token)
    if actor.patient:
        assert response.status_code == 403, response.body
        return
    assert response.status_code == 200, response.body
    groups = {row["group"] for row in payload(response)["rows"]}
    assert groups <= {seeded_figures[actor.tenant]}, (actor.name, groups)
    if measure == "appointments":
        assert groups == {seeded_figures[actor.tenant]}
    drifting = payload(api.call("GET", "/analytics/drifting-away", actor.token))["items"]
    own = {a.patient for a in world.actors if a.tenant == actor.tenant and a.patient}
    assert {p["patient_id"] for p in drifting} == own, actor.name


# A tenant's draws (staff list and read them, admins run them) and a patient's own draws and
# referrals: another tenant's draw is a 404, and nobody's list names another tenant's draw or,
# for a patient, another patient.
DRAW_OPERATIONS = {
    "draw": ("GET", ""),
    "draw-verification": ("GET", "/verification"),
    "draw-close": ("POST", "/close"),
    "draw-run": ("POST", "/run"),
}
OWN_LISTS = {
    "draws": "/draws",
    "my-draws": "/me/draws",
    "my-referrals": "/me/referrals",
    "my-referral-code": "/me/referral-code",
}


def draw_statuses(actor: Actor, operation: str, draw_tenant: str) -> set[int]:
    if operation in OWN_LISTS:
        patients_only = operation.startswith("my-")
        return {200} if bool(actor.patient) == patients_only else {403}
    if actor.patient or (operation == "draw-run" and actor.name.startswith("staff")):
        return {403}
    if draw_tenant != actor.tenant:
        return {404}
    # The draw has run: closing it again is a 409; running it again answers its result.
    return {409} if operation == "draw-close" else {200}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_cross_tenant_draw_or_referral_leak(world: World, api: Api, data: st.DataObject) -> None:
    actor = data.draw(st.sampled_from(world.actors), label="actor")
    operation = data.draw(st.sampled_from([*DRAW_OPERATIONS, *OWN_LISTS]), label="operation")
    draw_tenant = data.draw(st.sampled_from(sorted(world.draws)), label="draw of")
    draw = world.draws[draw_tenant]
    if operation in OWN_LISTS:
        response = api.call("GET", OWN_LISTS[operation], actor.token)
    else:
        method, suffix = DRAW_OPERATIONS[operation]
        response = api.call(method, f"/draws/{draw['id']}{suffix}", actor.token)
    assert response.status_code in draw_statuses(actor, operation, draw_tenant), (
        actor.name,
        operation,
        response.body,
    )
    body = json.dumps(payload(response) or {})
    for tenant_id, other in world.draws.items():
        if tenant_id != actor.tenant:
            assert other["id"] not in body and other["seed"] not in body
    for patient in world.patients.values():
        if not may_see(actor, patient):
            assert patient["id"] not in body, (actor.name, operation)
    if operation == "my-draws" and response.status_code == 200:
        items = payload(response)["items"]
        assert [d["id"] for d in items] == [world.draws[actor.tenant]["id"]]
        assert items[0]["won"] is (actor.patient in world.draws[actor.tenant]["winner_ids"])


def test_a_referral_links_patients_of_one_tenant_only(world: World, api: Api) -> None:
    """Each tenant's second patient was registered with its first one's code: the first sees
    one referral (a masked initial), and a code of tenant a is unknown at tenant b."""
    for label in ("a", "b"):
        first = next(a for a in world.actors if a.name == f"patient-{label}0")
        second = next(a for a in world.actors if a.name == f"patient-{label}1")
        referred = payload(api.call("GET", "/me/referrals", first.token))["items"]
        assert [r["referred"] for r in referred] == ["I***"]
        assert payload(api.call("GET", "/me/referrals", second.token))["items"] == []
    patient_a = next(a for a in world.actors if a.name == "patient-a0")
    code_a = payload(api.call("GET", "/me/referral-code", patient_a.token))["code"]
    staff_b = next(a for a in world.actors if a.name == "staff-b")
    body = {"name": {"given": "Cross"}, "phone": "13500135099", "referral_code": code_a}
    refused = api.call("POST", "/patients", staff_b.token, body)
    assert refused.status_code == 400, refused.body
    assert [d["path"] for d in payload(refused)["error"]["details"]] == ["$.referral_code"]


@pytest.fixture(scope="module")
def vouchers(world: World, runtime: Any, api: Api) -> dict[str, str]:
    """Each patient's ledger with an adjustment and a redemption; patient → its voucher's code
    (taken at the desk already)."""
    codes: dict[str, str] = {}
    for tenant_id in sorted({p["_tenant"] for p in world.patients.values()}):
        admin = runtime.token("admin", tenant_id)
        staff = runtime.token("staff", tenant_id)
        assert api.call("PUT", "/loyalty/rules", admin, {"enabled": True}).status_code == 200
        reward = {"name": {"en": "Gift"}, "kind": "gift", "points": 100}
        assert api.call("PUT", "/rewards/gift", admin, reward).status_code == 200
        api.call("POST", "/rewards/gift/restock", admin, {"quantity": 10})
        for patient in world.patients.values():
            if patient["_tenant"] != tenant_id:
                continue
            given = api.call(
                "POST",
                f"/patients/{patient['id']}/points/adjustments",
                staff,
                {"points": 500, "reason": "Seeded for the property"},
            )
            assert given.status_code == 201, given.body
            token = runtime.token("patient", tenant_id, patient["id"])
            redeemed = api.call("POST", "/me/redemptions", token, {"reward_id": "gift"})
            assert redeemed.status_code == 201, redeemed.body
            codes[patient["id"]] = payload(redeemed)["code"]
            used = api.call("POST", f"/vouchers/{codes[patient['id']]}/use", staff)
            assert used.status_code == 200, used.body
    return codes


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_cross_tenant_or_cross_patient_ledger_or_voucher(
    world: World, vouchers: dict[str, str], api: Api, data: st.DataObject
) -> None:
    actor = data.draw(st.sampled_from(world.actors), label="actor")
    operation = data.draw(st.sampled_from(["points", "adjust", "voucher", "mine"]), label="op")
    target = world.patients[data.draw(st.sampled_from(sorted(world.patients)), label="target")]
    same_tenant = target["_tenant"] == actor.tenant
    if operation == "points":
        response = api.call("GET", f"/patients/{target['id']}/points", actor.token)
        expected = {403} if actor.patient else ({200} if same_tenant else {404})
    elif operation == "adjust":
        # More than any balance: a permitted adjustment is refused and changes nothing.
        response = api.call(
            "POST",
            f"/patients/{target['id']}/points/adjustments",
            actor.token,
            {"points": -(10**6), "reason": "Probing another ledger"},
        )
        expected = {403} if actor.patient else ({409} if same_tenant else {404})
    elif operation == "voucher":
        response = api.call("POST", f"/vouchers/{vouchers[target['id']]}/use", actor.token)
        expected = {403} if actor.patient else ({409} if same_tenant else {404})
    else:
        path = (
            "/me/vouchers" if data.draw(st.booleans(), label="vouchers") else "/me/points/history"
        )
        response = api.call("GET", path, actor.token)
        expected = {200} if actor.patient else {403}
    assert response.status_code in expected, (actor.name, operation, response.body)
    body = json.dumps(payload(response) or {})
    for patient_id, code in vouchers.items():
        if actor.patient is not None and patient_id != actor.patient:
            assert code not in body, "another patient's voucher"
        if world.patients[patient_id]["_tenant"] != actor.tenant:
            assert code not in body and patient_id not in body, "another tenant's ledger"


@pytest.fixture(scope="module")
def seeded_complaints(world: World, api: Api) -> dict[str, dict[str, Any]]:
    """Each patient's own complaint, with a text naming them: complaint id → its owner."""
    seeded: dict[str, dict[str, Any]] = {}
    for actor in (a for a in world.actors if a.patient):
        body = {
            "category": "waiting_time",
            "department": "cardiology",
            "text": f"complaint of {actor.patient}",
        }
        filed = api.call("POST", "/complaints", actor.token, body)
        assert filed.status_code == 201, filed.body
        seeded[payload(filed)["id"]] = {"tenant": actor.tenant, "patient": actor.patient}
    return seeded


COMPLAINT_OPERATIONS = ("list", "get", "status", "mine")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_cross_tenant_or_cross_patient_complaint_leak(
    world: World, api: Api, seeded_complaints: dict[str, dict[str, Any]], data: st.DataObject
) -> None:
    """Staff see their tenant's complaints only (another's is a 404); a patient sees their own
    only, through /me/complaints, and no staff route."""
    actor = data.draw(st.sampled_from(world.actors), label="actor")
    operation = data.draw(st.sampled_from(COMPLAINT_OPERATIONS), label="operation")
    complaint_id = data.draw(st.sampled_from(sorted(seeded_complaints)), label="complaint")
    owner = seeded_complaints[complaint_id]
    calls = {
        "list": ("GET", "/complaints?limit=200", None),
        "get": ("GET", f"/complaints/{complaint_id}", None),
        # A change the table refuses (open → open is not one): allowed ones answer 409.
        "status": ("POST", f"/complaints/{complaint_id}/status", {"status": "in_progress"}),
        "mine": ("GET", "/me/complaints", None),
    }
    method, path, body = calls[operation]
    response = api.call(method, path, actor.token, body)
    if operation == "mine":
        expected = {200} if actor.patient else {403}
    elif actor.patient:
        expected = {403}
    elif operation == "list":
        expected = {200}
    elif owner["tenant"] != actor.tenant:
        expected = {404}
    else:
        expected = {200, 409} if operation == "status" else {200}
    assert response.status_code in expected, (actor.name, operation, response.body)
    shown = json.dumps(payload(response) or {})
    for other_id, other in seeded_complaints.items():
        visible = other["tenant"] == actor.tenant and (
            actor.patient is None or actor.patient == other["patient"]
        )
        if not visible:
            assert other_id not in shown and f"complaint of {other['patient']}" not in shown
