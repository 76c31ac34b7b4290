"""What each record counts for, and how a change moves the counters (domain/analytics.py):
whatever the order of a record's changes, the moves add up to the tally of where it ended."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import analytics

SHANGHAI = ZoneInfo("Asia/Shanghai")
BOOKED: dict[str, Any] = {
    "department": "cardiology",
    "clinician": "dr-li",
    "type": "follow_up",
    "created_at": "2027-03-01T02:00:00Z",
    "updated_at": "2027-03-01T02:00:00Z",
    "start": "2027-03-04T02:00:00Z",
    "status": "booked",
    "history": [{"at": "2027-03-01T02:00:00Z", "change": "booked", "by": "patient"}],
}
CONFIRMED_BY_TEXT = {
    **BOOKED,
    "history": [
        *BOOKED["history"],
        {"at": "2027-03-01T16:30:00Z", "change": "confirmed", "by": "patient", "via": "sms"},
    ],
}
ATTENDED = {**CONFIRMED_BY_TEXT, "status": "fulfilled"}
CANCELLED = {
    **BOOKED,
    "status": "cancelled",
    "cancelled_by": "staff",
    "updated_at": "2027-03-02T01:00:00Z",
}
STATES = [BOOKED, CONFIRMED_BY_TEXT, ATTENDED, CANCELLED]


def fields_of(tally: analytics.Tally) -> Counter[str]:
    """A tally's counts by field, whatever their days and dimensions."""
    fields: Counter[str] = Counter()
    for (_, field, _, _), n in tally.items():
        fields[field] += n
    return fields


def image(doc: dict[str, Any]) -> dict[str, Any]:
    return {"PK": "T#t1#A#a1", "SK": "APPT", "doc": doc}


def test_an_appointment_counts_on_the_days_things_happened_in_the_hospitals_zone() -> None:
    tally = analytics.appointment_tally(ATTENDED, SHANGHAI)
    fields = {(field, day) for (_, field, day, _) in tally}
    assert ("booked", "2027-03-01") in fields
    assert ("confirmed_sms", "2027-03-02") in fields, "00:30 in Shanghai is the next day"
    assert ("attended", "2027-03-04") in fields
    assert ("lead_days_b3", "2027-03-01") in fields, "three days ahead"
    assert ("booked_4_10", "2027-03-04") in {(f, d) for (m, f, d, _) in tally if m == "slots"}
    cancelled = analytics.appointment_tally(CANCELLED, SHANGHAI)
    assert ("appointments", "cancelled_by_clinic", "2027-03-02") in {k[:3] for k in cancelled}
    assert not any(k[0] == "slots" for k in cancelled), "a cancelled visit holds no place"


@given(st.lists(st.sampled_from(STATES), min_size=1, max_size=6))
def test_the_moves_of_any_sequence_of_changes_add_up_to_where_it_ended(states: list[Any]) -> None:
    kept: Counter[Any] = Counter()
    before = None
    for state in states:
        moved = analytics.change(
            analytics.tally_of("appointment", before, SHANGHAI),
            analytics.tally_of("appointment", image(state), SHANGHAI),
        )
        kept.update(moved)
        before = image(state)
    final = analytics.tally_of("appointment", before, SHANGHAI)
    assert {k: v for k, v in kept.items() if v} == dict(final)


def test_messages_count_their_outcome_and_why_they_were_suppressed() -> None:
    sent = {
        "status": "delivered",
        "channel": "sms",
        "step": "reminder_1d",
        "sms_segments": 2,
        "created_at": "2027-03-01T02:00:00Z",
    }
    suppressed = {
        "status": "suppressed",
        "step": "campaign",
        "created_at": "2027-03-01T02:00:00Z",
        "reasons": ["sms: number opted out (STOP)", "email: no email address"],
    }
    tally = analytics.delivery_tally(sent, SHANGHAI) + analytics.delivery_tally(
        suppressed, SHANGHAI
    )
    fields = fields_of(tally)
    assert fields == Counter(
        {
            "sent": 1,
            "sent_sms": 1,
            "delivered": 1,
            "sms_segments": 2,
            "suppressed": 1,
            "suppressed_opted_out": 1,
        }
    )
    assert analytics.delivery_tally({**sent, "status": "sending"}, SHANGHAI) == Counter()


