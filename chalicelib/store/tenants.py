"""Tenant repository."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError

from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict
from chalicelib.domain.tenants import reply_number
from chalicelib.settings import get_settings
from chalicelib.store.errors import version_conflict
from chalicelib.store.keys import TENANT_SK, tenant_pk
from chalicelib.store.models import ContactItem, TenantItem, bind_models
from chalicelib.store.records import (
    as_document,
    failed_items,
    is_condition_failure,
    save_versioned,
    stored_body,
    transaction_write,
    versioned_doc,
)

TENANTS = "TENANTS"
NUMBER_OWNER = "OWNER"


def _number_pk(number: str) -> str:
    return f"NUMBER#{number}"


def _number_claim(number: str, tenant_id: str) -> tuple[ContactItem, Any]:
    """The claim that makes a two-way number one hospital's: a reply to it is that hospital's."""
    item = ContactItem(
        _number_pk(number), NUMBER_OWNER, entity="number_owner", doc={"tenant_id": tenant_id}
    )
    return item, ContactItem.pk.does_not_exist() | (ContactItem.doc["tenant_id"] == tenant_id)


def _number_taken(number: str) -> Conflict:
    return Conflict(f"the SMS number {number} belongs to another tenant", code="reply_number_taken")


def tenant_item(doc: Document, version: int | None = None) -> TenantItem:
    """The tenant's item (listed under GSI2 `TENANTS`), at the version it was read if given."""
    item = TenantItem(
        tenant_pk(doc["id"]),
        TENANT_SK,
        entity="tenant",
        doc=stored_body(doc),
        gsi2pk=TENANTS,
        gsi2sk=doc["id"],
    )
    if version is not None:
        item.version = version
    return item


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
        item = tenant_item(doc)
        number = reply_number(doc)
        try:
            if number is None:
                item.save(condition=TenantItem.pk.does_not_exist())
            else:
                with transaction_write() as tx:
                    tx.save(item, condition=TenantItem.pk.does_not_exist())
                    tx.save(*_number_claim(number, doc["id"]))
        except (PutError, TransactWriteError) as exc:
            if not is_condition_failure(exc):
                raise
            if number is not None and failed_items(exc) == [1]:
                raise _number_taken(number) from exc
            raise Conflict(f"tenant {doc['id']} already exists", code="tenant_exists") from exc
        return versioned_doc(item)

    def replace(self, doc: Document, expected_version: int, previous: Document) -> Document:
        """Write a changed tenant if nobody changed it since `expected_version`; a changed
        two-way number moves its claim in the same transaction."""
        item = tenant_item(doc, expected_version)
        number, before = reply_number(doc), reply_number(previous)
        if number == before:
            save_versioned(item, create=False)
            return versioned_doc(item)
        try:
            with transaction_write() as tx:
                if before is not None:
                    tx.delete(ContactItem(_number_pk(before), NUMBER_OWNER))
                tx.save(item)
                if number is not None:
                    tx.save(*_number_claim(number, doc["id"]))
        except TransactWriteError as exc:
            if not is_condition_failure(exc):
                raise
            tenant_index = 1 if before is not None else 0
            if number is not None and tenant_index not in failed_items(exc):
                raise _number_taken(number) from exc
            raise version_conflict() from exc
        return versioned_doc(item)

    def owner_of_number(self, number: str) -> str | None:
        """The tenant whose two-way number this is, if any."""
        try:
            owner = ContactItem.get(_number_pk(number), NUMBER_OWNER)
        except DoesNotExist:
            return None
        tenant_id: str = as_document(owner.doc)["tenant_id"]
        return tenant_id

    def all_ids(self) -> list[str]:
        """Every tenant's id (GSI2 `TENANTS`): the daily sweeps visit each tenant."""
        return [
            item.gsi2sk
            for item in TenantItem.listing.query(TENANTS, attributes_to_get=["GSI2SK"])
            if item.gsi2sk
        ]
