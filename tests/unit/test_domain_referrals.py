"""Referral codes and who may be linked to whom."""

from __future__ import annotations

import pytest

from chalicelib.domain import referrals
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.referrals import ReferralStatus, RefusalReason


def test_codes_use_the_unambiguous_alphabet_and_are_random() -> None:
    codes = {referrals.new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert referrals.CODE_PATTERN.fullmatch(code)
        assert not set(code) & set("01ILOU")


def test_a_typed_code_is_read_in_any_case_with_spaces_or_dashes() -> None:
    assert referrals.read_code(" k7m2-qx9r ") == "K7M2QX9R"
    for wrong in ("K7M2QX9", "K7M2QX9R1", "O7M2QX9R", "K7M2QX9!"):
        with pytest.raises(ValidationFailed) as refused:
            referrals.read_code(wrong)
        assert refused.value.details[0].path == "$.referral_code"


def test_self_and_same_phone_do_not_qualify() -> None:
    referrer = {"id": "p-1", "phone": "+8613800138000"}
    assert referrals.referral_qualifies(referrer, {"id": "p-2", "phone": "+8613900139000"}) is None
    assert referrals.referral_qualifies(referrer, {"id": "p-2"}) is None
    assert referrals.referral_qualifies(referrer, {"id": "p-1"}) is RefusalReason.SELF
    same = {"id": "p-2", "phone": "+8613800138000"}
    assert referrals.referral_qualifies(referrer, same) is RefusalReason.SAME_PHONE
    assert referrals.referral_qualifies({"id": "p-1"}, {"id": "p-2"}) is None


def test_the_switch_is_off_unless_turned_on() -> None:
    assert not referrals.referrals_enabled({})
    assert not referrals.referrals_enabled({"referrals": {}})
    assert referrals.referrals_enabled({"referrals": {"enabled": True}})


def test_a_referrer_sees_a_masked_initial_only() -> None:
    assert referrals.masked_initial({"name": {"given": "Wei", "family": "Zhang"}}) == "W***"
    assert referrals.masked_initial({"name": {"given": "Wei", "preferred": "Vivian"}}) == "V***"
    assert referrals.masked_initial(None) == "***"


def test_referral_statuses_move_only_along_the_table() -> None:
    referrals.check_referral_transition(ReferralStatus.LINKED, ReferralStatus.QUALIFIED)
    with pytest.raises(Conflict):
        referrals.check_referral_transition(ReferralStatus.VOID, ReferralStatus.LINKED)
    assert set(referrals.REFERRAL_TRANSITIONS) == set(ReferralStatus)
