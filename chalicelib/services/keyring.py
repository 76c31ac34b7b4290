"""Each tenant's keys, derived from its one data key (made by KMS, stored wrapped in the table).

From the data key, HKDF derives one key per purpose, so no key is used for two things:
- `fields`: AES-256-GCM for PHI fields (the store encrypts with it);
- `lookup`: HMAC-SHA256 for exact-match lookups of encrypted values (phone, MRN, name);
- `pseudonym`: HMAC-SHA256 naming a patient in the audit trail.

A warm container keeps a tenant's keys for a few minutes: one KMS Decrypt per tenant per
container then, not one per request. Deleting the wrapped key (crypto-shredding) takes effect
everywhere within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chalicelib import clock
from chalicelib.adapters.kms import KeyService
from chalicelib.domain.tenant_keys import TenantKeys
from chalicelib.store.data_keys import DataKeyRepository

CACHE_SECONDS = 300


def derive(data_key: bytes, tenant_id: str) -> TenantKeys:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def one(purpose: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"careloop/{tenant_id}/{purpose}".encode(),
        ).derive(data_key)

    return TenantKeys(fields=one("fields"), lookup=one("lookup"), pseudonym=one("pseudonym"))


class Keyring:
    def __init__(
        self,
        repository: DataKeyRepository,
        kms: KeyService,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = repository
        self._kms = kms
        self._monotonic = monotonic
        self._cached: dict[str, tuple[float, TenantKeys]] = {}
        self._lock = threading.Lock()

    def keys_for(self, tenant_id: str) -> TenantKeys:
        """The tenant's keys; its data key is made on first use."""
        now = self._monotonic()
        with self._lock:
            cached = self._cached.get(tenant_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        wrapped = self._keys.get(tenant_id)
        if wrapped is None:
            plaintext, wrapped = self._kms.new_data_key(tenant_id)
            stored = self._keys.put_first(tenant_id, wrapped, clock.iso(clock.now()))
            if stored != wrapped:  # another container made the tenant's key first: use theirs
                plaintext = self._kms.unwrap(tenant_id, stored)
        else:
            plaintext = self._kms.unwrap(tenant_id, wrapped)
        keys = derive(plaintext, tenant_id)
        with self._lock:
            self._cached[tenant_id] = (now, keys)
        return keys

    def forget(self, tenant_id: str) -> None:
        with self._lock:
            self._cached.pop(tenant_id, None)

    def shred(self, tenant_id: str) -> None:
        """Drop the tenant's data key: its encrypted data becomes unreadable for good. Warm
        containers forget it within CACHE_SECONDS."""
        self._keys.shred(tenant_id, clock.iso(clock.now()))
        self.forget(tenant_id)
