"""Referrals: a patient's referral code, and the link between a referrer and the new patient who
registered with it. Pure rules, no I/O.

Only the link is kept here; the loyalty ledger rewards a referral later (when the referred
patient's first visit is fulfilled), reading the link through `ReferralRepository.referrer_of`.
A tenant switches referrals on with `referrals.enabled` (default off: rewarding referrals is
restricted in several countries); while off no code is handed out and none is accepted.
"""

from __future__ import annotations

import re
import secrets
from enum import StrEnum
from typing import TypedDict

from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict, invalid

# No 0/O, 1/I/L, U: read aloud or copied from a screen, a code is not mistaken for another.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8  # 30^8 ≈ 6.6e11 codes: a guess hits one of a tenant's codes with no real chance
CODE_PATTERN = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
REFERRAL_CODE_FIELD = "$.referral_code"


class ReferralStatus(StrEnum):
    LINKED = "linked"  # the new patient registered with the referrer's code
    QUALIFIED = "qualified"  # the referred patient's first visit was fulfilled (the ledger's)
    VOID = "void"  # withdrawn (e.g. found to be the same person); never rewarded


REFERRAL_TRANSITIONS: dict[ReferralStatus, frozenset[ReferralStatus]] = {
    ReferralStatus.LINKED: frozenset({ReferralStatus.QUALIFIED, ReferralStatus.VOID}),
    ReferralStatus.QUALIFIED: frozenset({ReferralStatus.VOID}),
    ReferralStatus.VOID: frozenset(),
}


def check_referral_transition(current: ReferralStatus, new: ReferralStatus) -> None:
    if new not in REFERRAL_TRANSITIONS[current]:
        raise Conflict(f"a {current} referral cannot become {new}", code="invalid_status_change")


class Referral(TypedDict):
    """The link between two patients of one tenant (ids and times only, no PHI)."""

    referrer_id: str
    referred_id: str
    code: str
    linked_at: str
    status: ReferralStatus


class RefusalReason(StrEnum):
    SELF = "self_referral"
    SAME_PHONE = "same_phone"


def referrals_enabled(tenant: Document) -> bool:
    """The tenant's switch (`referrals.enabled`); off unless the tenant turned it on."""
    return bool((tenant.get("referrals") or {}).get("enabled", False))


def new_code() -> str:
    """A fresh code: random (never derived from the patient's id, so it cannot be guessed from
    it), from the unambiguous alphabet."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def read_code(raw: str) -> str:
    """A code as a person typed it (any case, spaces or dashes) in its stored form; a value
    that cannot be a code is refused naming `$.referral_code`."""
    code = re.sub(r"[\s-]", "", raw).upper()
    if not CODE_PATTERN.fullmatch(code):
        raise invalid(REFERRAL_CODE_FIELD, "is not a referral code of this hospital")
    return code


def referral_qualifies(referrer: Document, referred: Document) -> RefusalReason | None:
    """Whether `referred` (a new patient's profile) may be linked to `referrer`: None if so,
    else why not. Never oneself, and never a patient with the referrer's own phone (E.164, as
    profiles store it): the same person registering twice, or a household rewarding itself."""
    if referrer["id"] == referred["id"]:
        return RefusalReason.SELF
    phone = referrer.get("phone")
    if phone and phone == referred.get("phone"):
        return RefusalReason.SAME_PHONE
    return None


REFUSALS = {
    RefusalReason.SELF: "a patient cannot refer themselves",
    RefusalReason.SAME_PHONE: "the referrer has the same phone number as the new patient",
}


def new_referral(referrer_id: str, referred_id: str, code: str, at: str) -> Referral:
    return Referral(
        referrer_id=referrer_id,
        referred_id=referred_id,
        code=code,
        linked_at=at,
        status=ReferralStatus.LINKED,
    )


def masked_initial(profile: Document | None) -> str:
    """What a referrer sees of the person they referred: the first letter of the name they go
    by, masked (`W***`); `***` once the record is gone."""
    if not profile:
        return "***"
    name = profile.get("name") or {}
    first = str(name.get("preferred") or name.get("given") or name.get("family") or "")
    return f"{first[:1]}***" if first else "***"
