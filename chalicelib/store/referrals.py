"""Referral codes and referral links. See README.md (rows 90-94) and `domain.referrals`.

The link itself is written by `PatientRepository.create`, in the new patient's TransactWrite,
from the items `link_items` gives it; this repository hands out codes and reads links.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.audit_trail import touched
from chalicelib.domain.referrals import Referral, ReferralStatus
from chalicelib.settings import get_settings
from chalicelib.store.keys import CLAIM_SK, patient_pk
from chalicelib.store.models import ReferralCodeItem, ReferralItem, UniqueClaim, bind_models
from chalicelib.store.records import as_document, failed_items, raced, transaction_write

CODE_SK = "REFCODE"
REFERRED_BY_SK = "REFERRED_BY"
REFERRAL_PREFIX = "REFERRAL#"


def code_claim_pk(tenant_id: str, code: str) -> str:
    return f"T#{tenant_id}#REFCODE#{code}"


def _referral(item: ReferralItem) -> Referral:
    doc = as_document(item.doc)
    return Referral(
        referrer_id=doc["referrer_id"],
        referred_id=doc["referred_id"],
        code=doc["code"],
        linked_at=doc["linked_at"],
        status=ReferralStatus(doc["status"]),
    )


def link_items(tenant_id: str, referral: Referral) -> list[tuple[ReferralItem, Any]]:
    """The two items of a link, each with its condition, for the new patient's TransactWrite:
    the referred patient's `REFERRED_BY` (a patient is referred once) and the referrer's
    `REFERRAL#<referred>`."""
    doc = {**referral, "status": str(referral["status"])}
    referred = referral["referred_id"]
    return [
        (
            ReferralItem(
                patient_pk(tenant_id, referred), REFERRED_BY_SK, entity="referral", doc=doc
            ),
            ReferralItem.pk.does_not_exist(),
        ),
        (
            ReferralItem(
                patient_pk(tenant_id, referral["referrer_id"]),
                REFERRAL_PREFIX + referred,
                entity="referral",
                doc=doc,
            ),
            None,
        ),
    ]


class CodeTaken(Exception):
    """Another patient already holds this code (vanishingly rare): draw another."""


class ReferralRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def code_of(self, tenant_id: str, patient_id: str) -> str | None:
        try:
            item = ReferralCodeItem.get(
                patient_pk(tenant_id, patient_id), CODE_SK, consistent_read=True
            )
        except DoesNotExist:
            return None
        return item.code

    def claim_code(self, tenant_id: str, patient_id: str, code: str, at: str) -> str:
        """Give the patient `code` unless they already have one; the code they hold afterwards.
        One TransactWrite: the claim (`attribute_not_exists`) and the patient's pointer
        (`attribute_not_exists`), so two racing requests leave one code. CodeTaken if the code
        belongs to someone else."""
        try:
            with transaction_write() as tx:
                tx.save(
                    UniqueClaim(
                        code_claim_pk(tenant_id, code),
                        CLAIM_SK,
                        entity="referral_code",
                        owner_id=patient_id,
                    ),
                    condition=UniqueClaim.pk.does_not_exist(),
                )
                tx.save(
                    ReferralCodeItem(
                        patient_pk(tenant_id, patient_id),
                        CODE_SK,
                        entity="referral_code",
                        code=code,
                        created_at=at,
                    ),
                    condition=ReferralCodeItem.pk.does_not_exist(),
                )
        except TransactWriteError as exc:
            held = self.code_of(tenant_id, patient_id)
            if held is not None:  # the racing request's code (or one made before)
                return held
            if raced(exc):
                raise
            if 0 in failed_items(exc):
                raise CodeTaken(code) from exc
            raise
        return code

    def owner_of_code(self, tenant_id: str, code: str) -> str | None:
        try:
            claim = UniqueClaim.get(code_claim_pk(tenant_id, code), CLAIM_SK)
        except DoesNotExist:
            return None
        return claim.owner_id if claim.entity == "referral_code" else None

    def referrer_of(self, tenant_id: str, patient_id: str) -> Referral | None:
        """Who referred this patient (the ledger asks when their first visit is fulfilled)."""
        try:
            item = ReferralItem.get(
                patient_pk(tenant_id, patient_id), REFERRED_BY_SK, consistent_read=True
            )
        except DoesNotExist:
            return None
        touched("referral", None, patient_id)
        return _referral(item)

    def referrals_of(self, tenant_id: str, patient_id: str) -> list[Referral]:
        """The patients this one referred, in id order."""
        items = ReferralItem.query(
            patient_pk(tenant_id, patient_id), ReferralItem.sk.startswith(REFERRAL_PREFIX)
        )
        found = [_referral(item) for item in items]
        touched("referral", None, patient_id)
        return found

    def forget(self, tenant_id: str, patient_id: str) -> int:
        """Erasure: the patient's code claim, and their line in their referrer's list (their
        own partition, with the rest of the link, goes with the patient's partition). How many
        items were deleted."""
        deleted = 0
        code = self.code_of(tenant_id, patient_id)
        if code is not None:
            UniqueClaim(code_claim_pk(tenant_id, code), CLAIM_SK).delete()
            deleted += 1
        referral = self.referrer_of(tenant_id, patient_id)
        if referral is not None:
            ReferralItem(
                patient_pk(tenant_id, referral["referrer_id"]), REFERRAL_PREFIX + patient_id
            ).delete()
            deleted += 1
        return deleted
