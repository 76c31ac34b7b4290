"""The ledger's arithmetic, pure: spending takes the points that expire soonest, expiry takes
what is left of each credit once, caps hold back the excess, and the account always equals its
entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import loyalty
from chalicelib.domain.common import utc_iso
from chalicelib.domain.errors import Conflict
from chalicelib.domain.loyalty import EarnEvent, EarnStatus, EntryKind, LedgerEntry

T0 = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
RULES = {**loyalty.default_rules(), "enabled": True, "expiry_days": 100, "version": 3}


def at(days: int) -> str:
    return utc_iso(T0 + timedelta(days=days))


def debit(kind: EntryKind, cause: str, points: int, days: int) -> LedgerEntry:
    return LedgerEntry(id=cause, kind=kind, points=points, at=at(days))


def test_spending_takes_the_soonest_to_expire_and_expiry_takes_what_is_left() -> None:
    first = loyalty.earn(
        "checkin:j:1", EarnEvent.CHECK_IN_ON_TIME, 10, at=at(0), rules=RULES, pending=False
    )
    second = loyalty.earn(
        "checkin:j:2", EarnEvent.CHECK_IN_ON_TIME, 30, at=at(20), rules=RULES, pending=False
    )
    spent = debit(EntryKind.REDEEM, "redeem:r1", 25, 50)
    entries = [first, second, spent]
    assert [left for _, left in loyalty.unspent(entries)] == [0, 15]
    assert loyalty.expiries_due(entries, T0 + timedelta(days=100)) == [], "the first is spent"
    [owed] = loyalty.expiries_due(entries, T0 + timedelta(days=121))
    assert (owed["id"], owed["points"], owed["at"]) == ("expire:checkin:j:2", 15, at(120))
    entries.append(owed)
    assert loyalty.expiries_due(entries, T0 + timedelta(days=400)) == [], "once"
    assert loyalty.account_of(entries) == {"balance": 0, "pending": 0, "debited": 40}


def test_points_expiring_soon_are_those_left_within_the_window() -> None:
    credit = loyalty.earn(
        "checkin:j:1", EarnEvent.CHECK_IN_ON_TIME, 10, at=at(0), rules=RULES, pending=False
    )
    now = T0 + timedelta(days=80)
    assert loyalty.expiring([credit], now) == [{"points": 10, "on": at(100)}]
    assert loyalty.expiring([credit], T0) == [], "not within 30 days yet"


def test_a_pending_visit_is_confirmed_or_reversed_once() -> None:
    earned = loyalty.earn(
        "visit:a1", EarnEvent.RECALL_CONVERTED, 50, at=at(0), rules=RULES, pending=True
    )
    assert "expires_at" not in earned, "pending points do not expire"
    confirmed = loyalty.settlement(earned, EarnStatus.CONFIRMED, at=at(5), rules=RULES)
    assert (confirmed["id"], confirmed["kind"], confirmed["expires_at"]) == (
        "visit:a1/settled",
        EntryKind.CONFIRM,
        at(105),
    )
    entries = {e["id"]: e for e in (earned, confirmed)}
    assert loyalty.account_of(entries.values()) == {"balance": 50, "pending": 0, "debited": 0}
    reversed_ = loyalty.settlement(earned, EarnStatus.REVERSED, at=at(5), rules=RULES)
    assert reversed_["id"] == confirmed["id"], "one settlement key: never both"
    with pytest.raises(Conflict):
        loyalty.settlement(
            {**earned, "status": "confirmed"}, EarnStatus.REVERSED, at=at(5), rules=RULES
        )


def test_caps_hold_back_the_excess_per_year_and_per_event_month() -> None:
    rules = {**RULES, "caps": {"per_patient_per_year": 100, "per_event_per_month": 30}}
    limits = loyalty.cap_limits(rules, EarnEvent.CHECK_IN_ON_TIME, at(0))
    assert limits == {"2026": 100, "2026-01#check_in_on_time": 30}
    assert loyalty.allowed_points(10, limits, {"2026-01#check_in_on_time": 25}) == 5
    assert loyalty.allowed_points(10, limits, {"2026": 100}) == 0
    assert loyalty.allowed_points(10, {}, {}) == 10


def test_who_takes_part() -> None:
    assert not loyalty.takes_part(loyalty.default_rules(), {}), "off by default"
    gold_only = {**RULES, "member_classes": ["gold"]}
    assert loyalty.takes_part(gold_only, {"member_class": "gold"})
    assert not loyalty.takes_part(gold_only, {"member_class": "silver"})
    assert loyalty.takes_part(RULES, {})


def test_a_minus_adjustment_is_a_debit_and_a_plus_one_a_credit_that_expires() -> None:
    plus = loyalty.adjustment("x1", 20, "paper card", by="staff-1", at=at(0), rules=RULES)
    minus = loyalty.adjustment("x2", -5, "entered twice", by="staff-1", at=at(1), rules=RULES)
    assert (loyalty.signed(plus), loyalty.signed(minus)) == (20, -5)
    assert loyalty.account_of([plus, minus]) == {"balance": 15, "pending": 0, "debited": 5}
    assert plus["expires_at"] == at(100) and "expires_at" not in minus


def test_voucher_codes_are_unguessable_and_readable() -> None:
    codes = {loyalty.voucher_code("rd-1", secret) for secret in ("a", "b", "c")}
    assert len(codes) == 3
    for code in codes:
        assert len(code) == 11 and code[5] == "-"
        assert not set(code) & set("01IOL"), "no look-alikes"


def test_a_redemption_spends_only_what_was_spendable_at_its_moment() -> None:
    """Spent before a later credit existed, a redemption is not charged to it, whatever the
    later credit's expiry (rules shortened meanwhile)."""
    first = loyalty.earn(
        "checkin:j:1", EarnEvent.CHECK_IN_ON_TIME, 10, at=at(0), rules=RULES, pending=False
    )
    spent = debit(EntryKind.REDEEM, "redeem:r1", 10, 5)
    shortened = {**RULES, "expiry_days": 30}
    later = loyalty.earn(
        "checkin:j:2", EarnEvent.CHECK_IN_ON_TIME, 10, at=at(10), rules=shortened, pending=False
    )
    entries = [first, spent, later]
    assert {c["id"]: left for c, left in loyalty.unspent(entries)} == {
        "checkin:j:1": 0,
        "checkin:j:2": 10,
    }
    [owed] = loyalty.expiries_due(entries, T0 + timedelta(days=41))
    assert (owed["of"], owed["points"], owed["event"]) == ("checkin:j:2", 10, "check_in_on_time")
