"""Patient repository. See README.md for the access patterns and keys."""

from __future__ import annotations

from collections.abc import Iterator

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.audit_trail import noting
from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict
from chalicelib.domain.patients import SEALED_FIELDS, mrn_of
from chalicelib.domain.referrals import Referral
from chalicelib.domain.segments import changes
from chalicelib.settings import get_settings
from chalicelib.store.errors import concurrent_change, version_conflict
from chalicelib.store.keys import (
    CLAIM_SK,
    PROFILE_SK,
    mrn_claim_pk,
    patient_pk,
    patients_listing_pk,
    phone_lookup_pk,
)
from chalicelib.store.models import PatientItem, UniqueClaim, bind_models
from chalicelib.store.records import (
    failed_items,
    raced,
    stored_body,
    transaction_write,
    versioned_doc,
)
from chalicelib.store.referrals import link_items
from chalicelib.store.sealing import lookup_hash, seal, unseal
from chalicelib.store.segments import entry_item, remember_member_classes

ListingPosition = tuple[str, str]  # (listing sort key, patient id) of the last item returned


def _listing_sk(doc: Document) -> str:
    return f"{doc['created_at']}#{doc['id']}"


KIND = "patient"


def deleted_listing_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#DELETED"


def _item(tenant_id: str, doc: Document, version: int | None) -> PatientItem:
    body = seal(KIND, tenant_id, doc["id"], stored_body(doc), SEALED_FIELDS)
    item = PatientItem(patient_pk(tenant_id, doc["id"]), PROFILE_SK, entity="patient", doc=body)
    if version is not None:
        item.version = version
    if doc.get("deleted_at"):
        item.deleted_at = doc["deleted_at"]
        # Out of every list and look-up; listed only for the retention sweep, by deletion time.
        item.gsi2pk = deleted_listing_pk(tenant_id)
        item.gsi2sk = f"{doc['deleted_at']}#{doc['id']}"
        return item
    if doc.get("phone"):
        item.gsi1pk = phone_lookup_pk(tenant_id, lookup_hash(tenant_id, "phone", doc["phone"]))
        item.gsi1sk = f"P#{doc['id']}"
    item.gsi2pk = patients_listing_pk(tenant_id)
    item.gsi2sk = _listing_sk(doc)
    return item


def mrn_claim_key(tenant_id: str, mrn: str) -> tuple[str, str]:
    return mrn_claim_pk(tenant_id, lookup_hash(tenant_id, "mrn", mrn)), CLAIM_SK


def _claim(tenant_id: str, mrn: str, owner_id: str) -> UniqueClaim:
    """An MRN's claim, keyed by its keyed hash: the number itself is only in the sealed record."""
    return UniqueClaim(
        mrn_claim_pk(tenant_id, lookup_hash(tenant_id, "mrn", mrn)),
        CLAIM_SK,
        entity="mrn",
        owner_id=owner_id,
    )


def patient_doc(tenant_id: str, item: PatientItem) -> Document:
    """The stored profile as services see it: sealed fields opened, at its version."""
    doc = versioned_doc(item)
    return unseal(KIND, tenant_id, doc["id"], doc)


def _mrn_taken(mrn: str) -> Conflict:
    return Conflict(f"MRN {mrn} belongs to another patient of this tenant", code="mrn_taken")


class PatientRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    @noting("patient")
    def get(self, tenant_id: str, patient_id: str) -> Document | None:
        """The live profile, or None when it does not exist or was deleted."""
        try:
            item = PatientItem.get(patient_pk(tenant_id, patient_id), PROFILE_SK)
        except DoesNotExist:
            return None
        return None if item.deleted_at else patient_doc(tenant_id, item)

    def deleted_before(self, tenant_id: str, cutoff: str, limit: int) -> list[str]:
        """Ids of the patients soft-deleted before `cutoff`, oldest first (GSI2)."""
        items = PatientItem.by_listing.query(
            deleted_listing_pk(tenant_id), PatientItem.gsi2sk < cutoff, limit=limit
        )
        return [item.gsi2sk.rsplit("#", 1)[1] for item in items if item.gsi2sk]

    @noting("patient")
    def get_including_deleted(self, tenant_id: str, patient_id: str) -> Document | None:
        """The profile, live or soft-deleted (erasure and retention reach both)."""
        try:
            item = PatientItem.get(patient_pk(tenant_id, patient_id), PROFILE_SK)
        except DoesNotExist:
            return None
        return patient_doc(tenant_id, item)

    @noting("patient")
    def create(self, tenant_id: str, doc: Document, referral: Referral | None = None) -> Document:
        """Create the profile with its MRN claim, its segment entries and, when the patient came
        with a referral code, the referral link (README rows 7, 43, 92) in one TransactWrite."""
        item = _item(tenant_id, doc, version=None)
        mrn = mrn_of(doc)
        _, joined = changes(None, doc)
        try:
            with transaction_write() as tx:
                tx.save(item, condition=PatientItem.pk.does_not_exist())
                if mrn:
                    tx.save(
                        _claim(tenant_id, mrn, doc["id"]),
                        condition=UniqueClaim.pk.does_not_exist(),
                    )
                # The referral link's items come after the conditional puts whose failure
                # indexes are read below (0: profile, 1: MRN claim).
                for link, condition in link_items(tenant_id, referral) if referral else ():
                    tx.save(link, condition=condition)
                # Segment entries (unconditional puts, after the conditional ones so the
                # failure indexes above stay put).
                for entry in sorted(joined):
                    tx.save(entry_item(tenant_id, entry))
        except TransactWriteError as exc:
            if raced(exc):
                raise concurrent_change() from exc
            if 1 in failed_items(exc) and mrn:
                raise _mrn_taken(mrn) from exc
            if 0 in failed_items(exc):
                raise Conflict("patient id collision; retry", code="conflict") from exc
            raise
        remember_member_classes(tenant_id, joined)
        return {**doc, "version": item.version}

    @noting("patient")
    def replace(self, tenant_id: str, previous: Document, doc: Document) -> Document:
        """Write `doc` over `previous` if nobody changed the record since it was read, moving the
        MRN claim and the segment entries that change in the same transaction."""
        item = _item(tenant_id, doc, version=previous["version"])
        old_mrn, new_mrn = mrn_of(previous), mrn_of(doc)
        claim_moves = old_mrn != new_mrn
        left, joined = changes(previous, doc)
        try:
            with transaction_write() as tx:
                if claim_moves and old_mrn:
                    tx.delete(
                        _claim(tenant_id, old_mrn, doc["id"]),
                        condition=UniqueClaim.owner_id == doc["id"],
                    )
                for entry in sorted(left):
                    tx.delete(entry_item(tenant_id, entry))
                if claim_moves and new_mrn:
                    tx.save(
                        _claim(tenant_id, new_mrn, doc["id"]),
                        condition=UniqueClaim.pk.does_not_exist(),
                    )
                tx.save(item)
                for entry in sorted(joined):
                    tx.save(entry_item(tenant_id, entry))
        except TransactWriteError as exc:
            if raced(exc):
                raise concurrent_change() from exc
            failed = failed_items(exc)
            # Deletes are sent before puts (see records.failed_items): the claim put follows them.
            claim_put_index = int(bool(claim_moves and old_mrn)) + len(left)
            if claim_moves and new_mrn and claim_put_index in failed:
                raise _mrn_taken(new_mrn) from exc
            if failed:
                raise version_conflict() from exc
            raise
        remember_member_classes(tenant_id, joined)
        return {**doc, "version": item.version}

    @noting("patient")
    def page(
        self,
        tenant_id: str,
        limit: int,
        after: ListingPosition | None,
        *,
        deleted: bool = False,
    ) -> tuple[list[Document], ListingPosition | None]:
        """A page of the tenant's patients as listed (GSI2), or with `deleted` of those
        soft-deleted and not yet erased (by deletion time)."""
        listing = deleted_listing_pk(tenant_id) if deleted else patients_listing_pk(tenant_id)
        start_key = None
        if after is not None:
            sort_key, patient_id = after
            start_key = {
                "PK": {"S": patient_pk(tenant_id, patient_id)},
                "SK": {"S": PROFILE_SK},
                "GSI2PK": {"S": listing},
                "GSI2SK": {"S": sort_key},
            }
        result = PatientItem.by_listing.query(listing, limit=limit, last_evaluated_key=start_key)
        docs = [patient_doc(tenant_id, item) for item in result]
        last = result.last_evaluated_key
        position = (last["GSI2SK"]["S"], docs[-1]["id"]) if last and docs else None
        return docs, position

    @noting("patient")
    def find_by_phone(self, tenant_id: str, e164: str, limit: int) -> list[Document]:
        items: Iterator[PatientItem] = PatientItem.by_lookup.query(
            phone_lookup_pk(tenant_id, lookup_hash(tenant_id, "phone", e164)), limit=limit
        )
        return [patient_doc(tenant_id, item) for item in items]

    def find_by_mrn(self, tenant_id: str, mrn: str) -> Document | None:
        try:
            claim = UniqueClaim.get(
                mrn_claim_pk(tenant_id, lookup_hash(tenant_id, "mrn", mrn)), CLAIM_SK
            )
        except DoesNotExist:
            return None
        return self.get(tenant_id, claim.owner_id)
