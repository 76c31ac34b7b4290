"""Patients through the API: profile rules, concurrency, paging, lookups, soft delete, and the
edge cases a mobile app will hit (bad JSON, wrong content type, big bodies)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.conftest import Api, TenantCtx, error_paths, patient_body, payload


def test_create_normalises_and_get_returns_etag(api: Api, tenant: TenantCtx) -> None:
    created = api.call("POST", "/patients", tenant.staff, patient_body())
    assert created.status_code == 201
    doc = payload(created)
    assert doc["phone"] == "+8613800138000"
    assert doc["time_zone"] == "Asia/Shanghai" and doc["language"] == "zh-CN"
    got = api.call("GET", f"/patients/{doc['id']}", tenant.staff)
    assert got.status_code == 200
    assert got.headers["ETag"] == '"1"'
    assert payload(got) == doc


def test_every_failing_field_is_listed(api: Api, tenant: TenantCtx, make_patient: Any) -> None:
    body = {"name": {"given": ""}, "phone": "12345", "email": "nope", "nickname": "W"}
    response = api.call("POST", "/patients", tenant.staff, body)
    assert response.status_code == 400
    # The phone is judged in the tenant's country, beyond the schema: listed all the same.
    assert set(error_paths(response)) == {"$.name.given", "$.email", "$.nickname", "$.phone"}
    response = api.call("POST", "/patients", tenant.staff, patient_body(phone="12345"))
    assert error_paths(response) == ["$.phone"]
    patient = make_patient(tenant)
    patch = {"email": "nope", "guardian": {"name": "Li", "relationship": "parent", "phone": "1"}}
    response = api.call(
        "PATCH", f"/patients/{patient['id']}", tenant.staff, patch, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 400
    assert set(error_paths(response)) == {"$.email", "$.guardian.phone"}


# Passes jsonschema's own email check (it looks for an "@") and the schema's pattern.
BAD_EMAIL = "6hx#5@f9anknoh.info*"


def test_an_email_that_is_not_an_address_is_refused(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    response = api.call("POST", "/patients", tenant.staff, patient_body(email=BAD_EMAIL))
    assert response.status_code == 400, response.body
    assert error_paths(response) == ["$.email"]
    patient = make_patient(tenant)
    path = f"/patients/{patient['id']}"
    response = api.call(
        "PATCH", path, tenant.staff, {"email": BAD_EMAIL}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 400, response.body
    assert error_paths(response) == ["$.email"]
    assert payload(api.call("GET", path, tenant.staff))["email"] == patient["email"]


def test_malformed_json_wrong_type_and_oversized_bodies(api: Api, tenant: TenantCtx) -> None:
    bad_json = api.call("POST", "/patients", tenant.staff, b'{"name": ')
    assert bad_json.status_code == 400 and error_paths(bad_json) == ["$"]
    text = api.call(
        "POST", "/patients", tenant.staff, b"name=x", headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    assert payload(text)["error"]["code"] == "unsupported_media_type"
    huge = patient_body(name={"given": "W", "family": "x" * 70_000})
    too_big = api.call("POST", "/patients", tenant.staff, huge)
    assert too_big.status_code == 413
    not_utf8 = api.call("POST", "/patients", tenant.staff, b"\xff\xfe{")
    assert not_utf8.status_code == 400
    deep = api.call("POST", "/patients", tenant.staff, b"[" * 30_000 + b"]" * 30_000)
    assert deep.status_code == 400 and error_paths(deep) == ["$"]
    wrong_method = api.call("PUT", "/patients", tenant.staff, patient_body())
    assert wrong_method.status_code == 405
    assert payload(wrong_method)["error"]["code"] == "method_not_allowed"


def test_patch_needs_the_current_version(api: Api, tenant: TenantCtx, make_patient: Any) -> None:
    patient = make_patient(tenant)
    path = f"/patients/{patient['id']}"
    change = {"member_class": "vip", "medical": {"conditions": ["type2-diabetes"]}}
    assert api.call("PATCH", path, tenant.staff, change).status_code == 428
    assert (
        api.call("PATCH", path, tenant.staff, change, headers={"If-Match": "abc"}).status_code
        == 400
    )
    first = api.call("PATCH", path, tenant.staff, change, headers={"If-Match": '"1"'})
    assert first.status_code == 200 and first.headers["ETag"] == '"2"'
    # A second writer who read version 1 loses instead of overwriting.
    second = api.call(
        "PATCH", path, tenant.staff, {"member_class": "standard"}, headers={"If-Match": '"1"'}
    )
    assert second.status_code == 409
    assert payload(api.call("GET", path, tenant.staff))["member_class"] == "vip"


def test_merge_patch_removes_with_null(api: Api, tenant: TenantCtx, make_patient: Any) -> None:
    patient = make_patient(tenant, member_class="vip")
    path = f"/patients/{patient['id']}"
    response = api.call(
        "PATCH",
        path,
        tenant.staff,
        {"member_class": None},
        headers={"If-Match": '"1"', "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200
    assert "member_class" not in payload(response)


def test_paging_visits_every_patient_once(api: Api, tenant: TenantCtx, make_patient: Any) -> None:
    ids = {make_patient(tenant, name={"given": f"P{i}"})["id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = payload(api.call("GET", "/patients" + query, tenant.staff))
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
    assert pages == 3
    bad = api.call("GET", "/patients?cursor=garbage!", tenant.staff)
    assert bad.status_code == 400 and error_paths(bad) == ["cursor"]


def test_lookup_by_phone_and_mrn(api: Api, tenant: TenantCtx, make_patient: Any) -> None:
    mother = make_patient(tenant, phone="13900139000", external_ids={"mrn": "M-100"})
    child = make_patient(
        tenant,
        phone="+86 139 0013 9000",
        birth_date="2019-01-01",
        guardian={"name": "Mum", "relationship": "parent", "phone": "13900139000"},
    )

    def search(body: dict[str, Any]) -> Any:
        return api.call("POST", "/patients/search", tenant.staff, body)

    by_phone = payload(search({"phone": "139-0013-9000"}))
    assert {p["id"] for p in by_phone["items"]} == {mother["id"], child["id"]}
    assert len(payload(search({"phone": "139-0013-9000", "limit": 1}))["items"]) == 1
    assert [p["id"] for p in payload(search({"mrn": "M-100"}))["items"]] == [mother["id"]]
    assert payload(search({"mrn": "NOPE"}))["items"] == []
    assert error_paths(search({"phone": "123"})) == ["phone"]
    assert error_paths(search({"mrn": "M-100\n"})) == ["$.mrn"]
    assert error_paths(search({"phone": "13900139000", "mrn": "M-100"})) == ["phone"]
    assert search({}).status_code == 400


def test_no_route_takes_phi_in_its_path_or_query(runtime: Any) -> None:
    """Access logs (API Gateway's, a load balancer's, the local server's) keep URLs: a phone
    number, an MRN, a name or an email never goes in one."""
    from local.openapi_doc import full_spec

    phi = re.compile(r"phone|mrn|name|email|birth", re.IGNORECASE)
    for path, item in full_spec()["paths"].items():
        assert not phi.search(path), path
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                assert not phi.search(parameter["name"]), (method, path, parameter["name"])


def test_mrn_is_unique_and_moves_with_a_change(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    first = make_patient(tenant, external_ids={"mrn": "M-1"})
    taken = api.call("POST", "/patients", tenant.staff, patient_body(external_ids={"mrn": "M-1"}))
    assert taken.status_code == 409 and payload(taken)["error"]["code"] == "mrn_taken"
    moved = api.call(
        "PATCH",
        f"/patients/{first['id']}",
        tenant.staff,
        {"external_ids": {"mrn": "M-2"}},
        headers={"If-Match": '"1"'},
    )
    assert moved.status_code == 200
    assert (
        api.call(
            "POST", "/patients", tenant.staff, patient_body(external_ids={"mrn": "M-1"})
        ).status_code
        == 201
    )
    clash = api.call(
        "PATCH",
        f"/patients/{first['id']}",
        tenant.staff,
        {"external_ids": {"mrn": "M-1"}},
        headers={"If-Match": '"2"'},
    )
    assert clash.status_code == 409 and payload(clash)["error"]["code"] == "mrn_taken"
    assert payload(api.call("GET", f"/patients/{first['id']}", tenant.staff))["version"] == 2


def test_soft_delete_hides_everywhere(api: Api, tenant: TenantCtx, make_patient: Any) -> None:
    patient = make_patient(tenant, phone="13700137000", external_ids={"mrn": "DEL-1"})
    path = f"/patients/{patient['id']}"
    assert api.call("DELETE", path, tenant.staff, headers={"If-Match": '"9"'}).status_code == 409
    assert api.call("DELETE", path, tenant.staff).status_code == 204
    assert api.call("GET", path, tenant.staff).status_code == 404
    assert api.call("DELETE", path, tenant.staff).status_code == 404
    listed = payload(api.call("GET", "/patients", tenant.staff))["items"]
    assert patient["id"] not in [p["id"] for p in listed]
    for search in ({"phone": "13700137000"}, {"mrn": "DEL-1"}):
        found = api.call("POST", "/patients/search", tenant.staff, search)
        assert payload(found)["items"] == [], search


def test_patient_token_reaches_only_its_own_record(
    runtime: Any, api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    me, other = make_patient(tenant), make_patient(tenant)
    token = runtime.token("patient", tenant.id, me["id"])
    assert api.call("GET", f"/patients/{me['id']}", token).status_code == 200
    assert api.call("GET", f"/patients/{other['id']}", token).status_code == 404
    assert api.call("POST", "/patients", token, patient_body()).status_code == 403
    assert api.call("DELETE", f"/patients/{me['id']}", token).status_code == 403
    own = api.call(
        "PATCH",
        f"/patients/{me['id']}",
        token,
        {"language": "en", "consent": {"sms": {"status": "withdrawn", "method": "app"}}},
        headers={"If-Match": '"1"'},
    )
    assert own.status_code == 200
    assert payload(own)["consent"]["sms"]["status"] == "withdrawn"
    clinical = api.call(
        "PATCH",
        f"/patients/{me['id']}",
        token,
        {"member_class": "vip"},
        headers={"If-Match": '"2"'},
    )
    assert clinical.status_code == 403


def test_ids_that_cannot_exist_are_not_found(api: Api, tenant: TenantCtx) -> None:
    for weird in ("P-UPPER", "x", "a#b", "%23PROFILE", "-leading", "a" * 41):
        assert api.call("GET", f"/patients/{weird}", tenant.staff).status_code == 404, weird
    assert api.call("GET", "/tenants/T%23x", tenant.admin).status_code == 404


def test_token_of_a_deleted_or_unknown_tenant(runtime: Any, api: Api) -> None:
    orphan = runtime.token("staff", "no-such-tenant")
    assert api.call("POST", "/patients", orphan, patient_body()).status_code == 404
    assert api.call("GET", "/patients/p-1", orphan).status_code == 404


def test_nested_optional_fields_can_be_removed(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    patient = make_patient(tenant, external_ids={"mrn": "RM-1", "fhir_id": "f-1"})
    path = f"/patients/{patient['id']}"
    removed = api.call(
        "PATCH",
        path,
        tenant.staff,
        {"external_ids": {"mrn": None}, "name": {"family": None}},
        headers={"If-Match": '"1"'},
    )
    assert removed.status_code == 200, removed.body
    assert payload(removed)["external_ids"] == {"fhir_id": "f-1"}
    assert payload(removed)["name"] == {"given": "Wei"}
    # The MRN claim went with it: another patient may now take the number.
    assert (
        api.call(
            "POST", "/patients", tenant.staff, patient_body(external_ids={"mrn": "RM-1"})
        ).status_code
        == 201
    )
    # Removing a required nested field leaves an invalid record: refused, naming the field.
    no_given = api.call(
        "PATCH", path, tenant.staff, {"name": {"given": None}}, headers={"If-Match": '"2"'}
    )
    assert no_given.status_code == 400
    assert error_paths(no_given) == ["$.name.given"]


def test_withdrawing_consent_records_when(
    runtime: Any, api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    granted = {"sms": {"status": "granted", "method": "paper_form", "at": "2020-01-01T08:00:00Z"}}
    patient = make_patient(tenant, consent=granted)
    withdrawn = api.call(
        "PATCH",
        f"/patients/{patient['id']}",
        tenant.staff,
        {"consent": {"sms": {"status": "withdrawn", "method": "sms_keyword"}}},
        headers={"If-Match": '"1"'},
    )
    record = payload(withdrawn)["consent"]["sms"]
    from chalicelib import clock

    assert record == {"status": "withdrawn", "method": "sms_keyword", "at": clock.iso(clock.now())}


def test_inputs_that_once_slipped_past_the_schema(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    """Each of these used to be accepted, or to answer 500."""
    make_patient(tenant, external_ids={"mrn": "NL-1"})
    cases: list[tuple[dict[str, Any], str]] = [
        (patient_body(external_ids={"mrn": "NL-1\n"}), "$.external_ids.mrn"),
        (patient_body(time_zone="Asia"), "$.time_zone"),
        (patient_body(time_zone="Etc"), "$.time_zone"),
        (patient_body(name={"given": "\ud800"}), "$.name.given"),
        (patient_body(departments=[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]), "$.departments[0]"),
        (patient_body(departments=["no-such-dept"]), "$.departments[0]"),
    ]
    for body, path in cases:
        response = api.call("POST", "/patients", tenant.staff, json.dumps(body).encode())
        assert response.status_code == 400, (path, response.body)
        assert path in error_paths(response)[0], (path, error_paths(response))
    for query in ("limit=%C2%B2", "mrn=" + "M" * 3000, "mrn=a%0A"):
        assert api.call("GET", f"/patients?{query}", tenant.staff).status_code == 400, query
    for search in ({"mrn": "M" * 3000}, {"mrn": "a\n"}, {"phone": "1" * 3000}):
        found = api.call("POST", "/patients/search", tenant.staff, search)
        assert found.status_code == 400, search
    # A look-up left in the URL is refused, not taken for a list of every patient.
    old_lookup = api.call("GET", "/patients?phone=13900139000", tenant.staff)
    assert old_lookup.status_code == 400 and error_paths(old_lookup) == ["phone"]
    bad_version = api.call(
        "PATCH",
        f"/patients/{make_patient(tenant)['id']}",
        tenant.staff,
        {"language": "en"},
        headers={"If-Match": '"²"'},
    )
    assert bad_version.status_code == 400


def test_all_failing_fields_are_reported_together(
    api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    rules_only = api.call(
        "POST",
        "/patients",
        tenant.staff,
        patient_body(phone="12345", birth_date="2015-01-01", departments=["nowhere"]),
    )
    assert error_paths(rules_only) == ["$.phone", "$.guardian", "$.departments[0]"]
    patient = make_patient(tenant)
    guardian = api.call(
        "PATCH",
        f"/patients/{patient['id']}",
        tenant.staff,
        {"guardian": {"name": 5, "relationship": "bogus"}},
        headers={"If-Match": '"1"'},
    )
    assert set(error_paths(guardian)) == {"$.guardian.name", "$.guardian.relationship"}


def test_the_record_shows_each_contacts_opt_out_and_the_list_does_not(
    api: Api, tenant: TenantCtx
) -> None:
    body = patient_body(
        guardian={
            "name": "Mum",
            "relationship": "parent",
            "phone": "13900139001",
            "email": "mum@example.com",
        }
    )
    created = payload(api.call("POST", "/patients", tenant.staff, body))
    shown = [(o["channel"], o["whose"], o["opted_out"]) for o in created["opt_outs"]]
    assert shown == [
        ("sms", "patient", False),
        *([("email", "patient", False)] if created.get("email") else []),
        ("sms", "guardian", False),
        ("email", "guardian", False),
    ]
    got = payload(api.call("GET", f"/patients/{created['id']}", tenant.staff))
    assert got["opt_outs"] == created["opt_outs"]
    listed = payload(api.call("GET", "/patients", tenant.staff))["items"]
    assert listed and all("opt_outs" not in p for p in listed), "a Query per contact: not listed"
    patched = api.call(
        "PATCH",
        f"/patients/{created['id']}",
        tenant.staff,
        {"opt_outs": []},
        headers={"If-Match": '"1"'},
    )
    assert patched.status_code == 400 and error_paths(patched) == ["$.opt_outs"], "read-only"
