"""Segment entries and their listing. See README.md (rows 40-43) and `domain.segments`.

Entries are written by `PatientRepository` in the profile's own TransactWrite (through
`entry_item`); this repository only reads them, plus the catalogue of member classes seen.
"""

from __future__ import annotations

from typing import Any

from chalicelib.audit_trail import noting
from chalicelib.domain.common import Document
from chalicelib.domain.segments import (
    BIRTHS_PARTITION,
    CONDITION_PREFIX,
    GUARDIANS_OF_MINORS,
    MEMBER_PREFIX,
    Entry,
    SegmentQuery,
    patient_of,
    segment_partition,
    visit_entries,
)
from chalicelib.settings import get_settings
from chalicelib.store.keys import PROFILE_SK, patient_pk
from chalicelib.store.models import PatientItem, SegmentEntryItem, bind_models
from chalicelib.store.records import versioned_doc
from chalicelib.store.sealing import lookup_hash, unseal

BATCH_GET_MAX = 100


# Partitions whose entries are sorted by birth date: the key holds the birth month only (the
# date itself is sealed in the profile); a query's boundary month is settled from the profiles.
BY_BIRTH = frozenset({BIRTHS_PARTITION, segment_partition(GUARDIANS_OF_MINORS)})
CONDITION_PARTITION = segment_partition(CONDITION_PREFIX)


def stored_partition(tenant_id: str, partition: str) -> str:
    """A segment's partition key. A condition tag is health data: its keyed hash stands in."""
    if partition.startswith(CONDITION_PARTITION):
        tag = partition.removeprefix(CONDITION_PARTITION)
        partition = CONDITION_PARTITION + lookup_hash(tenant_id, "condition", tag)
    return f"T#{tenant_id}#{partition}"


def stored_sort(entry: Entry) -> str:
    if entry.partition in BY_BIRTH:
        born, patient_id = entry.sort.split("#", 1)
        return f"{born[:7]}#{patient_id}"
    return entry.sort


def entry_item(tenant_id: str, entry: Entry) -> SegmentEntryItem:
    return SegmentEntryItem(
        stored_partition(tenant_id, entry.partition),
        stored_sort(entry),
        entity="segment_entry",
        patient_id=patient_of(entry.sort),
    )


def catalogue_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#SEGMENTS"


def remember_member_classes(tenant_id: str, joined: set[Entry]) -> None:
    """Note each member class a patient just joined, so `GET /segments` can list it. An
    idempotent put after the profile's transaction, not in it: two registrations of the same
    class would otherwise conflict over this one item."""
    prefix = segment_partition(MEMBER_PREFIX)
    for entry in joined:
        if entry.partition.startswith(prefix):
            segment = entry.partition.removeprefix("SEG#")
            SegmentEntryItem(catalogue_pk(tenant_id), segment, entity="segment").save()


def _condition(query: SegmentQuery) -> Any:
    """The key condition; for birth-sorted partitions, whole months (the boundary month in)."""
    by_month = query.partition in BY_BIRTH
    if query.at_least is not None:
        return SegmentEntryItem.sk >= (f"{query.at_least[:7]}#" if by_month else query.at_least)
    if query.below is not None:
        return SegmentEntryItem.sk < (f"{query.below[:7]}#~" if by_month else query.below)
    return None


def _boundary_month(query: SegmentQuery) -> str | None:
    if query.partition not in BY_BIRTH:
        return None
    bound = query.at_least or query.below
    return bound[:7] if bound else None


class SegmentRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def members(
        self, tenant_id: str, query: SegmentQuery, limit: int, after: str | None
    ) -> tuple[list[str], str | None]:
        """Up to `limit` patient ids of a segment, in sort-key order, after the sort key
        `after`; and the sort key to continue from (None when the segment is exhausted)."""
        partition = stored_partition(tenant_id, query.partition)
        start = {"PK": {"S": partition}, "SK": {"S": after}} if after is not None else None
        result = SegmentEntryItem.query(
            partition,
            range_key_condition=_condition(query),
            limit=limit,
            last_evaluated_key=start,
        )
        sort_keys = [item.sk for item in result]
        last = result.last_evaluated_key
        next_after = sort_keys[-1] if last and sort_keys else None
        return self._exactly(tenant_id, query, sort_keys), next_after

    def _exactly(self, tenant_id: str, query: SegmentQuery, sort_keys: list[str]) -> list[str]:
        """The members among these entries: those of the boundary month are judged by the
        birth date in their (sealed) profile."""
        month = _boundary_month(query)
        ids = [patient_of(sk) for sk in sort_keys]
        undecided = [patient_of(sk) for sk in sort_keys if month and sk.startswith(month)]
        if not undecided:
            return ids
        births = {
            doc["id"]: doc.get("birth_date", "") for doc in self.profiles(tenant_id, undecided)
        }
        out = set()
        for patient_id in undecided:
            born = births.get(patient_id)
            inside = born is not None and (
                born >= query.at_least if query.at_least else born < (query.below or "")
            )
            if not inside:
                out.add(patient_id)
        return [p for p in ids if p not in out]

    def note_visit(self, tenant_id: str, patient_id: str, appointment_type: str) -> None:
        """A fulfilled visit places its patient in the visit indexes (idempotent puts, after
        the visit: an event handler's, not the profile's transaction)."""
        for entry in visit_entries(patient_id, appointment_type):
            entry_item(tenant_id, entry).save()

    def count(self, tenant_id: str, query: SegmentQuery) -> int:
        """How many members a segment has now (a Query with Select COUNT, paged)."""
        partition = stored_partition(tenant_id, query.partition)
        month = _boundary_month(query)
        if month is None:
            return SegmentEntryItem.count(partition, _condition(query))
        # Whole months by COUNT; the boundary month's entries one by one.
        in_month = SegmentEntryItem.sk.startswith(f"{month}#")
        boundary = [item.sk for item in SegmentEntryItem.query(partition, in_month)]
        whole = SegmentEntryItem.count(partition, _condition(query)) - len(boundary)
        return whole + len(self._exactly(tenant_id, query, boundary))

    @noting("patient")
    def profiles(self, tenant_id: str, patient_ids: list[str]) -> list[Document]:
        """The live profiles of these patients, in the order given (BatchGetItem)."""
        found: dict[str, Document] = {}
        for start in range(0, len(patient_ids), BATCH_GET_MAX):
            keys = [
                (patient_pk(tenant_id, p), PROFILE_SK)
                for p in patient_ids[start : start + BATCH_GET_MAX]
            ]
            for item in PatientItem.batch_get(keys):
                if not item.deleted_at:
                    doc = versioned_doc(item)
                    found[doc["id"]] = unseal("patient", tenant_id, doc["id"], doc)
        return [found[p] for p in patient_ids if p in found]

    def member_classes(self, tenant_id: str) -> list[str]:
        items = SegmentEntryItem.query(
            catalogue_pk(tenant_id), SegmentEntryItem.sk.startswith(MEMBER_PREFIX)
        )
        return [item.sk.removeprefix(MEMBER_PREFIX) for item in items]
