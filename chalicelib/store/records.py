"""Helpers shared by the repositories."""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Any

from pynamodb.exceptions import PynamoDBException


def as_document(value: Any) -> dict[str, Any]:
    """A raw MapAttribute (or dict) as a plain dict."""
    if hasattr(value, "as_dict"):
        plain: dict[str, Any] = value.as_dict()
        return plain
    return dict(value)


def versioned_doc(item: Any) -> dict[str, Any]:
    """The document an item holds, with the version it is at (the API's ETag)."""
    return {**as_document(item.doc), "version": item.version}


def plain(value: Any) -> Any:
    """Status enums as their plain strings, however deep (PynamoDB serialises built-ins only)."""
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def stored_body(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as it is stored: the version lives in its own attribute, not in `doc`; a
    status enum (a journey's, or one of its steps') as its plain string."""
    return {k: plain(v) for k, v in doc.items() if k != "version"}


def put_versioned(item: Any, expected_version: int | None) -> dict[str, Any]:
    """Create the item (expected_version None: it must not exist) or replace the version the
    caller read; the stored document at its new version."""
    if expected_version is not None:
        item.version = expected_version
    save_versioned(item, create=expected_version is None)
    return versioned_doc(item)


def is_condition_failure(exc: PynamoDBException) -> bool:
    return exc.cause_response_code in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )


def transaction_write() -> Any:
    """A TransactWrite on the bound table's connection."""
    from pynamodb.transactions import TransactWrite

    from chalicelib.store.models import PatientItem

    meta = PatientItem.Meta
    return TransactWrite(connection=connection(meta.region, getattr(meta, "host", None)))


@cache
def connection(region: str, host: str | None) -> Any:
    """One connection (one botocore client, which is thread-safe) per process: creating a client
    loads the service model, ~80 ms, which no request should pay twice."""
    from pynamodb.connection import Connection

    from chalicelib.store.signing import signed_for_the_acting_tenant

    return signed_for_the_acting_tenant(Connection(region=region, host=host))


def failed_items(exc: Any) -> list[int]:
    """Indexes of the transaction items whose condition failed.

    PynamoDB sends a transaction's items grouped, whatever order they were added in: condition
    checks, then deletes, then puts, then updates. Indexes count in that order."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return [
        i for i, r in enumerate(reasons) if r is not None and r.code == "ConditionalCheckFailed"
    ]


def raced(exc: Any) -> bool:
    """Whether DynamoDB cancelled the transaction because another one touched the same items."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "TransactionConflict" for r in reasons)


def save_versioned(item: Any, *, create: bool) -> None:
    """Create an item that must not exist yet, or replace the version it carries (PynamoDB's
    VersionAttribute adds that condition); losing either race is a version conflict."""
    from pynamodb.exceptions import PutError

    from chalicelib.store.errors import version_conflict

    try:
        if create:
            item.save(condition=type(item).pk.does_not_exist())
        else:
            item.save()
    except PutError as exc:
        if is_condition_failure(exc):
            raise version_conflict() from exc
        raise
