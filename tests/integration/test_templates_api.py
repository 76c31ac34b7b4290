"""Tenant templates: checked when saved, never failing at send time."""

from __future__ import annotations

from tests.conftest import Api, TenantCtx, error_paths, payload

PATH = "/templates/reminder/sms/zh-CN"


def test_templates_are_checked_when_saved(api: Api, tenant: TenantCtx) -> None:
    unknown = api.call("PUT", PATH, tenant.admin, {"body": "{{first_name}}: {{diagnosis}}"})
    assert unknown.status_code == 400 and error_paths(unknown) == ["$.body"]
    assert "diagnosis" in payload(unknown)["error"]["message"]
    phi_in_sms = api.call("PUT", PATH, tenant.admin, {"body": "{{department}} {{time}}"})
    assert phi_in_sms.status_code == 400, "SMS may not name the department"
    fails_later = api.call(
        "PUT", "/templates/reminder/email/en", tenant.admin, {"body": "{{ time.foo.bar }}"}
    )
    assert fails_later.status_code == 400, "rendered with sample values when saved"
    broken = api.call("PUT", PATH, tenant.admin, {"body": "{% if %}", "subject": "{{nope}}"})
    assert error_paths(broken) == ["$.body", "$.subject"]
    staff = api.call("PUT", PATH, tenant.staff, {"body": "{{time}}"})
    assert staff.status_code == 403
    no_such = api.call("PUT", "/templates/party/sms/zh-CN", tenant.admin, {"body": "{{time}}"})
    assert no_such.status_code == 404


def test_saved_template_reports_segments_and_lists(api: Api, tenant: TenantCtx) -> None:
    body = {
        "body": "{{clinic}}：{{first_name}}您好，明天{{time}}请到{{location}}就诊，请携带医保卡。"
    }
    saved = api.call("PUT", PATH, tenant.admin, body)
    assert saved.status_code == 200, saved.body
    assert payload(saved)["sms_segments"] == 1
    replaced = api.call(
        "PUT", PATH, tenant.admin, {"body": body["body"] + "x" * 80}, headers={"If-Match": '"1"'}
    )
    assert payload(replaced)["sms_segments"] == 2, "UCS-2 past 70 characters"
    listed = payload(api.call("GET", "/templates", tenant.staff))["items"]
    assert [t["id"] for t in listed] == ["reminder#sms#zh-CN"]


def test_a_saved_wording_is_listed_on_the_tenant_in_the_same_write(
    api: Api, tenant: TenantCtx
) -> None:
    """The journeys learn from the tenant record (read at every step anyway) which wordings
    the hospital saved, so the product's own wording costs no read; the list is the
    platform's to keep."""
    before = payload(api.call("GET", f"/tenants/{tenant.id}", tenant.admin))
    assert before["own_wording"] == []
    api.call("PUT", PATH, tenant.admin, {"body": "{{clinic}} {{time}}"})
    api.call("PUT", "/templates/reminder/email/en", tenant.admin, {"body": "{{time}}"})
    again = api.call("PUT", PATH, tenant.admin, {"body": "{{time}}"}, headers={"If-Match": '"1"'})
    assert again.status_code == 200, again.body
    after = payload(api.call("GET", f"/tenants/{tenant.id}", tenant.admin))
    assert after["own_wording"] == ["reminder#email#en", "reminder#sms#zh-CN"]
    assert after["version"] == before["version"] + 2, "listed once per wording, not per save"
    patched = api.call(
        "PATCH",
        f"/tenants/{tenant.id}",
        tenant.admin,
        {"own_wording": []},
        headers={"If-Match": f'"{after["version"]}"'},
    )
    assert patched.status_code == 400 and error_paths(patched) == ["$.own_wording"]
