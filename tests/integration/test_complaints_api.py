"""`/complaints`: filed by patients (their own) and staff (for a patient), listed and worked by
staff (fenced to their departments), read by the patient without staff's notes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, TenantCtx, error_code, error_paths, payload, unique

BODY = {"category": "waiting_time", "department": "cardiology", "text": "I waited two hours."}


@pytest.fixture
def world(runtime: Any, api: Api, make_tenant: Any, make_patient: Any) -> dict[str, Any]:
    departments = [{"id": "cardiology", "name": "心内科"}, {"id": "dermatology", "name": "皮肤科"}]
    tenant: TenantCtx = make_tenant(departments=departments)
    patient = make_patient(tenant)
    other = make_patient(tenant, phone="13900139001")
    return {
        "tenant": tenant,
        "patient": patient,
        "token": runtime.token("patient", tenant.id, patient["id"]),
        "other_token": runtime.token("patient", tenant.id, other["id"]),
    }


def test_a_patient_files_their_own_and_reads_it_without_staff_notes(
    api: Api, world: dict[str, Any]
) -> None:
    filed = api.call("POST", "/complaints", world["token"], BODY)
    assert filed.status_code == 201, filed.body
    complaint = payload(filed)
    assert complaint["status"] == "open" and complaint["reference"].startswith("C-")
    assert filed.headers["Location"] == f"/complaints/{complaint['id']}"
    staff = world["tenant"].staff
    seen = payload(api.call("GET", f"/complaints/{complaint['id']}", staff))
    assert seen["source"] == "patient" and seen["patient_id"] == world["patient"]["id"]
    note = {"status": "in_progress", "note": "internal: ask the clinic manager"}
    assert api.call("POST", f"/complaints/{complaint['id']}/status", staff, note).status_code == 200
    [mine] = payload(api.call("GET", "/me/complaints", world["token"]))["items"]
    assert mine["status"] == "in_progress" and "internal" not in str(mine)
    assert [h["status"] for h in mine["history"]] == ["open", "in_progress"]
    assert payload(api.call("GET", "/me/complaints", world["other_token"]))["items"] == []
    # Staff see who changed it, when, and the note.
    history = payload(api.call("GET", f"/complaints/{complaint['id']}", staff))["history"]
    assert history[-1]["note"] == note["note"] and history[-1]["role"] == "staff"


def test_400_names_the_field(api: Api, world: dict[str, Any]) -> None:
    staff = world["tenant"].staff
    missing = api.call("POST", "/complaints", staff, BODY)
    assert missing.status_code == 400 and error_paths(missing) == ["$.patient_id"]
    wrong = api.call("POST", "/complaints", world["token"], {**BODY, "category": "noise"})
    assert wrong.status_code == 400 and error_paths(wrong) == ["$.category"]
    unknown = api.call("POST", "/complaints", world["token"], {**BODY, "department": "eyes"})
    assert unknown.status_code == 400 and error_paths(unknown) == ["$.department"]
    not_theirs = {**BODY, "appointment_id": "a-0123456789abcdef"}
    refused = api.call("POST", "/complaints", world["token"], not_theirs)
    assert refused.status_code == 400 and error_paths(refused) == ["$.appointment_id"]
    bad_status = api.call("GET", "/complaints?status=lost", staff)
    assert bad_status.status_code == 400 and error_paths(bad_status) == ["status"]


def test_409_on_a_status_change_the_table_refuses(api: Api, world: dict[str, Any]) -> None:
    staff = world["tenant"].staff
    body = {**BODY, "patient_id": world["patient"]["id"]}
    complaint = payload(api.call("POST", "/complaints", staff, body))
    path = f"/complaints/{complaint['id']}/status"
    closing = {"status": "in_progress", "closing_message": "too early"}
    assert api.call("POST", path, staff, closing).status_code == 400
    done = api.call("POST", path, staff, {"status": "closed_without_resolution", "note": "dup"})
    assert done.status_code == 200, done.body
    again = api.call("POST", path, staff, {"status": "in_progress"})
    assert again.status_code == 409 and error_code(again) == "invalid_status_change"


def test_roles_and_other_tenants_and_patients(
    runtime: Any, api: Api, world: dict[str, Any], make_tenant: Any
) -> None:
    complaint = payload(api.call("POST", "/complaints", world["token"], BODY))
    path = f"/complaints/{complaint['id']}"
    assert api.call("GET", "/complaints", world["token"]).status_code == 403
    assert api.call("GET", path, world["token"]).status_code == 403
    change = {"status": "resolved"}
    assert api.call("POST", f"{path}/status", world["token"], change).status_code == 403
    assert api.call("GET", "/me/complaints", world["tenant"].staff).status_code == 403
    # A patient cannot file for another patient (not found, not a hint it exists).
    others = {**BODY, "patient_id": "p-0000000000000000"}
    assert api.call("POST", "/complaints", world["token"], others).status_code == 404
    elsewhere: TenantCtx = make_tenant()
    assert api.call("GET", path, elsewhere.staff).status_code == 404
    assert api.call("POST", f"{path}/status", elsewhere.admin, change).status_code == 404
    listed = payload(api.call("GET", "/complaints", elsewhere.staff))["items"]
    assert complaint["id"] not in str(listed)
    for_theirs = {**BODY, "patient_id": world["patient"]["id"]}
    assert api.call("POST", "/complaints", elsewhere.staff, for_theirs).status_code in (400, 404)


def dermatology_member(runtime: Any, api: Api, tenant: TenantCtx) -> str:
    """A signed-in staff member assigned to dermatology only: their token."""
    from local.identity import sign_in_invited

    email = f"{unique('derm')}@hospital.example.com"
    invited = api.call(
        "POST",
        "/staff",
        tenant.admin,
        {"email": email, "name": "Derm", "departments": ["dermatology"]},
    )
    assert invited.status_code == 201, invited.body
    return sign_in_invited(runtime.client("cognito-idp"), runtime.pool, email)


def test_staff_assigned_to_departments_see_only_theirs(
    runtime: Any, api: Api, world: dict[str, Any]
) -> None:
    tenant = world["tenant"]
    patient_id = world["patient"]["id"]
    for department in ("cardiology", "dermatology"):
        body = {**BODY, "department": department, "patient_id": patient_id}
        assert api.call("POST", "/complaints", tenant.staff, body).status_code == 201
    token = dermatology_member(runtime, api, tenant)
    listed = payload(api.call("GET", "/complaints", token))["items"]
    assert {c["department"] for c in listed} == {"dermatology"}
    fenced = api.call("GET", "/complaints?department=cardiology", token)
    assert fenced.status_code == 403 and error_code(fenced) == "departments_only"
    everything = payload(api.call("GET", "/complaints", tenant.admin))["items"]
    assert {c["department"] for c in everything} == {"cardiology", "dermatology"}
    [cardiology] = [c for c in everything if c["department"] == "cardiology"]
    assert api.call("GET", f"/complaints/{cardiology['id']}", token).status_code == 404
    page = payload(api.call("GET", "/complaints?limit=1", tenant.admin))
    rest = payload(
        api.call("GET", f"/complaints?limit=1&cursor={page['next_cursor']}", tenant.admin)
    )
    assert page["items"][0]["id"] != rest["items"][0]["id"] and "next_cursor" not in rest
    resolved = payload(api.call("GET", "/complaints?status=resolved", tenant.admin))["items"]
    assert resolved == []
    still_open = payload(api.call("GET", "/complaints?status=open", tenant.admin))["items"]
    assert len(still_open) == 2


def test_filing_for_a_patient_outside_ones_departments_needs_a_reason(
    runtime: Any, api: Api, world: dict[str, Any], make_patient: Any
) -> None:
    tenant = world["tenant"]
    theirs = make_patient(tenant, departments=["cardiology"], phone="13700137011")
    token = dermatology_member(runtime, api, tenant)
    body = {**BODY, "department": "dermatology", "patient_id": theirs["id"]}
    refused = api.call("POST", "/complaints", token, body)
    assert refused.status_code == 403 and error_code(refused) == "break_glass_required"
    reason = {"X-Break-Glass-Reason": "The patient phoned the dermatology desk to complain"}
    filed = api.call("POST", "/complaints", token, body, headers=reason)
    assert filed.status_code == 201, filed.body
