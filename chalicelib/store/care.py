"""Aftercare journeys and recalls, in the patient's partition (access patterns 27 to 31 in
README.md): one by key, all of a patient's by the `CARE#` prefix, and recalls due by a date
through GSI2."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.audit_trail import noting
from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict
from chalicelib.domain.recall import RecallStatus
from chalicelib.settings import get_settings
from chalicelib.store.errors import concurrent_change
from chalicelib.store.keys import patient_pk
from chalicelib.store.models import CareItem, bind_models
from chalicelib.store.records import (
    put_versioned,
    stored_body,
    versioned_doc,
)

AFTERCARE = "AC"
RECALL = "RC"


def _sk(kind: str, record_id: str) -> str:
    return f"CARE#{kind}#{record_id}"


def recall_due_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#RECALLDUE"


class CareRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    @noting("care")
    def get(self, tenant_id: str, patient_id: str, kind: str, record_id: str) -> Document | None:
        try:
            item = CareItem.get(
                patient_pk(tenant_id, patient_id), _sk(kind, record_id), consistent_read=True
            )
        except DoesNotExist:
            return None
        return versioned_doc(item)

    @noting("care")
    def put(
        self, tenant_id: str, kind: str, doc: Document, expected_version: int | None
    ) -> Document:
        """Create (expected_version None: must not exist) or replace the version read. A recall
        whose status is `scheduled` is put in the due index; any other status leaves it."""
        keys: dict[str, Any] = {}
        if kind == RECALL and doc["status"] == RecallStatus.SCHEDULED:
            keys = {
                "gsi2pk": recall_due_pk(tenant_id),
                "gsi2sk": f"{doc['due_date']}#{doc['patient_id']}#{doc['rule_id']}",
            }
        item = CareItem(
            patient_pk(tenant_id, doc["patient_id"]),
            _sk(kind, doc["id"]),
            entity="aftercare" if kind == AFTERCARE else "recall",
            doc=stored_body(doc),
            **keys,
        )
        return put_versioned(item, expected_version)

    @noting("care")
    def modify(
        self,
        tenant_id: str,
        patient_id: str,
        kind: str,
        record_id: str,
        change: Callable[[Document], Document | None],
        attempts: int = 5,
        *,
        updated_at: str | None = None,
    ) -> Document | None:
        """Read, change, write back on the version read; again when another writer came in
        between. `change` gets a copy and returns the new record, or None to keep it as it
        is; a changed record is stamped `updated_at` when given. None when there is no such
        record."""
        for _ in range(attempts):
            current = self.get(tenant_id, patient_id, kind, record_id)
            if current is None:
                return None
            changed = change(copy.deepcopy(current))
            if changed is None:
                return current
            if updated_at is not None:
                changed["updated_at"] = updated_at
            try:
                return self.put(tenant_id, kind, changed, current["version"])
            except Conflict as conflict:
                if conflict.code != "version_conflict":
                    raise
        raise concurrent_change()

    @noting("care")
    def for_patient(self, tenant_id: str, patient_id: str) -> list[Document]:
        items = CareItem.query(
            patient_pk(tenant_id, patient_id), CareItem.sk.startswith("CARE#"), consistent_read=True
        )
        return [versioned_doc(item) for item in items]

    def recalls_due(self, tenant_id: str, through: str, page_size: int = 100) -> Iterator[Document]:
        """Scheduled recalls due on or before the date `through`, oldest first: a keyed Query on
        GSI2, read a page at a time."""
        query = CareItem.due.query(
            recall_due_pk(tenant_id), CareItem.gsi2sk <= f"{through}#~", page_size=page_size
        )
        return (versioned_doc(item) for item in query)
