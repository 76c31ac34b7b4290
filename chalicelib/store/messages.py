"""Deliveries (sent / suppressed / failed, per patient) and the staff task queue."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.domain.common import Document
from chalicelib.settings import get_settings
from chalicelib.store.models import DeliveryItem, StaffTaskItem, bind_models
from chalicelib.store.records import (
    as_document,
    is_condition_failure,
    save_versioned,
    stored_body,
    versioned_doc,
)

DELIVERY_SK = "DELIVERY"
TASK_SK = "TASK"


def _delivery_pk(tenant_id: str, key: str) -> str:
    return f"T#{tenant_id}#SEND#{key}"


def _log_pk(tenant_id: str, patient_id: str) -> str:
    return f"T#{tenant_id}#P#{patient_id}#DELIVERIES"


def _task_pk(tenant_id: str, task_id: str) -> str:
    return f"T#{tenant_id}#TASK#{task_id}"


def _open_tasks_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#TASKS#OPEN"


class DeliveryRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def begin(self, tenant_id: str, key: str, doc: Document) -> Document | None:
        """Claim a send. None if this key is new (go ahead), else the earlier record."""
        item = DeliveryItem(
            _delivery_pk(tenant_id, key),
            DELIVERY_SK,
            entity="delivery",
            doc=doc,
            gsi1pk=_log_pk(tenant_id, doc["patient_id"]),
            gsi1sk=f"{doc['created_at']}#{key}",
        )
        try:
            item.save(condition=DeliveryItem.pk.does_not_exist())
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            return self.get(tenant_id, key)
        return None

    def finish(self, tenant_id: str, key: str, doc: Document) -> None:
        DeliveryItem(_delivery_pk(tenant_id, key), DELIVERY_SK).update(
            actions=[DeliveryItem.doc.set(doc)]
        )

    def mark(self, tenant_id: str, key: str, **changes: str) -> None:
        """Record what the provider later told us (delivered, bounced)."""
        current = self.get(tenant_id, key)
        if current is not None:
            self.finish(tenant_id, key, {**current, **changes})

    def get(self, tenant_id: str, key: str) -> Document | None:
        try:
            return as_document(
                DeliveryItem.get(
                    _delivery_pk(tenant_id, key), DELIVERY_SK, consistent_read=True
                ).doc
            )
        except DoesNotExist:
            return None

    def for_patient(self, tenant_id: str, patient_id: str, limit: int = 100) -> list[Document]:
        items = DeliveryItem.by_patient.query(_log_pk(tenant_id, patient_id), limit=limit)
        return [as_document(item.doc) for item in items]


class StaffTaskRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def create(self, tenant_id: str, doc: Document) -> tuple[Document, bool]:
        """Create a task once: its id is derived from what it is about, so a replayed step
        does not open a second one. Returns the task and whether this call created it."""
        item = StaffTaskItem(
            _task_pk(tenant_id, doc["id"]),
            TASK_SK,
            entity="task",
            doc=doc,
            gsi2pk=_open_tasks_pk(tenant_id),
            gsi2sk=f"{doc['created_at']}#{doc['id']}",
        )
        try:
            item.save(condition=StaffTaskItem.pk.does_not_exist())
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            existing = self.get(tenant_id, doc["id"])
            assert existing is not None
            return existing, False
        return {**doc, "version": item.version}, True

    def get(self, tenant_id: str, task_id: str) -> Document | None:
        try:
            item = StaffTaskItem.get(_task_pk(tenant_id, task_id), TASK_SK)
        except DoesNotExist:
            return None
        return versioned_doc(item)

    def open_tasks(self, tenant_id: str, limit: int = 200) -> list[Document]:
        items = StaffTaskItem.open_tasks.query(_open_tasks_pk(tenant_id), limit=limit)
        return [versioned_doc(item) for item in items]

    def close(self, tenant_id: str, previous: Document, doc: Document) -> Document:
        """Closing takes the task out of the open queue (its index keys go)."""
        item = StaffTaskItem(
            _task_pk(tenant_id, doc["id"]),
            TASK_SK,
            entity="task",
            doc=stored_body(doc),
            version=previous["version"],
        )
        save_versioned(item, create=False)
        return {**doc, "version": item.version}
