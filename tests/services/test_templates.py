"""Saving a wording lists it on the tenant in the same write; an edit of the tenant meanwhile
sends the save round again (in-memory fakes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from chalicelib.domain.access import Principal, Role
from chalicelib.domain.errors import Conflict
from chalicelib.services.templates import TemplateService
from chalicelib.store.config import TenantChanged

ADMIN = Principal("admin", Role.ADMIN, tenant_id="t1")
BODY = {"body": "{{clinic}} {{time}}"}


@dataclass
class FakeTenants:
    tenant: dict[str, Any] = field(
        default_factory=lambda: {"id": "t1", "version": 1, "own_wording": []}
    )

    def get(self, tenant_id: str) -> dict[str, Any]:
        return dict(self.tenant)


@dataclass
class FakeConfig:
    tenants: FakeTenants
    races: int = 0
    saved: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, tenant_id: str, kind: str, record_id: str) -> dict[str, Any] | None:
        return self.saved.get(record_id)

    def put(
        self, tenant_id: str, kind: str, doc: dict[str, Any], expected: int | None
    ) -> dict[str, Any]:
        self.saved[doc["id"]] = {**doc, "version": (expected or 0) + 1}
        return self.saved[doc["id"]]

    def put_noted_on_tenant(
        self, tenant: dict[str, Any], kind: str, doc: dict[str, Any], expected: int | None
    ) -> dict[str, Any]:
        if self.races:
            self.races -= 1  # somebody edited the tenant since it was read
            self.tenants.tenant["version"] += 1
            raise TenantChanged(tenant["id"])
        assert tenant["version"] == self.tenants.tenant["version"], "the version it was read at"
        self.tenants.tenant = {**tenant, "version": tenant["version"] + 1}
        return self.put(tenant["id"], kind, doc, expected)


def service(races: int) -> tuple[TemplateService, FakeTenants, FakeConfig]:
    tenants = FakeTenants()
    config = FakeConfig(tenants, races=races)
    return TemplateService(cast(Any, config), cast(Any, tenants)), tenants, config


def test_a_tenant_edited_meanwhile_is_read_again_and_the_wording_listed() -> None:
    templates, tenants, config = service(races=2)
    saved = templates.put(ADMIN, "reminder", "sms", "zh-CN", BODY, None)
    assert saved["id"] == "reminder#sms#zh-CN" and config.races == 0
    assert tenants.tenant["own_wording"] == ["reminder#sms#zh-CN"]


def test_a_tenant_that_keeps_changing_is_a_conflict_and_nothing_is_saved() -> None:
    templates, tenants, config = service(races=3)
    with pytest.raises(Conflict):
        templates.put(ADMIN, "reminder", "sms", "zh-CN", BODY, None)
    assert config.saved == {} and tenants.tenant["own_wording"] == []


def test_a_wording_listed_already_is_saved_without_touching_the_tenant() -> None:
    templates, tenants, _config = service(races=0)
    tenants.tenant["own_wording"] = ["reminder#sms#zh-CN"]
    templates.put(ADMIN, "reminder", "sms", "zh-CN", BODY, None)
    assert tenants.tenant["version"] == 1
