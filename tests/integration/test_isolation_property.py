"""Property: whatever a token asks for, it never sees another tenant's data, and a patient
token never sees another patient. Hypothesis picks the actor, the operation and the target."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@pytest.fixture(scope="module")
def world(runtime: Any, api: Api) -> World:
    from tests.conftest import patient_body, tenant_body, unique

    operator = runtime.token("operator")
    actors: list[Actor] = []
    patients: dict[str, dict[str, Any]] = {}
    for label in ("a", "b"):
        tenant_id = unique(f"iso-{label}")
        assert api.call("POST", "/tenants", operator, tenant_body(tenant_id)).status_code == 201
        staff = runtime.token("staff", tenant_id)
        ctx = TenantCtx(tenant_id, {}, operator, runtime.token("admin", tenant_id), staff)
        actors += [
            Actor(f"staff-{label}", ctx.staff, tenant_id, None),
            Actor(f"admin-{label}", ctx.admin, tenant_id, None),
        ]
        for n in range(2):
            body = patient_body(
                name={"given": f"Iso{label}{n}"},
                phone=f"1350013500{n}",
                external_ids={"mrn": f"ISO-{label}-{n}"},
            )
            doc = payload(api.call("POST", "/patients", staff, body))
            patients[doc["id"]] = {**doc, "_tenant": tenant_id}
            actors.append(
                Actor(
                    f"patient-{label}{n}",
                    runtime.token("patient", tenant_id, doc["id"]),
                    tenant_id,
                    doc["id"],
                )
            )
    return World(actors, patients)


OPERATIONS = ["get", "patch", "delete", "list", "phone", "mrn", "appointments", "responses"]
# A patient's own lists: another tenant's or another patient's is a 404, never an empty list.
SUBLISTS = {"appointments": "appointments", "responses": "questionnaire-responses"}


def may_see(actor: Actor, patient: dict[str, Any]) -> bool:
    if patient["_tenant"] != actor.tenant:
        return False
    return actor.patient is None or actor.patient == patient["id"]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_cross_tenant_or_cross_patient_leak(world: World, api: Api, data: st.DataObject) -> None:
    actor = data.draw(st.sampled_from(world.actors), label="actor")
    operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
    target = world.patients[data.draw(st.sampled_from(sorted(world.patients)), label="target")]
    # Writes carry a version that never matches, so a permitted write answers 409 and changes
    # nothing, while a forbidden one must not even reveal that the record exists.
    stale = {"If-Match": '"999"'}
    path = f"/patients/{target['id']}"
    if operation == "get":
        response = api.call("GET", path, actor.token)
    elif operation == "patch":
        response = api.call("PATCH", path, actor.token, {"language": "en"}, headers=stale)
    elif operation == "delete":
        response = api.call("DELETE", path, actor.token, headers=stale)
    elif operation == "list":
        response = api.call("GET", "/patients?limit=200", actor.token)
    elif operation in SUBLISTS:
        response = api.call("GET", f"{path}/{SUBLISTS[operation]}", actor.token)
    elif operation == "phone":
        search = {"phone": target["phone"]}
        response = api.call("POST", "/patients/search", actor.token, search)
    else:
        search = {"mrn": target["external_ids"]["mrn"]}
        response = api.call("POST", "/patients/search", actor.token, search)

    visible = may_see(actor, target)
    if operation in ("list", "phone", "mrn") or (operation == "delete" and actor.patient):
        expected = {403} if actor.patient else {200}
    elif operation in ("get", *SUBLISTS):
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


@pytest.mark.parametrize("sublist", sorted(SUBLISTS.values()))
def test_another_tenants_patient_lists_are_not_found(world: World, api: Api, sublist: str) -> None:
    """The example behind the property, every time: staff of tenant b asking for a patient of
    tenant a's appointments or answers are told it does not exist, as for the patient itself."""
    staff_b = next(a for a in world.actors if a.name == "staff-b")
    theirs = next(p for p in world.patients.values() if p["_tenant"] != staff_b.tenant)
    response = api.call("GET", f"/patients/{theirs['id']}/{sublist}", staff_b.token)
    assert response.status_code == 404, response.body
    assert payload(response)["error"]["code"] == "not_found"
    staff_a = next(
        a for a in world.actors if a.tenant == theirs["_tenant"] and a.name.startswith("staff")
    )
    assert api.call("GET", f"/patients/{theirs['id']}/{sublist}", staff_a.token).status_code == 200
