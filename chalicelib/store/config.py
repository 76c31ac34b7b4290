"""A tenant's configuration: clinicians and schedules, one small partition per tenant."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib.domain.common import Document
from chalicelib.settings import get_settings
from chalicelib.store.keys import config_pk
from chalicelib.store.models import ConfigItem, bind_models
from chalicelib.store.records import (
    put_versioned,
    stored_body,
    versioned_doc,
)


class ConfigRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def get(self, tenant_id: str, kind: str, record_id: str) -> Document | None:
        try:
            return versioned_doc(ConfigItem.get(config_pk(tenant_id), f"{kind}#{record_id}"))
        except DoesNotExist:
            return None

    def records(self, tenant_id: str, kind: str) -> list[Document]:
        items = ConfigItem.query(config_pk(tenant_id), ConfigItem.sk.startswith(f"{kind}#"))
        return [versioned_doc(item) for item in items]

    def records_of_kinds(self, tenant_id: str, prefix: str) -> dict[str, list[Document]]:
        """Every kind whose name starts with `prefix`, in one Query: kind → its records."""
        found: dict[str, list[Document]] = {}
        for item in ConfigItem.query(config_pk(tenant_id), ConfigItem.sk.startswith(prefix)):
            found.setdefault(item.sk.split("#", 1)[0], []).append(versioned_doc(item))
        return found

    def put(
        self, tenant_id: str, kind: str, doc: Document, expected_version: int | None
    ) -> Document:
        """Create (expected_version None) or replace the version the caller read."""
        body = stored_body(doc)
        item = ConfigItem(
            config_pk(tenant_id), f"{kind}#{doc['id']}", entity=kind.lower(), doc=body
        )
        return put_versioned(item, expected_version)
