"""Staff records (in the tenant's configuration partition) and the revocation markers the API
checks on every clinic request."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.domain.staff import StaffRecord, StaffRole, StaffStatus
from chalicelib.settings import get_settings
from chalicelib.store.errors import version_conflict
from chalicelib.store.keys import config_pk
from chalicelib.store.models import ConfigItem, RevocationItem, bind_models
from chalicelib.store.records import failed_items, stored_body, transaction_write, versioned_doc

KIND = "STAFF"
REVOKED_SK = "REVOKED"


def revocation_pk(tenant_id: str, account: str) -> str:
    return f"T#{tenant_id}#U#{account}"


def _record(item: Any) -> StaffRecord:
    doc = versioned_doc(item)
    doc["role"] = StaffRole(doc["role"])
    doc["status"] = StaffStatus(doc["status"])
    return StaffRecord(**doc)  # type: ignore[typeddict-item,no-any-return]


class StaffRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def get(self, tenant_id: str, staff_id: str) -> StaffRecord | None:
        try:
            return _record(ConfigItem.get(config_pk(tenant_id), f"{KIND}#{staff_id}"))
        except DoesNotExist:
            return None

    def all(self, tenant_id: str) -> list[StaffRecord]:
        items = ConfigItem.query(config_pk(tenant_id), ConfigItem.sk.startswith(f"{KIND}#"))
        return [_record(item) for item in items]

    def save(
        self,
        tenant_id: str,
        record: StaffRecord,
        expected_version: int | None,
        revoke_before: int | None = None,
    ) -> StaffRecord:
        """Create the record (expected_version None) or replace the version the caller read;
        with `revoke_before`, the account's tokens issued before it are refused from the same
        commit on."""
        item = ConfigItem(
            config_pk(tenant_id),
            f"{KIND}#{record['id']}",
            entity="staff",
            doc=stored_body(dict(record)),
        )
        try:
            with transaction_write() as tx:
                if expected_version is None:
                    tx.save(item, condition=ConfigItem.pk.does_not_exist())
                else:
                    item.version = expected_version
                    tx.save(item)
                if revoke_before is not None:
                    tx.save(
                        RevocationItem(
                            revocation_pk(tenant_id, record["id"]),
                            REVOKED_SK,
                            entity="revocation",
                            not_before=revoke_before,
                        )
                    )
        except TransactWriteError as exc:
            if failed_items(exc):
                raise version_conflict() from exc
            raise
        return _record(item)

    def revoked_before(self, tenant_id: str, account: str) -> int:
        """Tokens of the account issued before this moment (epoch seconds) are refused; 0 when
        the account was never revoked."""
        try:
            marker = RevocationItem.get(
                revocation_pk(tenant_id, account),
                REVOKED_SK,
                attributes_to_get=["not_before"],
            )
        except DoesNotExist:
            return 0
        return int(marker.not_before)