def test_counters_are_kept_per_grain_and_group_and_read_back_with_medians() -> None:
    moved = analytics.change(Counter(), analytics.appointment_tally(BOOKED, SHANGHAI))
    items = analytics.counter_moves(moved)
    keys = {key[:4] for key in items if key[0] == "appointments"}
    assert ("appointments", "month", "all", "2027-03") in keys
    assert ("appointments", "week", "department", "2027-W09") in keys
    assert ("appointments", "day", "clinician", "2027-03-01") in keys
    assert analytics.period(date(2027, 1, 1), analytics.Grain.WEEK) == "2026-W53"
    values = {"attended": 3.0, "noshow": 1.0, "lead_days_b1": 1.0, "lead_days_b4": 2.0}
    shown = analytics.derived(analytics.Measure.APPOINTMENTS, values)
    assert shown["noshow_rate"] == 0.25 and shown["median_lead_days"] == 7.0
    assert "lead_days_b1" not in shown, "buckets are read as the median, not shown"


def test_only_changed_appointments_and_deliveries_reach_the_stream_handler() -> None:
    def record(sk: str, name: str = "MODIFY") -> dict[str, Any]:
        return {"eventName": name, "dynamodb": {"Keys": {"SK": {"S": sk}}}}

    assert analytics.passes_stream_filter(record("APPT"))
    assert analytics.passes_stream_filter(record("DELIVERY", "INSERT"))
    assert not analytics.passes_stream_filter(record("APPT", "REMOVE"))
    assert not analytics.passes_stream_filter(record("PROFILE"))

    def recipient(outcome: str, entity: str = "campaign_recipient") -> dict[str, Any]:
        image = {"entity": {"S": entity}, "outcome": {"S": outcome}}
        return {
            "eventName": "MODIFY",
            "dynamodb": {"Keys": {"SK": {"S": "P#p-1"}}, "NewImage": image},
        }

    # A campaign's patient, whatever became of the message: their later bookings may convert it.
    assert analytics.passes_stream_filter(recipient("sent"))
    assert analytics.passes_stream_filter(recipient("held_out"))
    assert analytics.passes_stream_filter(recipient("suppressed"))
    assert not analytics.passes_stream_filter(recipient("sent", entity="segment_entry"))


def test_aftercare_check_ins_and_staff_tasks_count_their_outcome_and_time_to_action() -> None:
    journey = {
        "department": "cardiology",
        "care_plan": "cardiac-recovery",
        "steps": [
            {
                "kind": "checkin",
                "at": "2027-03-02T02:00:00Z",
                "status": "answered",
                "risk": "urgent",
            },
            {"kind": "checkin", "at": "2027-03-08T02:00:00Z", "status": "unanswered"},
            {"kind": "checkin", "at": "2027-03-12T02:00:00Z", "status": "planned"},
            {"kind": "education", "at": "2027-03-03T02:00:00Z", "status": "done"},
        ],
    }
    fields = fields_of(analytics.aftercare_tally(journey, SHANGHAI))
    assert fields == Counter(
        {"checkins_sent": 2, "checkins_answered": 1, "checkins_urgent": 1, "checkins_unanswered": 1}
    )
    task = {
        "kind": "urgent_answer",
        "department": "cardiology",
        "created_at": "2027-03-02T03:00:00Z",
        "closed_at": "2027-03-02T05:30:00Z",
    }
    tally = analytics.task_tally(task, SHANGHAI)
    assert {field for (_, field, _, _) in tally} == {
        "tasks_opened",
        "tasks_closed",
        "action_hours_b1",
    }, "2.5 hours: the bucket up to 4"
    values = {
        "checkins_sent": 4.0,
        "checkins_answered": 3.0,
        "checkins_urgent": 1.0,
        "action_hours_b1": 1.0,
    }
    shown = analytics.derived(analytics.Measure.AFTERCARE, values)
    assert shown["response_rate"] == 0.75 and shown["median_hours_to_staff_action"] == 4.0
    assert round(shown["urgent_share"], 4) == 0.3333


