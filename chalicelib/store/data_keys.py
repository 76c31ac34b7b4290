"""Each tenant's data key, wrapped under the platform's KMS key (access pattern 51 in README.md)."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.domain.errors import NotFound
from chalicelib.domain.tenant_keys import PLATFORM
from chalicelib.settings import get_settings
from chalicelib.store.keys import tenant_pk
from chalicelib.store.models import DataKeyItem, bind_models
from chalicelib.store.records import is_condition_failure

DATA_KEY_SK = "DATAKEY"


class KeysShredded(NotFound):
    """The tenant's key was shredded: its records are gone as far as anyone can tell."""


def _pk(tenant_id: str) -> str:
    """A tenant's key beside its record; the platform's own (contacts' lookups) apart."""
    return "PLATFORM#KEYS" if tenant_id == PLATFORM else tenant_pk(tenant_id)


class DataKeyRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def get(self, tenant_id: str) -> bytes | None:
        """The wrapped key; None when the tenant has none yet; KeysShredded when it was shredded."""
        try:
            item = DataKeyItem.get(_pk(tenant_id), DATA_KEY_SK, consistent_read=True)
        except DoesNotExist:
            return None
        if item.wrapped is None:
            raise KeysShredded("this tenant's data was shredded")
        return bytes(item.wrapped)

    def put_first(self, tenant_id: str, wrapped: bytes, created_at: str) -> bytes:
        """Store the tenant's first key; when another container stored one first, theirs is
        the key (every container must use the same one)."""
        item = DataKeyItem(
            _pk(tenant_id),
            DATA_KEY_SK,
            entity="data_key",
            wrapped=wrapped,
            created_at=created_at,
        )
        try:
            item.save(condition=DataKeyItem.pk.does_not_exist())
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            stored = self.get(tenant_id)
            if stored is None:
                raise
            return stored
        return wrapped

    def shred(self, tenant_id: str, at: str) -> None:
        """Crypto-shredding: the wrapped key goes, a tombstone stays (no new key is ever made
        for the tenant), and nothing encrypted under the old key can be read again."""
        DataKeyItem(
            _pk(tenant_id), DATA_KEY_SK, entity="data_key", created_at=at, shredded_at=at
        ).save()
