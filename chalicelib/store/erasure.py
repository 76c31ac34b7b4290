"""What erasure needs of the table: every key that names a patient, found by key (their own
partitions, the indexes that list their records), never by Scan; and deletes in batches.
See README.md, "Erasure"."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.settings import get_settings
from chalicelib.store.keys import patient_appointments_pk, patient_pk
from chalicelib.store.models import AnyItem, ContactItem, SlotCounter, bind_models
from chalicelib.store.records import as_document

Key = tuple[str, str]


def deliveries_pk(tenant_id: str, patient_id: str) -> str:
    return f"T#{tenant_id}#P#{patient_id}#DELIVERIES"


def tasks_pk(tenant_id: str, patient_id: str) -> str:
    return f"T#{tenant_id}#P#{patient_id}#TASKS"


class ErasureRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def partition(self, pk: str) -> list[Key]:
        """Every item of one partition."""
        return [(item.pk, item.sk) for item in AnyItem.query(pk)]

    def listed_by_lookup(self, gsi1pk: str) -> list[Key]:
        """The table keys of the items GSI1 lists under `gsi1pk`."""
        return [(item.pk, item.sk) for item in AnyItem.by_lookup.query(gsi1pk)]

    def listed_by_listing(self, gsi2pk: str) -> list[Key]:
        return [(item.pk, item.sk) for item in AnyItem.by_listing.query(gsi2pk)]

    def patients_partitions(self, tenant_id: str, patient_id: str) -> list[Key]:
        """The patient's own partition and those that begin with it (`#LINKINVITES`...), and the
        appointments, deliveries and staff tasks the patient's indexes list."""
        keys = self.partition(patient_pk(tenant_id, patient_id))
        keys += self.partition(f"{patient_pk(tenant_id, patient_id)}#LINKINVITES")
        for appointment_pk, _ in self.listed_by_lookup(
            patient_appointments_pk(tenant_id, patient_id)
        ):
            keys += self.partition(appointment_pk)  # the appointment, its send lock, its sync
        keys += self.listed_by_lookup(deliveries_pk(tenant_id, patient_id))
        keys += self.listed_by_lookup(tasks_pk(tenant_id, patient_id))
        keys += self.listed_by_lookup(f"{patient_pk(tenant_id, patient_id)}#WEBHOOKS")
        keys += self.listed_by_lookup(f"{patient_pk(tenant_id, patient_id)}#VOUCHERS")
        return keys

    def delete(self, keys: Iterable[Key]) -> int:
        """Delete these items (BatchWriteItem, unprocessed items retried); deleting an item that
        is not there is no error. Returns how many keys were sent."""
        unique = sorted(set(keys))
        # One batch per key family (`T#...`, `LINK#...`, `SMS#...`): IAM judges a batch's
        # leading keys all together, and each family is allowed by a statement of its own.
        families: dict[str, list[Key]] = {}
        for pk, sk in unique:
            families.setdefault(pk.split("#", 1)[0], []).append((pk, sk))
        for family in families.values():
            with AnyItem.batch_write() as batch:
                for pk, sk in family:
                    batch.delete(AnyItem(pk, sk))
        return len(unique)

    def release_place(self, tenant_id: str, department: str, slot_sk: str) -> None:
        """Give a booked place back (never below zero)."""
        counter = SlotCounter(f"T#{tenant_id}#SLOTS#{department}", slot_sk)
        counter.update(actions=[SlotCounter.booked.add(-1)], condition=SlotCounter.booked > 0)

    def awaited_for(self, sms_partition: str) -> list[tuple[str, dict[str, object]]]:
        """The awaited-answers items of one number: (sort key, document)."""
        return [
            (item.sk, as_document(item.doc))
            for item in ContactItem.query(sms_partition, ContactItem.sk.startswith("AWAIT#"))
        ]

    def keep_awaited(self, sms_partition: str, sk: str, doc: dict[str, object]) -> None:
        ContactItem(sms_partition, sk, entity="awaited_answers", doc=doc).save()
