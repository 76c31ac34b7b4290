"""A tenant's configuration: clinicians and schedules, one small partition per tenant."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.domain.common import Document
from chalicelib.settings import get_settings
from chalicelib.store.errors import version_conflict
from chalicelib.store.keys import config_pk
from chalicelib.store.models import ConfigItem, bind_models
from chalicelib.store.records import (
    failed_items,
    put_versioned,
    raced,
    stored_body,
    versioned_doc,
)
from chalicelib.store.tenants import tenant_item


class TenantChanged(Exception):
    """The tenant record changed between its read and a write that also changes it."""


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

    def put_noted_on_tenant(
        self, tenant: Document, kind: str, doc: Document, expected_version: int | None
    ) -> Document:
        """`put`, and in the same transaction the tenant record as given (`tenant`, at the
        version it was read): a record the journeys must know exists without reading for it (a
        tenant's own wording, listed on the tenant). The tenant's ETag moves with it.
        TenantChanged if the tenant changed since it was read; 409 if the record did."""
        from chalicelib.store.records import transaction_write

        body = stored_body(doc)
        item = ConfigItem(
            config_pk(tenant["id"]), f"{kind}#{doc['id']}", entity=kind.lower(), doc=body
        )
        if expected_version is not None:
            item.version = expected_version
        try:
            with transaction_write() as tx:
                if expected_version is None:
                    tx.save(item, condition=ConfigItem.pk.does_not_exist())
                else:
                    tx.save(item)
                tx.save(tenant_item(tenant, tenant["version"]))
        except TransactWriteError as exc:
            failed = failed_items(exc)  # 0: the record's condition; 1: the tenant's version
            if 0 in failed:
                raise version_conflict() from exc
            if 1 in failed or raced(exc):  # the tenant changed, or was changing meanwhile
                raise TenantChanged(tenant["id"]) from exc
            raise  # throttled or failing: the API answers 503 with Retry-After
        return versioned_doc(item)
