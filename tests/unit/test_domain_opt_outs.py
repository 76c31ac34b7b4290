"""Which STOP or START a phone's record shows, for one hospital."""

from __future__ import annotations

from chalicelib.domain.opt_outs import (
    SmsOptRecord,
    SmsOptRecords,
    email_state,
    sms_opted_out,
    sms_state,
)

PHONE = "+8613800000000"
EARLIER = "2026-03-01T08:00:00Z"
LATER = "2026-03-05T08:00:00Z"
STOP: SmsOptRecord = {"at": EARLIER, "how": "sms_reply", "keyword": "STOP"}
LATE_STOP: SmsOptRecord = {**STOP, "at": LATER}


def test_a_number_that_never_stopped_shows_nothing_but_that() -> None:
    assert sms_state(PHONE, "patient", {}) == {
        "channel": "sms",
        "address": PHONE,
        "whose": "patient",
        "opted_out": False,
    }


def test_a_stop_to_this_hospital_wins_over_any_start() -> None:
    records: SmsOptRecords = {"this_hospital": LATE_STOP, "back_in": {"at": EARLIER}}
    shown = sms_state(PHONE, "guardian", records)
    assert (shown["opted_out"], shown["scope"], shown["at"]) == (True, "this_hospital", LATER)


def test_a_start_here_lifts_a_stop_to_every_hospital_only_when_it_came_after() -> None:
    assert sms_opted_out({"every_hospital": STOP})
    after: SmsOptRecords = {
        "every_hospital": STOP,
        "back_in": {
            "at": LATER,
            "keyword": "START",
            "lifted": STOP,
            "lifted_scope": "every_hospital",
        },
    }
    assert not sms_opted_out(after)
    assert sms_state(PHONE, "patient", after) == {
        "channel": "sms",
        "address": PHONE,
        "whose": "patient",
        "opted_out": False,
        "at": EARLIER,
        "how": "sms_reply",
        "keyword": "STOP",
        "scope": "every_hospital",
        "lifted_at": LATER,
        "lifted_keyword": "START",
    }
    before: SmsOptRecords = {"every_hospital": LATE_STOP, "back_in": {"at": EARLIER}}
    assert sms_opted_out(before), "a STOP after the START stops again"
    same_second: SmsOptRecords = {"every_hospital": STOP, "back_in": {"at": EARLIER}}
    assert sms_opted_out(same_second), "a tie is the safe side"


def test_the_latest_start_is_shown() -> None:
    records: SmsOptRecords = {
        "back_in": {"at": EARLIER, "keyword": "START"},
        "back_in_everywhere": {"at": LATER, "keyword": "订阅"},
    }
    shown = sms_state(PHONE, "patient", records)
    assert (shown["lifted_at"], shown["lifted_keyword"]) == (LATER, "订阅")


def test_an_email_bounce_or_complaint_is_an_opt_out_of_that_address() -> None:
    assert email_state("a@example.com", "patient", None)["opted_out"] is False
    shown = email_state("a@example.com", "patient", {"reason": "complaint", "at": LATER})
    assert (shown["opted_out"], shown["how"], shown["at"]) == (True, "complaint", LATER)
