"""The platform's KMS key: it wraps each tenant's data key, and nothing else (the table's and
topics' own encryption at rest are AWS's). Every call names the tenant in the encryption
context, so a wrapped key unwraps only for the tenant it was made for, and IAM can fence a
tenant's session to its own context (`kms:EncryptionContext:tenant_id`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.adapters.clients import client
from chalicelib.adapters.failures import raise_classified
from chalicelib.settings import get_settings

DATA_KEY_BYTES = 32


def _context(tenant_id: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "purpose": "tenant-data-key"}


class KeyService:
    def __init__(self, make_client: Callable[[str], Any] = client) -> None:
        self._client = make_client

    def new_data_key(self, tenant_id: str) -> tuple[bytes, bytes]:
        """A fresh 256-bit key: (plaintext, wrapped). Only the wrapped form is ever stored."""
        try:
            answer = self._client("kms").generate_data_key(
                KeyId=get_settings().data_key_arn,
                NumberOfBytes=DATA_KEY_BYTES,
                EncryptionContext=_context(tenant_id),
            )
        except Exception as exc:
            raise_classified(exc)
        return bytes(answer["Plaintext"]), bytes(answer["CiphertextBlob"])

    def unwrap(self, tenant_id: str, wrapped: bytes) -> bytes:
        try:
            answer = self._client("kms").decrypt(
                KeyId=get_settings().data_key_arn,
                CiphertextBlob=wrapped,
                EncryptionContext=_context(tenant_id),
            )
        except Exception as exc:
            raise_classified(exc)
        return bytes(answer["Plaintext"])