def test_periods_read_back_as_their_days_and_the_heat_map_shares() -> None:
    week = analytics.Grain.WEEK
    assert analytics.period_days("2026-W53", week) == (date(2026, 12, 28), date(2027, 1, 3))
    month = analytics.Grain.MONTH
    assert analytics.period_days("2027-02", month) == (date(2027, 2, 1), date(2027, 2, 28))
    assert analytics.period_days("2027-12", month) == (date(2027, 12, 1), date(2027, 12, 31))
    shown = analytics.with_slot_shares({"booked_1_09": 3.0}, {"1_09": 12, "1_10": 0})
    assert shown["share_1_09"] == 0.25 and shown["capacity_1_10"] == 0.0
    assert "share_1_10" not in shown, "no places offered: no share"


def test_return_visits_per_period_count_each_patient_once() -> None:
    visits = {
        "p1": [date(2027, 3, 1), date(2027, 3, 1), date(2027, 3, 20), date(2027, 9, 1)],
        "p2": [date(2027, 3, 5)],
        "p3": [date(2027, 2, 27), date(2027, 5, 20)],  # 82 days later: within 90
    }
    items = analytics.return_visit_counters(visits, 90)
    month = {key[3]: fields for key, fields in items.items() if key[1] == "month"}
    assert month["2027-03"] == {"patients_seen": 2, "patients_returned": 1}
    assert month["2027-02"] == {"patients_seen": 1, "patients_returned": 1}
    assert month["2027-09"] == {"patients_seen": 1}, "nothing after it yet"
    assert analytics.came_back(date(2027, 3, 1), date(2027, 5, 30), 90)
    assert not analytics.came_back(date(2027, 3, 1), date(2027, 3, 1), 90), "the same day"
    assert analytics.return_window({"analytics": {"return_window_days": 30}}) == 30
    assert analytics.return_window(None) == 90


def test_recall_cycles_that_fell_due_and_the_bookings_they_converted_to() -> None:
    recall = {
        "rule_id": "review-30d",
        "status": "invited",
        "due_date": "2027-06-01",
        "cycles": [
            {
                "due_date": "2027-03-01",
                "outcome": "converted",
                "appointment_id": "a-1",
                "settled_at": "2027-03-02T02:00:00Z",
            },
            {"due_date": "2027-04-01", "outcome": "unconverted", "settled_at": "x"},
            {"due_date": "2027-05-01", "outcome": "cancelled", "settled_at": "x"},
            {"due_date": "2027-05-15", "outcome": "visited", "settled_at": "x"},
        ],
    }
    fields = fields_of(analytics.recall_tally(recall, SHANGHAI))
    assert fields == Counter(
        {"followups_due": 4, "followups_converted": 1, "followups_visited": 1}
    ), "a cancelled cycle did not fall due; the open invited one did"
    [link] = analytics.follow_up_links("recall", recall, SHANGHAI)
    assert link == {
        "appointment_id": "a-1",
        "due_date": "2027-03-01",
        "kind": "recall",
        "plan": "review-30d",
    }
    shown = analytics.derived(
        analytics.Measure.FOLLOW_UPS,
        {
            "followups_due": 4.0,
            "followups_converted": 2.0,
            "followups_attended": 1.0,
            "followups_visited": 1.0,
        },
    )
    assert (shown["booked_share"], shown["adherence"]) == (0.5, 0.5)


