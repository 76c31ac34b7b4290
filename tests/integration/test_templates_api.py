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
