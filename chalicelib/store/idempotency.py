"""Idempotency-Key records: the first response to a creating request, replayed to its retries.

A request claims its key (conditional put, state in_progress, with a lock that lapses if the
function dies mid-way), runs, then stores its response. A retry with the same body gets the
stored response; the same key with another body is refused. Records expire after a day (TTL).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.settings import get_settings
from chalicelib.store.keys import IDEMPOTENCY_SK, idempotency_pk
from chalicelib.store.models import IdempotencyItem, bind_models
from chalicelib.store.records import as_document, is_condition_failure, plain
from chalicelib.store.sealing import seal, unseal

KEEP_SECONDS = 24 * 3600
LOCK_SECONDS = 60


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    complete: bool
    status: int | None
    body: Any


KIND = "idempotency"


def _tenant_of(scope: str) -> str | None:
    """A scope is `T#<tenant>#U#...` (a tenant's request) or `PLATFORM#...` (an operator's)."""
    return scope.split("#", 2)[1] if scope.startswith("T#") else None


class IdempotencyRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def claim(self, scope: str, fingerprint: str) -> StoredResponse | None:
        """Claim the key; None when this request may run, else what the key already holds."""
        now = int(time.time())
        item = IdempotencyItem(
            idempotency_pk(scope),
            IDEMPOTENCY_SK,
            entity="idempotency",
            fingerprint=fingerprint,
            state="in_progress",
            locked_until=now + LOCK_SECONDS,
            expires_at=timedelta(seconds=KEEP_SECONDS),
        )
        try:
            # A lapsed lock (the first attempt died) may be taken over.
            item.save(
                condition=IdempotencyItem.pk.does_not_exist()
                | (
                    (IdempotencyItem.state == "in_progress")
                    & (IdempotencyItem.locked_until < now)
                    & (IdempotencyItem.fingerprint == fingerprint)
                )
            )
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            return self._stored(scope)
        return None

    def complete(self, scope: str, status: int, body: Any) -> None:
        """Store the response to replay; a tenant's (a patient record, say) sealed under its key."""
        saved: dict[str, Any] = {"saved": plain(body)}
        tenant_id = _tenant_of(scope)
        if tenant_id is not None:
            saved = seal(KIND, tenant_id, scope, saved, ("saved",))
        IdempotencyItem(idempotency_pk(scope), IDEMPOTENCY_SK).update(
            actions=[
                IdempotencyItem.state.set("complete"),
                IdempotencyItem.status.set(status),
                IdempotencyItem.response.set(saved),
            ]
        )

    def release(self, scope: str) -> None:
        """Forget a claim whose request failed, so a corrected retry can run."""
        IdempotencyItem(idempotency_pk(scope), IDEMPOTENCY_SK).delete(
            condition=IdempotencyItem.state == "in_progress"
        )

    def _stored(self, scope: str) -> StoredResponse:
        try:
            item = IdempotencyItem.get(idempotency_pk(scope), IDEMPOTENCY_SK, consistent_read=True)
        except DoesNotExist:  # expired between our write and this read: treat as in progress
            return StoredResponse("", complete=False, status=None, body=None)
        body = None
        if item.response is not None:
            response = as_document(item.response)
            tenant_id = _tenant_of(scope)
            if tenant_id is not None:
                response = unseal(KIND, tenant_id, scope, response)
            body = response["saved"]
        return StoredResponse(
            item.fingerprint,
            item.state == "complete",
            int(item.status) if item.status is not None else None,
            body,
        )
