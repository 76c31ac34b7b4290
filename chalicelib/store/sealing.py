"""Application-level encryption of PHI fields, and keyed hashes for looking them up.

A record's PHI fields (a profile's names, phone, email, birth date, medical tags...) leave the
document and are stored together as one AES-256-GCM ciphertext under `sealed`, with the tenant's
fields key, bound to the record it belongs to (associated data: kind, tenant, record id) so a
ciphertext moved to another record does not open. A table export or backup alone shows none of
them; without the tenant's data key (crypto-shredding) they cannot be read at all.

Exact-match lookups (a phone number, an MRN, a full name) go through HMAC-SHA256 under the
tenant's lookup key: the key holds the hash, never the value.

The keys come from a `KeySource` the composition root installs (`use_keys`): the store does
not reach KMS itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from typing import Any

from chalicelib.domain.tenant_keys import KeySource, TenantKeys

SEALED = "sealed"
VERSION = "v1"
NONCE_BYTES = 12

_source: KeySource | None = None


def use_keys(source: KeySource | None) -> None:
    global _source  # noqa: PLW0603 - one key source per process, set by the registry
    _source = source


def _keys(tenant_id: str) -> TenantKeys:
    if _source is None:
        raise RuntimeError("no key source: services.registry installs one (use_keys)")
    return _source.keys_for(tenant_id)


class Unreadable(Exception):
    """A sealed record that does not open under its tenant's key: it was tampered with or moved
    (a shredded tenant's reads stop earlier, at its key: KeysShredded)."""


def _associated(kind: str, tenant_id: str, record_id: str) -> bytes:
    return f"careloop/{kind}/{tenant_id}/{record_id}".encode()


def seal(
    kind: str, tenant_id: str, record_id: str, doc: dict[str, Any], fields: Iterable[str]
) -> dict[str, Any]:
    """`doc` without `fields`, which travel encrypted under `sealed` (absent when none is set)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    secret = {name: doc[name] for name in fields if name in doc}
    kept = {name: value for name, value in doc.items() if name not in secret}
    kept.pop(SEALED, None)
    if not secret:
        return kept
    nonce = os.urandom(NONCE_BYTES)
    plaintext = json.dumps(secret, separators=(",", ":"), ensure_ascii=False).encode()
    box = AESGCM(_keys(tenant_id).fields).encrypt(
        nonce, plaintext, _associated(kind, tenant_id, record_id)
    )
    kept[SEALED] = f"{VERSION}:{base64.b64encode(nonce + box).decode()}"
    return kept


def unseal(kind: str, tenant_id: str, record_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The whole document again: its sealed fields opened and put back."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealed = doc.get(SEALED)
    if not sealed:
        return doc
    version, _, payload = str(sealed).partition(":")
    if version != VERSION:
        raise Unreadable(f"unknown sealing version {version!r}")
    raw = base64.b64decode(payload)
    try:
        plaintext = AESGCM(_keys(tenant_id).fields).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated(kind, tenant_id, record_id)
        )
    except InvalidTag as exc:
        raise Unreadable(f"a sealed {kind} did not open") from exc
    opened = {name: value for name, value in doc.items() if name != SEALED}
    opened.update(json.loads(plaintext))
    return opened


def lookup_hash(tenant_id: str, kind: str, value: str) -> str:
    """The keyed hash a lookup key holds instead of `value` (hex, 32 characters)."""
    key = _keys(tenant_id).lookup
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
