"""Tenant repository."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict
from chalicelib.settings import get_settings
from chalicelib.store.keys import TENANT_SK, tenant_pk
from chalicelib.store.models import TenantItem, bind_models
from chalicelib.store.records import (
    is_condition_failure,
    save_versioned,
    stored_body,
    versioned_doc,
)

TENANTS = "TENANTS"


def _listed(tenant_id: str) -> dict[str, Any]:
    return {"gsi2pk": TENANTS, "gsi2sk": tenant_id}


class TenantRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def get(self, tenant_id: str) -> Document | None:
        try:
            item = TenantItem.get(tenant_pk(tenant_id), TENANT_SK)
        except DoesNotExist:
            return None
        return versioned_doc(item)

    def create(self, doc: Document) -> Document:
        item = TenantItem(
            tenant_pk(doc["id"]), TENANT_SK, entity="tenant", doc=doc, **_listed(doc["id"])
        )
        try:
            item.save(condition=TenantItem.pk.does_not_exist())
        except PutError as exc:
            if is_condition_failure(exc):
                raise Conflict(f"tenant {doc['id']} already exists", code="tenant_exists") from exc
            raise
        return versioned_doc(item)

    def replace(self, doc: Document, expected_version: int) -> Document:
        """Write a changed tenant if nobody changed it since `expected_version`."""
        body = stored_body(doc)
        item = TenantItem(
            tenant_pk(doc["id"]),
            TENANT_SK,
            entity="tenant",
            doc=body,
            version=expected_version,
            **_listed(doc["id"]),
        )
        save_versioned(item, create=False)
        return versioned_doc(item)

    def all_ids(self) -> list[str]:
        """Every tenant's id (GSI2 `TENANTS`): the daily sweeps visit each tenant."""
        return [
            item.gsi2sk
            for item in TenantItem.listing.query(TENANTS, attributes_to_get=["GSI2SK"])
            if item.gsi2sk
        ]
