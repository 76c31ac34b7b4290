"""Tenant rules and access rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from chalicelib.domain import tenants as rules
from chalicelib.domain.access import (
    Principal,
    Role,
    check_patient_visible,
    check_tenant_visible,
    require_role,
    tenant_of,
)
from chalicelib.domain.errors import Forbidden, NotFound, ValidationFailed

NOW = datetime(2026, 11, 23, tzinfo=UTC)
BODY = {
    "id": "t1",
    "name": "H",
    "time_zone": "Asia/Shanghai",
    "default_language": "zh-CN",
    "sender": {"email_from": "a@b.example"},
}


def test_defaults_quiet_hours_and_departments() -> None:
    doc = rules.new_tenant(dict(BODY), NOW, "2026-11-23T00:00:00Z")
    assert doc["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    assert doc["departments"] == []


def test_quiet_hours_must_not_be_empty() -> None:
    with pytest.raises(ValidationFailed) as exc:
        rules.new_tenant({**BODY, "quiet_hours": {"start": "08:00", "end": "08:00"}}, NOW, "x")
    assert exc.value.details[0].path == "$.quiet_hours"


def test_department_ids_unique() -> None:
    departments = [{"id": "a1", "name": "A"}, {"id": "a1", "name": "B"}]
    with pytest.raises(ValidationFailed):
        rules.new_tenant({**BODY, "departments": departments}, NOW, "x")


def test_id_cannot_be_patched() -> None:
    doc = rules.new_tenant(dict(BODY), NOW, "x")
    with pytest.raises(ValidationFailed):
        rules.patched_tenant(doc, {"id": "t2"}, "y", by_operator=True)


def test_only_the_operator_changes_the_sender_identity() -> None:
    doc = rules.new_tenant(dict(BODY), NOW, "x")
    sender = {"sender": {"email_from": "other@elsewhere.example"}}
    with pytest.raises(Forbidden):
        rules.patched_tenant(doc, sender, "y", by_operator=False)
    changed = rules.patched_tenant(doc, sender, "y", by_operator=True)
    assert changed["sender"]["email_from"] == "other@elsewhere.example"


def test_all_tenant_problems_are_reported_together() -> None:
    body = {
        **BODY,
        "time_zone": "Asia",
        "quiet_hours": {"start": "08:00", "end": "08:00"},
        "departments": [{"id": "a1", "name": "A"}, {"id": "a1", "name": "B"}],
    }
    with pytest.raises(ValidationFailed) as exc:
        rules.new_tenant(body, NOW, "x")
    assert [d.path for d in exc.value.details] == ["$.time_zone", "$.quiet_hours", "$.departments"]


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        ("20:59", False),
        ("21:00", True),
        ("23:30", True),
        ("03:00", True),
        ("07:59", True),
        ("08:00", False),
        ("12:00", False),
    ],
)
def test_quiet_hours_spanning_midnight(local: str, quiet: bool) -> None:
    assert rules.is_quiet(time.fromisoformat(local), {"start": "21:00", "end": "08:00"}) is quiet


def test_quiet_hours_within_a_day() -> None:
    window = {"start": "12:00", "end": "14:00"}
    assert rules.is_quiet(time(13, 0), window)
    assert not rules.is_quiet(time(14, 0), window)


STAFF_A = Principal("s", Role.STAFF, tenant_id="ta")
PATIENT_A1 = Principal("p", Role.PATIENT, tenant_id="ta", patient_id="p1")
OPERATOR = Principal("o", Role.OPERATOR)


def test_other_tenant_looks_absent() -> None:
    check_tenant_visible(STAFF_A, "ta")
    check_tenant_visible(OPERATOR, "tb")
    with pytest.raises(NotFound):
        check_tenant_visible(STAFF_A, "tb")
    with pytest.raises(NotFound):
        check_tenant_visible(OPERATOR, "T#ta")


def test_patient_sees_only_self() -> None:
    check_patient_visible(PATIENT_A1, "p1")
    check_patient_visible(STAFF_A, "p2")
    with pytest.raises(NotFound):
        check_patient_visible(PATIENT_A1, "p2")


def test_roles_and_tenant_scope() -> None:
    require_role(STAFF_A, {Role.STAFF})
    with pytest.raises(Forbidden):
        require_role(PATIENT_A1, {Role.STAFF, Role.ADMIN})
    assert tenant_of(STAFF_A) == "ta"
    with pytest.raises(Forbidden):
        tenant_of(OPERATOR)


def test_a_tenant_lists_the_wordings_it_saved() -> None:
    tenant = rules.new_tenant(BODY, NOW, NOW.isoformat())
    assert tenant["own_wording"] == []
    assert not rules.may_have_own_wording(tenant, "reminder#sms#zh-CN")
    listed = rules.with_own_wording(tenant, "reminder#sms#zh-CN", [])
    assert listed is not None and listed["own_wording"] == ["reminder#sms#zh-CN"]
    assert rules.may_have_own_wording(listed, "reminder#sms#zh-CN")
    assert rules.with_own_wording(listed, "reminder#sms#zh-CN", []) is None, "listed already"
    # A record from before the list: every wording may exist, and the first save lists those
    # saved before beside the new one.
    before = {k: v for k, v in tenant.items() if k != "own_wording"}
    assert rules.may_have_own_wording(before, "anything#sms#en")
    first = rules.with_own_wording(before, "reminder#sms#en", ["noshow_1#sms#en"])
    assert first is not None and first["own_wording"] == ["noshow_1#sms#en", "reminder#sms#en"]
    with pytest.raises(ValidationFailed):
        rules.patched_tenant(tenant, {"own_wording": []}, NOW.isoformat(), by_operator=True)
