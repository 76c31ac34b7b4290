"""Appointments and the slot counters they hold. See README.md for keys and access patterns.

Every change that takes or frees a place in a slot is one TransactWrite with the appointment
itself, so a slot can never be overbooked and a place is never lost or held twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError

from chalicelib.audit_trail import noting
from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict, Retryable
from chalicelib.domain.hospital_appointments import ImportedChange
from chalicelib.settings import get_settings
from chalicelib.store.errors import concurrent_change, version_conflict
from chalicelib.store.keys import (
    APPOINTMENT_SK,
    JOURNEY_SYNC_SK,
    SEND_LOCK_SK,
    appointment_pk,
    department_day_pk,
    patient_appointments_pk,
    slots_pk,
)
from chalicelib.store.models import (
    AppointmentItem,
    JourneySyncItem,
    SendLockItem,
    SlotCounter,
    bind_models,
)
from chalicelib.store.records import (
    failed_items,
    is_condition_failure,
    raced,
    transaction_write,
    versioned_doc,
)
from chalicelib.store.sealing import seal, unseal


class SlotFull(Conflict):
    pass


class AppointmentExists(Conflict):
    pass


class SendInProgress(Retryable):
    """A message of this appointment is leaving right now; a cancel or reschedule waits for it
    (at most the claim's lease) so that nothing of the old version leaves after it returns."""


@dataclass(frozen=True)
class JourneySync:
    """What a committed change still owes the appointment's journeys: the executions to stop and
    the one to start (`start_version`), as written with the change at `since`."""

    appointment_id: str
    stop_versions: frozenset[int]
    start_version: int | None
    since: str


def _sync_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#JOURNEYSYNC"


def _owe_journeys(
    tx: Any, tenant_id: str, appointment_id: str, now: str, *, stop: int | None, start: int | None
) -> None:
    """In the change's transaction: note what its journeys are owed. Stops add up (a change
    made before the last one was acted on keeps its stop); the start is the latest version's."""
    actions: list[Any] = [
        JourneySyncItem.entity.set("journey_sync"),
        JourneySyncItem.appointment_id.set(appointment_id),
        JourneySyncItem.since.set(now),
        JourneySyncItem.gsi2pk.set(_sync_pk(tenant_id)),
        JourneySyncItem.gsi2sk.set(f"{now}#{appointment_id}"),
    ]
    slot = JourneySyncItem.start_version
    actions.append(slot.set(start) if start is not None else slot.remove())
    if stop is not None:
        actions.append(JourneySyncItem.stop_versions.add({stop}))
    tx.update(JourneySyncItem(appointment_pk(tenant_id, appointment_id), JOURNEY_SYNC_SK), actions)


def _as_sync(item: JourneySyncItem) -> JourneySync:
    return JourneySync(
        item.appointment_id,
        frozenset(int(v) for v in (item.stop_versions or ())),
        int(item.start_version) if item.start_version is not None else None,
        item.since,
    )


def slot_sk(start: str, schedule_id: str) -> str:
    return f"{start}#{schedule_id}"


KIND = "appointment"
# What the clinic tells the patient to bring or do can be clinical: sealed.
SEALED_FIELDS = ("notes_for_patient",)


def appointment_doc(tenant_id: str, item: AppointmentItem) -> Document:
    doc = versioned_doc(item)
    return unseal(KIND, tenant_id, doc["id"], doc)  # a written item's own doc, too


def _item(tenant_id: str, doc: Document, local_date: str, version: int | None) -> AppointmentItem:
    body = {k: v for k, v in doc.items() if k not in ("version", "local")}
    body = seal(KIND, tenant_id, doc["id"], body, SEALED_FIELDS)
    item = AppointmentItem(
        appointment_pk(tenant_id, doc["id"]), APPOINTMENT_SK, entity="appointment", doc=body
    )
    if version is not None:
        item.version = version
    item.gsi1pk = patient_appointments_pk(tenant_id, doc["patient_id"])
    item.gsi1sk = f"{doc['start']}#{doc['id']}"
    item.gsi2pk = department_day_pk(tenant_id, doc["department"], local_date)
    item.gsi2sk = f"{doc['start']}#{doc['id']}"
    return item


def _counter(tenant_id: str, department: str, start: str, schedule_id: str) -> SlotCounter:
    return SlotCounter(slots_pk(tenant_id, department), slot_sk(start, schedule_id), entity="slot")


class AppointmentRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    @noting("appointment")
    def get(
        self, tenant_id: str, appointment_id: str, *, consistent: bool = False
    ) -> Document | None:
        try:
            return appointment_doc(
                tenant_id,
                AppointmentItem.get(
                    appointment_pk(tenant_id, appointment_id),
                    APPOINTMENT_SK,
                    consistent_read=consistent,
                ),
            )
        except DoesNotExist:
            return None

    def booked_counts(
        self, tenant_id: str, department: str, start: str, end: str
    ) -> dict[tuple[str, str], int]:
        """(start, schedule id) → places taken, for slots starting in [start, end)."""
        counters = SlotCounter.query(
            slots_pk(tenant_id, department), SlotCounter.sk.between(start, f"{end}#")
        )
        taken: dict[tuple[str, str], int] = {}
        for counter in counters:
            slot_start, schedule_id = counter.sk.split("#", 1)
            if slot_start < end:
                taken[(slot_start, schedule_id)] = int(counter.booked or 0)
        return taken

    @noting("appointment")
    def book(
        self, tenant_id: str, doc: Document, local_date: str, capacity: int, now: str
    ) -> Document:
        """Take a place and create the appointment, owing it its first journey."""
        item = _item(tenant_id, doc, local_date, version=None)
        try:
            with transaction_write() as tx:
                self._take(tx, tenant_id, doc, capacity)
                tx.save(item, condition=AppointmentItem.pk.does_not_exist())
                _owe_journeys(tx, tenant_id, doc["id"], now, stop=None, start=1)
        except TransactWriteError as exc:
            # Sent as [put appointment, take place]: puts go before updates.
            self._raise_for(
                exc,
                take_index=1,
                appointment_index=0,
                appointment_failed=AppointmentExists(
                    "the appointment exists already", code="appointment_exists"
                ),
            )
        return appointment_doc(tenant_id, item)

    @noting("appointment")
    def move(
        self,
        tenant_id: str,
        previous: Document,
        doc: Document,
        local_date: str,
        capacity: int,
        now: str,
    ) -> Document:
        """Reschedule: free the old place and take the new one in one transaction, unless a
        message of the old version is leaving (SendInProgress)."""
        item = _item(tenant_id, doc, local_date, version=previous["version"])
        try:
            with transaction_write() as tx:
                self._no_send_leaving(tx, tenant_id, doc["id"], now)
                self._free(tx, tenant_id, previous)
                self._take(tx, tenant_id, doc, capacity)
                tx.save(item)
                _owe_journeys(
                    tx,
                    tenant_id,
                    doc["id"],
                    now,
                    stop=previous["journey_version"],
                    start=doc["journey_version"],
                )
        except TransactWriteError as exc:
            # Sent as [check send lock, put appointment, free old place, take new place].
            self._raise_for(exc, take_index=3, appointment_index=1, lock_index=0)
        return appointment_doc(tenant_id, item)

    @noting("appointment")
    def release(
        self, tenant_id: str, previous: Document, doc: Document, local_date: str, now: str
    ) -> Document:
        """Cancel: the appointment changes and its place is freed, together, unless a message
        is leaving (SendInProgress)."""
        item = _item(tenant_id, doc, local_date, version=previous["version"])
        try:
            with transaction_write() as tx:
                self._no_send_leaving(tx, tenant_id, doc["id"], now)
                self._free(tx, tenant_id, previous)
                tx.save(item)
                _owe_journeys(
                    tx, tenant_id, doc["id"], now, stop=previous["journey_version"], start=None
                )
        except TransactWriteError as exc:
            self._raise_for(exc, take_index=None, appointment_index=1, lock_index=0)
        return appointment_doc(tenant_id, item)

    @noting("appointment")
    def put_imported(
        self,
        tenant_id: str,
        previous: Document | None,
        change: ImportedChange,
        local_date: str,
        capacity: int | None,
        now: str,
    ) -> Document:
        """A hospital-owned appointment as its system sent it, in one transaction: the record
        (created only if absent, else over the version read), the places it frees and takes,
        and what its journeys are owed. A change that ends a journey waits for a message
        of it that is leaving (SendInProgress), as a cancel does."""
        doc = change.doc
        version = previous["version"] if previous is not None else None
        item = _item(tenant_id, doc, local_date, version=version)
        owes = change.stop_version is not None or change.start_version is not None
        try:
            with transaction_write() as tx:
                if change.stop_version is not None:
                    self._no_send_leaving(tx, tenant_id, doc["id"], now)
                if previous is None:
                    tx.save(item, condition=AppointmentItem.pk.does_not_exist())
                else:
                    tx.save(item)
                if change.free_previous and previous is not None:
                    self._free(tx, tenant_id, previous)
                if change.take_place:
                    self._take(tx, tenant_id, doc, capacity or 1)
                if owes:
                    _owe_journeys(
                        tx,
                        tenant_id,
                        doc["id"],
                        now,
                        stop=change.stop_version,
                        start=change.start_version,
                    )
        except TransactWriteError as exc:
            # Sent as [lock check?, put appointment, updates (free, take, marker)].
            lock = 0 if change.stop_version is not None else None
            appointment_index = 0 if lock is None else 1
            take = appointment_index + 1 + int(change.free_previous) if change.take_place else None
            self._raise_for(
                exc,
                take_index=take,
                appointment_index=appointment_index,
                lock_index=lock,
                appointment_failed=version_conflict(),
            )
        return appointment_doc(tenant_id, item)

    def journey_sync(self, tenant_id: str, appointment_id: str) -> JourneySync | None:
        try:
            item = JourneySyncItem.get(
                appointment_pk(tenant_id, appointment_id), JOURNEY_SYNC_SK, consistent_read=True
            )
        except DoesNotExist:
            return None
        return _as_sync(item)

    def journeys_synced(self, tenant_id: str, synced: JourneySync) -> bool:
        """Drop the marker once acted on, unless a later change rewrote it meanwhile."""
        try:
            marker = JourneySyncItem(
                appointment_pk(tenant_id, synced.appointment_id), JOURNEY_SYNC_SK
            )
            marker.delete(condition=JourneySyncItem.since == synced.since)
        except DeleteError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def owed_journeys(self, tenant_id: str, changed_before: str) -> Iterator[JourneySync]:
        """Markers left by changes before a moment (GSI2 `T#<t>#JOURNEYSYNC`, by change time):
        what the repair sweep acts on."""
        for item in JourneySyncItem.by_listing.query(
            _sync_pk(tenant_id), JourneySyncItem.gsi2sk < changed_before
        ):
            yield _as_sync(item)

    @staticmethod
    def _no_send_leaving(tx: Any, tenant_id: str, appointment_id: str, now: str) -> None:
        tx.condition_check(
            SendLockItem,
            appointment_pk(tenant_id, appointment_id),
            SEND_LOCK_SK,
            condition=SendLockItem.pk.does_not_exist() | (SendLockItem.until < now),
        )

    @noting("appointment")
    def save(self, tenant_id: str, previous: Document, doc: Document, local_date: str) -> Document:
        """A change that keeps the place (confirmation, check-in, no-show, fulfilled)."""
        item = _item(tenant_id, doc, local_date, version=previous["version"])
        try:
            with transaction_write() as tx:
                tx.save(item)
        except TransactWriteError as exc:
            self._raise_for(exc, take_index=None, appointment_index=0)
        return appointment_doc(tenant_id, item)

    @noting("appointment")
    def for_patient(
        self,
        tenant_id: str,
        patient_id: str,
        *,
        after: str | None = None,
        before: str | None = None,
        limit: int = 50,
        newest_first: bool = False,
    ) -> list[Document]:
        condition: Any = None
        if after is not None and before is not None:
            condition = AppointmentItem.gsi1sk.between(after, before)
        elif after is not None:
            condition = AppointmentItem.gsi1sk > after
        elif before is not None:
            condition = AppointmentItem.gsi1sk < before
        items = AppointmentItem.by_patient.query(
            patient_appointments_pk(tenant_id, patient_id),
            condition,
            limit=limit,
            scan_index_forward=not newest_first,
        )
        return [appointment_doc(tenant_id, item) for item in items]

    @noting("appointment")
    def for_department_day(
        self, tenant_id: str, department: str, local_date: str
    ) -> list[Document]:
        items = AppointmentItem.by_day.query(department_day_pk(tenant_id, department, local_date))
        return [appointment_doc(tenant_id, item) for item in items]

    @staticmethod
    def _take(tx: Any, tenant_id: str, doc: Document, capacity: int) -> None:
        tx.update(
            _counter(tenant_id, doc["department"], doc["start"], doc["schedule_id"]),
            actions=[
                SlotCounter.booked.add(1),
                SlotCounter.capacity.set(capacity),
                SlotCounter.entity.set("slot"),
            ],
            condition=SlotCounter.booked.does_not_exist() | (SlotCounter.booked < capacity),
        )

    @staticmethod
    def _free(tx: Any, tenant_id: str, previous: Document) -> None:
        tx.update(
            _counter(tenant_id, previous["department"], previous["start"], previous["schedule_id"]),
            actions=[SlotCounter.booked.add(-1)],
            condition=SlotCounter.booked > 0,
        )

    @staticmethod
    def _raise_for(
        exc: TransactWriteError,
        *,
        take_index: int | None,
        appointment_index: int,
        appointment_failed: Conflict | None = None,
        lock_index: int | None = None,
    ) -> None:
        """Translate a cancelled transaction by which of its items failed. The appointment's
        own condition decides first: a booking that exists already (a retry) also finds its
        slot full, of itself, and is not a lost race for the slot."""
        if raced(exc):
            raise concurrent_change() from exc
        failed: Iterable[int] = failed_items(exc)
        if lock_index is not None and lock_index in failed:
            raise SendInProgress(
                "a message about this appointment is being sent; try again in a moment",
                code="send_in_progress",
            ) from exc
        if appointment_index in failed:
            raise (appointment_failed or version_conflict()) from exc
        if take_index is not None and take_index in failed:
            raise SlotFull(
                "that slot has just been taken; choose another", code="slot_full"
            ) from exc
        raise exc
