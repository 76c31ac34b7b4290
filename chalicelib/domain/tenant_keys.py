"""A tenant's keys, one per purpose, all derived from its one data key (see services/keyring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TenantKeys:
    fields: bytes  # AES-256-GCM for PHI fields
    lookup: bytes  # HMAC-SHA256 for exact-match lookups of sealed values (phone, MRN, name)
    pseudonym: bytes  # HMAC-SHA256 naming a patient in the audit trail


class KeySource(Protocol):
    def keys_for(self, tenant_id: str) -> TenantKeys: ...


# Records written before a tenant is known (an inbound number's opt-out, an address's
# suppression) are keyed by the platform's own lookup key: its "tenant" in the keyring.
PLATFORM = "_platform"  # "_" is in no tenant id: it cannot be one
