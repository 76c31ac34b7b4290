"""Deliveries (the claim and log line of each message) and the staff task queue."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pynamodb.exceptions import (
    DeleteError,
    DoesNotExist,
    PutError,
    TransactWriteError,
    UpdateError,
)

from chalicelib.audit_trail import noting
from chalicelib.domain.common import Document
from chalicelib.domain.deliveries import NEXT_STATUSES, DeliveryRecord, DeliveryStatus
from chalicelib.settings import get_settings
from chalicelib.store.contacts import Awaited, awaited_item
from chalicelib.store.erasure import tasks_pk
from chalicelib.store.keys import APPOINTMENT_SK, SEND_LOCK_SK, appointment_pk
from chalicelib.store.models import (
    AppointmentItem,
    DeliveryItem,
    SendLockItem,
    StaffTaskItem,
    bind_models,
)
from chalicelib.store.records import (
    as_document,
    failed_items,
    is_condition_failure,
    raced,
    save_versioned,
    stored_body,
    transaction_write,
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


class Claim(StrEnum):
    """How a claim on a step went."""

    CLAIMED = "claimed"  # this attempt holds the step: send
    TAKEN = "taken"  # settled already, or another attempt holds it within its lease
    NOT_DUE = "not_due"  # the appointment is no longer as the message needs it
    BUSY = "busy"  # another message of the same appointment is being sent right now


@dataclass(frozen=True)
class SendGuard:
    """The appointment a message is about, as it must still be when the message is claimed:
    same journey version, a status the step makes sense in. The claim also takes the
    appointment's send lock, which a cancel or reschedule waits for."""

    appointment_id: str
    journey_version: int
    statuses: frozenset[str]


def _item(tenant_id: str, record: DeliveryRecord) -> DeliveryItem:
    status = str(record["status"])  # a StrEnum member is stored as its plain value
    return DeliveryItem(
        _delivery_pk(tenant_id, record["key"]),
        DELIVERY_SK,
        entity="delivery",
        doc={**record, "status": status},
        status=status,
        lease_until=record.get("lease_until"),
        attempt=record["attempt"],
        gsi1pk=_log_pk(tenant_id, record["patient_id"]),
        gsi1sk=f"{record['created_at']}#{record['key']}",
    )


def _claimable(now: str) -> Any:
    """A step may be claimed when it was never claimed, its last attempt failed, or the claim
    holding it has outlived its lease."""
    return (
        DeliveryItem.pk.does_not_exist()
        | (DeliveryItem.status == DeliveryStatus.FAILED)
        | ((DeliveryItem.status == DeliveryStatus.SENDING) & (DeliveryItem.lease_until < now))
    )


def _held_by(attempt: int) -> Any:
    return (DeliveryItem.status == DeliveryStatus.SENDING) & (DeliveryItem.attempt == attempt)


class DeliveryRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def claim(
        self,
        tenant_id: str,
        record: DeliveryRecord,
        now: str,
        guard: SendGuard | None = None,
        awaited: Awaited | None = None,
        *,
        only_if_new: bool = False,
    ) -> Claim:
        """Claim a step for one attempt (`record` is `sending`, with its lease), in one
        transaction with the appointment's condition and send lock and, for a text that invites
        a reply, with the answers awaited on its number (unchanged since they were read).
        `only_if_new`: only if the step was never claimed (a first attempt made without reading
        the record first)."""
        try:
            with transaction_write() as tx:
                if guard is not None:
                    tx.condition_check(
                        AppointmentItem,
                        appointment_pk(tenant_id, guard.appointment_id),
                        APPOINTMENT_SK,
                        condition=AppointmentItem.doc["status"].is_in(*sorted(guard.statuses))
                        & (AppointmentItem.doc["journey_version"] == guard.journey_version),
                    )
                claimable = DeliveryItem.pk.does_not_exist() if only_if_new else _claimable(now)
                tx.save(_item(tenant_id, record), condition=claimable)
                if guard is not None:
                    tx.save(
                        SendLockItem(
                            appointment_pk(tenant_id, guard.appointment_id),
                            SEND_LOCK_SK,
                            entity="send_lock",
                            owner=record["key"],
                            until=record["lease_until"],
                        ),
                        condition=SendLockItem.pk.does_not_exist()
                        | (SendLockItem.until < now)
                        | (SendLockItem.owner == record["key"]),
                    )
                if awaited is not None:
                    item, unchanged = awaited_item(awaited, now)
                    tx.save(item, condition=unchanged)
        except TransactWriteError as exc:
            if raced(exc):
                return Claim.BUSY
            failed = failed_items(exc)
            if not failed:
                raise
            offset = 1 if guard is not None else 0
            if guard is not None and 0 in failed:
                return Claim.NOT_DUE
            if offset in failed:
                return Claim.TAKEN
            # The appointment's lock (another of its messages is leaving), or the awaited
            # answers changed meanwhile (another text to the number): try again.
            return Claim.BUSY
        return Claim.CLAIMED

    def settle(self, tenant_id: str, record: DeliveryRecord, guard: SendGuard | None) -> bool:
        """Write the attempt's outcome, if this attempt still holds the step; then free the
        appointment's send lock. False if another attempt took the step over meanwhile."""
        try:
            _item(tenant_id, record).save(condition=_held_by(record["attempt"]))
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        finally:
            if guard is not None:
                self._unlock(tenant_id, guard.appointment_id, record["key"])
        return True

    def _unlock(self, tenant_id: str, appointment_id: str, key: str) -> None:
        """Best effort: a lock left behind lapses at the end of its lease."""
        try:
            SendLockItem(appointment_pk(tenant_id, appointment_id), SEND_LOCK_SK).delete(
                condition=SendLockItem.owner == key
            )
        except DeleteError:
            return

    def record_outcome(self, tenant_id: str, record: DeliveryRecord, now: str) -> bool:
        """Settle a step without sending (skipped, suppressed), unless it was settled or is
        claimed meanwhile. False if so: the caller reads what is there."""
        try:
            _item(tenant_id, record).save(condition=_claimable(now))
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True

    def mark(self, tenant_id: str, key: str, status: DeliveryStatus, at: str) -> bool:
        """Record what the provider told us later (delivered, bounced), where the record's
        status allows it: a Delivery notice after a Bounce changes nothing."""
        allowed = [str(s) for s, after in NEXT_STATUSES.items() if status in after]
        value = str(status)
        try:
            DeliveryItem(_delivery_pk(tenant_id, key), DELIVERY_SK).update(
                actions=[
                    DeliveryItem.status.set(value),
                    DeliveryItem.doc["status"].set(value),
                    DeliveryItem.doc[f"{status}_at"].set(at),
                ],
                condition=DeliveryItem.status.is_in(*allowed),
            )
        except UpdateError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    @noting("delivery")
    def get(self, tenant_id: str, key: str) -> DeliveryRecord | None:
        try:
            item = DeliveryItem.get(_delivery_pk(tenant_id, key), DELIVERY_SK, consistent_read=True)
        except DoesNotExist:
            return None
        return _record(item)

    @noting("delivery")
    def for_patient(
        self,
        tenant_id: str,
        patient_id: str,
        limit: int = 100,
        *,
        between: tuple[str, str] | None = None,
    ) -> list[Document]:
        """The patient's delivery log, oldest first; `between` bounds when each was claimed."""
        condition = None if between is None else DeliveryItem.gsi1sk.between(*_range(between))
        items = DeliveryItem.by_patient.query(
            _log_pk(tenant_id, patient_id), condition, limit=limit
        )
        return [dict(_record(item)) for item in items]


