"""Referral use cases: a patient's own code, the referral a new patient brings, the referrer's
list. The link is written with the new patient (PatientService.create); points for it are the
loyalty ledger's, later, through `ReferralRepository.referrer_of`."""

from __future__ import annotations

from chalicelib import clock
from chalicelib.domain import referrals as rules
from chalicelib.domain.access import Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict, NotFound, invalid
from chalicelib.observability import count
from chalicelib.services.tenants import TenantService
from chalicelib.store.patients import PatientRepository
from chalicelib.store.referrals import CodeTaken, ReferralRepository
from chalicelib.store.segments import SegmentRepository

CODE_ATTEMPTS = 5


def referrals_off() -> Conflict:
    return Conflict("referrals are not enabled at this hospital", code="referrals_disabled")


class ReferralService:
    def __init__(
        self,
        repository: ReferralRepository,
        patients: PatientRepository,
        segments: SegmentRepository,
        tenants: TenantService,
    ) -> None:
        self._referrals = repository
        self._patients = patients
        self._segments = segments
        self._tenants = tenants

    def my_code(self, principal: Principal) -> Document:
        """The patient's referral code, made the first time it is asked for (once: two
        requests at the same moment get the same code)."""
        require_role(principal, {Role.PATIENT})
        tenant = self._tenants.require(tenant_of(principal))
        if not rules.referrals_enabled(tenant):
            raise referrals_off()
        patient_id = principal.patient_id or ""
        if self._patients.get(tenant["id"], patient_id) is None:
            raise NotFound("patient not found")
        code = self._referrals.code_of(tenant["id"], patient_id)
        for _ in range(CODE_ATTEMPTS):
            if code is not None:
                break
            try:
                code = self._referrals.claim_code(
                    tenant["id"], patient_id, rules.new_code(), clock.iso(clock.now())
                )
                count("ReferralCodeCreated")
            except CodeTaken:
                continue
        if code is None:
            raise Conflict("no free referral code was found; retry", code="concurrent_change")
        return {"code": code}

    def for_new_patient(
        self, tenant: Document, raw_code: str | None, new_patient: Document
    ) -> rules.Referral | None:
        """The referral a new patient's registration brings (None without a code), or a 400
        naming `$.referral_code`: an unknown code, referrals switched off, oneself, or the
        referrer's own phone. Nothing is linked in those cases."""
        if raw_code is None:
            return None
        if not rules.referrals_enabled(tenant):
            raise invalid(rules.REFERRAL_CODE_FIELD, "referrals are not enabled at this hospital")
        code = rules.read_code(raw_code)
        owner = self._referrals.owner_of_code(tenant["id"], code)
        referrer = self._patients.get(tenant["id"], owner) if owner else None
        if referrer is None:
            raise invalid(rules.REFERRAL_CODE_FIELD, "is not a referral code of this hospital")
        refusal = rules.referral_qualifies(referrer, new_patient)
        if refusal is not None:
            count("ReferralRefused")
            raise invalid(rules.REFERRAL_CODE_FIELD, rules.REFUSALS[refusal])
        return rules.new_referral(
            referrer["id"], new_patient["id"], code, new_patient["created_at"]
        )

    def mine(self, principal: Principal) -> list[Document]:
        """The patients this patient referred: when, the status, and a masked initial only."""
        require_role(principal, {Role.PATIENT})
        tenant_id = tenant_of(principal)
        referrals = self._referrals.referrals_of(tenant_id, principal.patient_id or "")
        referrals.sort(key=lambda r: (r["linked_at"], r["referred_id"]))
        profiles = {
            p["id"]: p
            for p in self._segments.profiles(tenant_id, [r["referred_id"] for r in referrals])
        }
        return [
            {
                "referred": rules.masked_initial(profiles.get(r["referred_id"])),
                "linked_at": r["linked_at"],
                "status": str(r["status"]),
            }
            for r in referrals
        ]

    def referrer_of(self, tenant_id: str, patient_id: str) -> rules.Referral | None:
        """Who referred this patient, for the loyalty ledger (no principal: a task's call)."""
        return self._referrals.referrer_of(tenant_id, patient_id)

    def forget(self, tenant_id: str, patient_id: str) -> int:
        """Erasure (`ErasureService.forget_elsewhere`): the patient's code and their line in
        their referrer's list."""
        return self._referrals.forget(tenant_id, patient_id)

    def rewarded_referrer(self, tenant_id: str, patient_id: str) -> str | None:
        """The referrer to reward for this patient's first visit (the ledger's `referrer_of`):
        none for a void link, or while the tenant has referrals switched off (rewarding them is
        what some countries restrict)."""
        referral = self._referrals.referrer_of(tenant_id, patient_id)
        if referral is None or referral["status"] == rules.ReferralStatus.VOID:
            return None
        if not rules.referrals_enabled(self._tenants.require(tenant_id)):
            return None
        return referral["referrer_id"]
