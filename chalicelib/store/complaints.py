"""Complaints (rows 72-76 of README.md): the complaint, its deadline marker while it may still
escalate, the patient's pointer to it, and the tenant's yearly numbering."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.audit_trail import noting
from chalicelib.domain.complaints import SEALED_FIELDS, Complaint
from chalicelib.settings import get_settings
from chalicelib.store.errors import version_conflict
from chalicelib.store.keys import patient_pk
from chalicelib.store.models import (
    ComplaintDueItem,
    ComplaintItem,
    PatientPointerItem,
    SequenceItem,
    bind_models,
)
from chalicelib.store.records import (
    failed_items,
    stored_body,
    transaction_write,
    versioned_doc,
)
from chalicelib.store.sealing import seal, unseal

KIND = "complaint"
COMPLAINT_SK = "COMPLAINT"
DUE_SK = "DUE"
POINTER_PREFIX = "COMPLAINT#"

Position = tuple[str, str]  # a listing's sort key and the complaint id


def complaint_pk(tenant_id: str, complaint_id: str) -> str:
    return f"T#{tenant_id}#COMPLAINT#{complaint_id}"


def listing_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#COMPLAINTS"


def department_pk(tenant_id: str, department: str) -> str:
    return f"T#{tenant_id}#COMPLAINTS#{department}"


def due_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#COMPLAINTS#DUE"


def sequence_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#COMPLAINT-SEQ"


def _sort_key(doc: Complaint) -> str:
    return f"{doc['created_at']}#{doc['id']}"


def _doc(tenant_id: str, item: ComplaintItem) -> Complaint:
    doc = versioned_doc(item)
    return Complaint(**unseal(KIND, tenant_id, doc["id"], doc))  # type: ignore[typeddict-item,no-any-return]


def _item(tenant_id: str, doc: Complaint) -> ComplaintItem:
    return ComplaintItem(
        complaint_pk(tenant_id, doc["id"]),
        COMPLAINT_SK,
        entity="complaint",
        doc=seal(KIND, tenant_id, doc["id"], stored_body(dict(doc)), SEALED_FIELDS),
        gsi1pk=department_pk(tenant_id, doc["department"]),
        gsi1sk=_sort_key(doc),
        gsi2pk=listing_pk(tenant_id),
        gsi2sk=_sort_key(doc),
    )


class ComplaintRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def next_number(self, tenant_id: str, year: int) -> int:
        """The year's next complaint number (a lost write leaves a gap, never a duplicate)."""
        item = SequenceItem(sequence_pk(tenant_id), str(year))
        item.update(actions=[SequenceItem.seq.add(1), SequenceItem.entity.set("sequence")])
        return int(item.seq or 0)

    @noting("complaint")
    def create(self, tenant_id: str, doc: Complaint) -> tuple[Complaint, bool]:
        """The complaint, its deadline marker and the patient's pointer, in one transaction;
        when the id exists already (a replayed satisfaction response), the complaint as it is."""
        item = _item(tenant_id, doc)
        try:
            with transaction_write() as tx:
                tx.save(item, condition=ComplaintItem.pk.does_not_exist())
                tx.save(
                    ComplaintDueItem(
                        complaint_pk(tenant_id, doc["id"]),
                        DUE_SK,
                        entity="complaint_due",
                        complaint_id=doc["id"],
                        deadline=doc["deadline"],
                        gsi2pk=due_pk(tenant_id),
                        gsi2sk=f"{doc['deadline']}#{doc['id']}",
                    )
                )
                tx.save(
                    PatientPointerItem(
                        patient_pk(tenant_id, doc["patient_id"]),
                        f"{POINTER_PREFIX}{doc['id']}",
                        entity="complaint_pointer",
                        ref_id=doc["id"],
                        created_at=doc["created_at"],
                    )
                )
        except TransactWriteError as exc:
            if not failed_items(exc):
                raise
            existing = self.get(tenant_id, doc["id"])
            if existing is None:
                raise
            return existing, False
        return Complaint(**{**doc, "version": 1}), True

    @noting("complaint")
    def get(self, tenant_id: str, complaint_id: str) -> Complaint | None:
        try:
            item = ComplaintItem.get(
                complaint_pk(tenant_id, complaint_id), COMPLAINT_SK, consistent_read=True
            )
        except DoesNotExist:
            return None
        return _doc(tenant_id, item)

    @noting("complaint")
    def save(
        self, tenant_id: str, previous: Complaint, doc: Complaint, *, drop_due: bool
    ) -> Complaint:
        """Replace the version read; `drop_due`: it can no longer escalate (ended, escalated),
        so its deadline marker goes in the same transaction."""
        item = _item(tenant_id, doc)
        item.version = previous["version"]
        try:
            with transaction_write() as tx:
                tx.save(item)
                if drop_due:
                    tx.delete(ComplaintDueItem(complaint_pk(tenant_id, doc["id"]), DUE_SK))
        except TransactWriteError as exc:
            if failed_items(exc):
                raise version_conflict() from exc
            raise
        return Complaint(**{**doc, "version": previous["version"] + 1})

    @noting("complaint")
    def page(
        self,
        tenant_id: str,
        departments: list[str] | None,
        status: str | None,
        limit: int,
        after: Position | None,
    ) -> tuple[list[Complaint], Position | None]:
        """Newest first: the tenant's listing, or each department's merged; `status` filters."""
        condition = ComplaintItem.doc["status"] == status if status else None
        queries: list[Iterator[ComplaintItem]] = []
        for department in departments if departments is not None else [None]:
            index: Any = (
                ComplaintItem.by_tenant if department is None else ComplaintItem.by_department
            )
            key = (
                listing_pk(tenant_id)
                if department is None
                else department_pk(tenant_id, department)
            )
            sort_key = ComplaintItem.gsi2sk if department is None else ComplaintItem.gsi1sk
            queries.append(
                iter(
                    index.query(
                        key,
                        sort_key < after[0] if after else None,
                        filter_condition=condition,
                        scan_index_forward=False,
                        limit=limit + 1,
                    )
                )
            )
        merged = heapq.merge(*queries, key=lambda item: str(item.gsi2sk), reverse=True)
        found = [item for _, item in zip(range(limit + 1), merged, strict=False)]
        docs = [_doc(tenant_id, item) for item in found[:limit]]
        more = len(found) > limit
        return docs, ((_sort_key(docs[-1]), docs[-1]["id"]) if more and docs else None)

    @noting("complaint")
    def for_patient(self, tenant_id: str, patient_id: str) -> list[Complaint]:
        """A patient's complaints, newest first (their pointers, then the complaints)."""
        ids = [
            pointer.ref_id
            for pointer in PatientPointerItem.query(
                patient_pk(tenant_id, patient_id),
                PatientPointerItem.sk.startswith(POINTER_PREFIX),
            )
        ]
        keys = [(complaint_pk(tenant_id, i), COMPLAINT_SK) for i in ids]
        found = [_doc(tenant_id, item) for item in ComplaintItem.batch_get(keys)] if keys else []
        return sorted(found, key=_sort_key, reverse=True)

    def overdue(self, tenant_id: str, now_iso: str) -> list[str]:
        """Complaints whose deadline has passed and that may still escalate (the sweep)."""
        return [
            item.complaint_id
            for item in ComplaintDueItem.due.query(
                due_pk(tenant_id), ComplaintDueItem.gsi2sk <= f"{now_iso}#~"
            )
        ]

    def forget_patient(self, tenant_id: str, patient_id: str) -> int:
        """Erasure: the patient's complaints and their markers (the pointers go with the
        patient's partition)."""
        deleted = 0
        for pointer in PatientPointerItem.query(
            patient_pk(tenant_id, patient_id), PatientPointerItem.sk.startswith(POINTER_PREFIX)
        ):
            for sk in (COMPLAINT_SK, DUE_SK):
                ComplaintDueItem(complaint_pk(tenant_id, pointer.ref_id), sk).delete()
                deleted += 1
        return deleted