def _range(between: tuple[str, str]) -> tuple[str, str]:
    """Sort keys `<moment>#<id>` from the first moment through the last (`~` sorts after `#`)."""
    return between[0], f"{between[1]}~"


def _record(item: DeliveryItem) -> DeliveryRecord:
    doc = as_document(item.doc)
    doc.setdefault("attempt", int(item.attempt or 1))
    if item.status:
        doc["status"] = item.status  # the top-level status is the one conditions keep
    record: DeliveryRecord = doc  # type: ignore[assignment]
    return record


def _list_by_patient(item: StaffTaskItem, tenant_id: str, doc: Document) -> None:
    """A task's place in its patient's list (GSI1), which erasure reads."""
    if doc.get("patient_id"):
        item.gsi1pk = tasks_pk(tenant_id, doc["patient_id"])
        item.gsi1sk = f"{doc['created_at']}#{doc['id']}"


class StaffTaskRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    @noting("task")
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
        _list_by_patient(item, tenant_id, doc)
        try:
            item.save(condition=StaffTaskItem.pk.does_not_exist())
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            existing = self.get(tenant_id, doc["id"])
            assert existing is not None
            return existing, False
        return {**doc, "version": item.version}, True

    def mark_alerted(self, tenant_id: str, task: Document, at: str) -> Document:
        """Record that staff were told of the task. If the task changed meanwhile (closed), it
        is left as it is: the alert went out, and telling twice is the safe side."""
        item = StaffTaskItem(_task_pk(tenant_id, task["id"]), TASK_SK, version=task["version"])
        try:
            item.update(actions=[StaffTaskItem.doc["alerted_at"].set(at)])
        except UpdateError as exc:
            if is_condition_failure(exc):
                return task
            raise
        return {**task, "alerted_at": at, "version": item.version}

    @noting("task")
    def get(self, tenant_id: str, task_id: str) -> Document | None:
        try:
            item = StaffTaskItem.get(_task_pk(tenant_id, task_id), TASK_SK, consistent_read=True)
        except DoesNotExist:
            return None
        return versioned_doc(item)

    @noting("task")
    def for_patient(
        self, tenant_id: str, patient_id: str, between: tuple[str, str], limit: int = 200
    ) -> list[Document]:
        """The tasks about a patient opened `between` two moments, oldest first."""
        items = StaffTaskItem.by_patient.query(
            tasks_pk(tenant_id, patient_id),
            StaffTaskItem.gsi1sk.between(*_range(between)),
            limit=limit,
        )
        return [versioned_doc(item) for item in items]

    @noting("task")
    def open_tasks(self, tenant_id: str, limit: int = 200) -> list[Document]:
        items = StaffTaskItem.open_tasks.query(_open_tasks_pk(tenant_id), limit=limit)
        return [versioned_doc(item) for item in items]

    @noting("task")
    def close(self, tenant_id: str, previous: Document, doc: Document) -> Document:
        """Closing takes the task out of the open queue (its index keys go)."""
        item = StaffTaskItem(
            _task_pk(tenant_id, doc["id"]),
            TASK_SK,
            entity="task",
            doc=stored_body(doc),
            version=previous["version"],
        )
        _list_by_patient(item, tenant_id, doc)
        save_versioned(item, create=False)
        return {**doc, "version": item.version}
