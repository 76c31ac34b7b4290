"""Patients drifting away: the signals records leave and the score read from them, in
milliseconds."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from chalicelib.domain import drifting

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 12, 7)


def test_records_leave_signals_about_their_patient() -> None:
    missed = {"id": "a-1", "patient_id": "p-1", "status": "noshow", "start": "2026-11-30T01:00:00Z"}
    assert drifting.signals("appointment", missed, SHANGHAI) == {"noshow#2026-11-30#a-1"}
    assert drifting.signals("appointment", {**missed, "status": "fulfilled"}, SHANGHAI) == set()
    task = {
        "id": "t-1",
        "patient_id": "p-1",
        "kind": "no_answer",
        "created_at": "2026-12-01T17:00:00Z",
    }
    # 01:00 on the 2nd in Shanghai: the hospital's day.
    assert drifting.signals("task", task, SHANGHAI) == {"unanswered#2026-12-02#no_answer#t-1"}
    assert drifting.signals("task", {**task, "kind": "urgent_answer"}, SHANGHAI) == set()


def test_a_recall_is_overdue_from_its_first_unbooked_cycle_until_the_patient_books() -> None:
    cycles = [
        {"due_date": "2026-03-01", "outcome": "converted"},
        {"due_date": "2026-06-01", "outcome": "unconverted"},
        {"due_date": "2026-09-01", "outcome": "unconverted"},
    ]
    recall = {"patient_id": "p-1", "rule_id": "r-1", "status": "handed_over", "cycles": cycles}
    assert drifting.signals("recall", recall, SHANGHAI) == {"overdue#2026-06-01#recall#r-1"}
    invited = {**recall, "status": "invited", "due_date": "2026-12-01", "cycles": cycles[:1]}
    assert drifting.signals("recall", invited, SHANGHAI) == {"overdue#2026-12-01#recall#r-1"}
    assert drifting.signals("recall", {**recall, "status": "converted"}, SHANGHAI) == set()
    came = [*cycles, {"due_date": "2026-10-01", "outcome": "visited"}]
    assert (
        drifting.signals("recall", {**recall, "status": "scheduled", "cycles": came}, SHANGHAI)
        == set()
    )


def test_the_score_adds_its_parts_and_a_visit_answers_what_came_before() -> None:
    found = {
        "noshow#2026-05-01#a-0",  # before the latest visit: answered by it
        "noshow#2026-11-30#a-1",
        "noshow#2026-12-03#a-2",
        "overdue#2026-10-01#recall#r-1",  # 67 days overdue: 2 + 2; a visit does not book it
        "overdue#2026-05-01#recall#r-2",
        "unanswered#2026-12-02#no_answer#t-1",
        "unanswered#2026-04-01#checkin_unanswered#t-0",  # before the visit
    }
    kept = drifting.kept_signals(found, ["2026-03-02", "2026-06-10"])
    assert kept == found - {"noshow#2026-05-01#a-0", "unanswered#2026-04-01#checkin_unanswered#t-0"}
    scored = drifting.score("p-1", kept - {"overdue#2026-05-01#recall#r-2"}, TODAY)
    assert scored["parts"] == [
        {"part": "recent_no_shows", "count": 2, "points": 6, "latest": "2026-12-03"},
        {"part": "overdue_follow_ups", "count": 1, "points": 4, "latest": "2026-10-01"},
        {"part": "unanswered_outreach", "count": 1, "points": 2, "latest": "2026-12-02"},
    ]
    assert scored["score"] == 12
    # A visit the same day does not answer a no-show of that day.
    assert not drifting.answered_by_visit("noshow#2026-12-03#a-2", "2026-12-03")
    # Older than 180 days counts no more; an overdue follow-up's extra points stop at 6.
    old = drifting.score("p-2", ["noshow#2026-01-05#a-9", "overdue#2025-01-01#recall#r"], TODAY)
    assert old["parts"] == [
        {"part": "overdue_follow_ups", "count": 1, "points": 8, "latest": "2025-01-01"}
    ]
    # Not due yet: nothing.
    assert drifting.score("p-3", ["overdue#2026-12-20#recall#r"], TODAY)["score"] == 0


def test_most_at_risk_first_then_the_most_recent() -> None:
    a = drifting.score("p-a", ["noshow#2026-12-01#x"], TODAY)
    b = drifting.score("p-b", ["noshow#2026-12-05#y"], TODAY)
    c = drifting.score("p-c", ["noshow#2026-12-01#z", "unanswered#2026-12-02#no_answer#t"], TODAY)
    nothing = drifting.score("p-d", [], TODAY)
    assert [p["patient_id"] for p in drifting.most_at_risk([a, b, c, nothing])] == [
        "p-c",
        "p-b",
        "p-a",
    ]