def test_the_messages_estimated_cost() -> None:
    from chalicelib.domain.message_prices import estimated_cost_usd

    assert estimated_cost_usd("CN", 10, 0, 0) == 0.197
    assert estimated_cost_usd("US", 0, 1000, 0) == 0.1, "$0.10 per 1,000 emails"
    assert estimated_cost_usd("ZZ", 1, 0, 0) == 0.0197, "an unlisted country: the dearest price"
    shown = analytics.derived(
        analytics.Measure.MESSAGES, {"sent": 2.0, "sms_segments": 3.0, "sent_sms": 2.0}, "CN"
    )
    assert shown["estimated_cost_usd"] == 0.0591


def test_the_time_to_answer_runs_from_the_latest_message_about_it_that_left() -> None:
    from chalicelib.domain import appointments

    log = [
        {"appointment_id": "a-1", "status": "sent", "created_at": "2026-12-01T02:00:00Z"},
        {"appointment_id": "a-1", "status": "failed", "created_at": "2026-12-01T04:30:00Z"},
        {"appointment_id": "a-2", "status": "sent", "created_at": "2026-12-01T04:50:00Z"},
        {"appointment_id": "a-1", "status": "sent", "created_at": "2026-12-01T06:00:00Z"},
    ]
    at = "2026-12-01T05:00:00Z"
    # The text that left before the answer (not the failed one, not another visit's, not later).
    assert appointments.last_message_about("a-1", log, at) == "2026-12-01T02:00:00Z"
    assert appointments.last_message_about("a-1", log[1:3], at) is None
    assert appointments.last_message_about("a-1", log[:1], "2027-01-05T00:00:00Z") is None

    booking = {
        "id": "a-1",
        "department": "cardiology",
        "clinician": "dr-li",
        "type": "follow_up",
        "status": "booked",
        "created_at": "2026-11-30T02:00:00Z",
        "start": "2026-12-03T02:00:00Z",
        "history": [
            {"at": "2026-12-01T02:00:00Z", "change": "confirmed", "by": "staff"},
            {
                "at": at,
                "change": "confirmed",
                "by": "patient",
                "via": "sms",
                "asked_at": "2026-12-01T02:00:00Z",
            },
        ],
    }
    tally = analytics.appointment_tally(booking, SHANGHAI)
    # 3 hours after the text: the bucket up to 4 hours, on the answer's local day.
    [n] = [n for key, n in tally.items() if key[1].startswith("answer_hours_b")]
    assert n == 1 and ("appointments", "answer_hours_b1", "2026-12-01") in {
        key[:3] for key in tally
    }
    shown = analytics.derived(analytics.Measure.APPOINTMENTS, {"answer_hours_b1": 1})
    assert shown["median_hours_to_answer"] == 4 and "answer_hours_b1" not in shown


def test_nps_is_promoters_share_minus_detractors_share_in_points() -> None:
    values = {"responses": 4.0, "promoters": 2.0, "passives": 1.0, "detractors": 1.0}
    shown = analytics.derived(analytics.Measure.SATISFACTION, {**values, "score_total": 30.0})
    assert shown["nps"] == 25.0 and shown["average_score"] == 7.5
    assert "score_total" not in shown
    assert "nps" not in analytics.derived(analytics.Measure.SATISFACTION, {})


def test_a_complaint_counts_on_its_filing_day_with_its_resolution_time() -> None:
    from zoneinfo import ZoneInfo

    complaint = {
        "category": "waiting_time",
        "department": "cardiology",
        "source": "patient",
        "created_at": "2026-03-01T02:00:00+00:00",
        "deadline": "2026-03-03T02:00:00+00:00",
        "resolved_at": "2026-03-02T01:00:00+00:00",
    }
    tally = analytics.complaint_tally(complaint, ZoneInfo("Asia/Shanghai"))
    fields = {key[1]: n for key, n in tally.items()}
    assert fields == {"filed": 1, "resolved": 1, "resolved_in_time": 1, "resolution_hours_b2": 1}
    late = analytics.complaint_tally(
        {**complaint, "resolved_at": "2026-03-04T02:00:00+00:00"}, ZoneInfo("UTC")
    )
    assert "resolved_in_time" not in {key[1] for key in late}
