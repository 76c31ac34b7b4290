"""Care plans and recall rules: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain import aftercare, care_plans, recall
from chalicelib.domain.errors import ValidationFailed

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUIET = {"start": "21:00", "end": "08:00"}
PLAN = {
    "name": "p",
    "trigger": {"event": "surgery", "departments": ["cardiology"]},
    "send_time": "10:00",
    "check_ins": [{"day": 1, "questionnaire": "post-operative"}],
    "education": [{"day": 2, "title": {"en": "Wound care"}, "url": "https://x.example/w"}],
    "on_urgent": {"extra_check_in_after_days": 2},
    "recheck": {"day": 30, "book_within_days": 14},
}


def paths(failure: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [d.path for d in failure.value.details]


def test_a_plan_naming_what_does_not_exist_is_refused_field_by_field() -> None:
    bad = {
        **PLAN,
        "trigger": {"event": "surgery", "departments": ["nowhere"], "appointment_types": ["x"]},
        "check_ins": [
            {"day": 1, "questionnaire": "nope"},
            {"day": 1, "questionnaire": "post-operative"},
        ],
        "remind_after_hours": 48,
        "escalate_after_hours": 24,
    }
    with pytest.raises(ValidationFailed) as failure:
        care_plans.check_plan(bad, {"post-operative"}, {"cardiology"})
    assert paths(failure) == [
        "$.trigger.appointment_types",
        "$.trigger.departments[0]",
        "$.check_ins[0].questionnaire",
        "$.check_ins[1].day",
        "$.escalate_after_hours",
    ]


def test_the_agenda_is_in_the_patients_zone_at_the_send_time() -> None:
    surgery = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    steps = care_plans.agenda(PLAN, surgery, SHANGHAI, QUIET, surgery)
    assert [(s["id"], s["at"]) for s in steps] == [
        ("checkin-d1", "2026-11-24T02:00:00Z"),
        ("education-d2-1", "2026-11-25T02:00:00Z"),
        ("recheck-d30", "2026-12-23T02:00:00Z"),
    ]


def test_a_send_time_in_quiet_hours_moves_to_their_end() -> None:
    surgery = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    early = {**PLAN, "send_time": "06:30"}
    [first, *_] = care_plans.agenda(early, surgery, SHANGHAI, QUIET, surgery)
    assert first["at"] == "2026-11-24T00:00:00Z"  # 08:00 local


def test_an_urgent_answer_adds_one_check_in_and_not_forever() -> None:
    answered = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    step: dict[str, Any] = {"id": "checkin-d1", "questionnaire": "post-operative"}
    steps: list[Mapping[str, Any]] = [step]
    for expected in range(1, care_plans.MAX_EXTRA_CHECK_INS + 1):
        extra = care_plans.extra_check_in(PLAN, step, steps, answered, SHANGHAI, QUIET)
        assert extra is not None and extra["id"] == f"checkin-extra-{expected}"
        steps.append(extra)
    assert steps[1]["at"] == "2026-11-26T02:00:00Z"
    assert care_plans.extra_check_in(PLAN, step, steps, answered, SHANGHAI, QUIET) is None
    no_branch = {k: v for k, v in PLAN.items() if k != "on_urgent"}
    assert care_plans.extra_check_in(no_branch, step, [step], answered, SHANGHAI, QUIET) is None


def test_plans_match_their_events() -> None:
    event = {"type": "surgery", "department": "cardiology"}
    assert care_plans.matches(PLAN, event)
    assert not care_plans.matches(PLAN, {**event, "department": "dermatology"})
    assert not care_plans.matches({**PLAN, "enabled": False}, event)
    visit = {"name": "v", "trigger": {"event": "appointment.fulfilled", "appointment_types": ["x"]}}
    assert care_plans.matches(visit, {"type": "appointment.fulfilled", "appointment_type": "x"})
    assert not care_plans.matches(visit, {"type": "appointment.fulfilled", "appointment_type": "y"})


RULE = {
    "id": "diabetes-90d",
    "match": {"condition": "diabetes"},
    "after_days": 90,
    "book": {"department": "endocrinology"},
}


def test_recall_due_dates_follow_visits_and_tags() -> None:
    diabetic = {"medical": {"conditions": ["diabetes"]}}
    visit = {"appointment_type": "follow_up", "department": "endocrinology", "date": "2026-11-23"}
    assert recall.due_after_visit(RULE, diabetic, visit) == date(2027, 2, 21)
    dental = {**visit, "department": "dentistry"}
    assert recall.due_after_visit(RULE, diabetic, dental) is None, "only the review counts"
    assert recall.due_after_visit(RULE, {}, visit) is None
    annual = {**RULE, "match": {"any_visit": True}, "after_days": 365}
    assert recall.due_after_visit(annual, {}, visit) == date(2027, 11, 23)
    today = date(2026, 11, 23)
    assert recall.changes_for_patient([RULE], diabetic, {}, today) == (
        {"diabetes-90d": date(2027, 2, 21)},
        [],
    )
    scheduled = {"diabetes-90d": {"status": "scheduled"}}
    assert recall.changes_for_patient([RULE], diabetic, scheduled, today) == ({}, [])
    assert recall.changes_for_patient([RULE], {}, scheduled, today) == ({}, ["diabetes-90d"])
    invited = {"diabetes-90d": {"status": "invited"}}
    assert recall.changes_for_patient([RULE], {}, invited, today) == ({}, []), (
        "a recall under way is left to finish"
    )
    converted = {"diabetes-90d": {"status": "converted"}}
    assert recall.changes_for_patient([RULE], diabetic, converted, today) == ({}, []), (
        "editing the profile does not restart a cycle: the next visit does"
    )
    backfilled = {"diabetes-90d": {"status": "scheduled", "why": recall.BACKFILLED}}
    assert recall.changes_for_patient([RULE], diabetic, backfilled, today, {"diabetes"}) == (
        {"diabetes-90d": date(2027, 2, 21)},
        [],
    ), "a tag being added as the backfill ran counts from its tagging"
    assert recall.changes_for_patient([RULE], diabetic, backfilled, today) == ({}, []), (
        "an unrelated edit leaves the backfill's due date"
    )


def test_recall_sequence_and_conversion() -> None:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    steps = recall.sequence_plan(RULE, date(2026, 11, 23), SHANGHAI, QUIET, now)
    assert [(s["step"], s["at"]) for s in steps] == [
        ("recall_invitation", "2026-11-23T02:00:00Z"),
        ("recall_reminder", "2026-11-30T02:00:00Z"),
        ("recall_last_call", "2026-12-07T02:00:00Z"),
        ("staff_task", "2026-12-14T02:00:00Z"),
    ]
    assert recall.converts(RULE, {"department": "endocrinology", "type": "follow_up"})
    typed = {**RULE, "book": {"department": "endocrinology", "appointment_type": "first_visit"}}
    assert not recall.converts(typed, {"department": "endocrinology", "type": "follow_up"})
    with pytest.raises(ValidationFailed) as failure:
        recall.check_rule(
            {**RULE, "book": {"department": "x"}, "sequence": {"reminder_after_days": 30}},
            {"endocrinology"},
        )
    assert paths(failure) == ["$.book.department", "$.sequence"]


def test_after_an_unconverted_cycle_the_next_falls_due_one_interval_later() -> None:
    from chalicelib.domain.recall import RecallStatus, after_unconverted

    rule = {"after_days": 90}
    due = date(2027, 2, 21)
    assert after_unconverted(rule, due, 3, date(2027, 3, 14)) == (
        RecallStatus.SCHEDULED,
        date(2027, 5, 22),
    )
    # An interval shorter than the cycle itself: the next cycle starts tomorrow, not in the past.
    assert after_unconverted({"after_days": 3}, due, 1, date(2027, 3, 14)) == (
        RecallStatus.SCHEDULED,
        date(2027, 3, 15),
    )


def test_a_capped_rule_ends_as_it_says() -> None:
    from chalicelib.domain.recall import RecallStatus, after_unconverted

    today = date(2027, 3, 14)
    capped = {"after_days": 90, "repeat": {"max_cycles": 2}}
    assert after_unconverted(capped, today, 1, today)[0] == RecallStatus.SCHEDULED
    assert after_unconverted(capped, today, 2, today) == (RecallStatus.HANDED_OVER, None)
    stop = {"after_days": 90, "repeat": {"max_cycles": 2, "then": "stop"}}
    assert after_unconverted(stop, today, 2, today) == (RecallStatus.STOPPED, None)


def test_every_recall_status_can_start_a_new_cycle_and_open_ones_can_end() -> None:
    from chalicelib.domain.recall import NEXT_STATUSES, OPEN, RecallStatus, can_become

    assert set(NEXT_STATUSES) == set(RecallStatus)
    assert all(can_become(s, RecallStatus.SCHEDULED) for s in RecallStatus)
    assert all(can_become(s, RecallStatus.CANCELLED) for s in OPEN)
    assert not can_become(RecallStatus.STOPPED, RecallStatus.INVITED)


# --- the agenda as timers: each step at its own time ----------------------------------------

DAILY = {
    **PLAN,
    "check_ins": [{"day": d, "questionnaire": "post-operative"} for d in (1, 2, 3)],
    "recheck": None,
}


def _stored(steps: list[aftercare.AftercareStep]) -> list[dict[str, Any]]:
    """Steps as the journey's record gives them back: plain dicts."""
    return [dict(step) for step in steps]


def _daily_steps(now: datetime) -> list[dict[str, Any]]:
    plan = {k: v for k, v in DAILY.items() if v is not None}
    return _stored(care_plans.agenda(plan, now, SHANGHAI, QUIET, now))


def test_a_check_in_waiting_for_its_answer_holds_back_no_later_step() -> None:
    surgery = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    plan = {k: v for k, v in DAILY.items() if v is not None and k != "on_urgent"}
    steps = _daily_steps(surgery)
    first = steps[0]
    first.update(
        status="awaiting_answer",
        remind_at="2026-11-25T04:00:00Z",
        escalate_at="2026-11-26T02:00:00Z",
    )
    now = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    assert care_plans.due(plan, steps, now, SHANGHAI, QUIET) == {
        "step_id": "checkin-d2",  # day 2's check-in (and day 2's education) comes first
        "action": "send",
        "at": "2026-11-25T02:00:00Z",
    }
    for step in steps[1:]:
        step["status"] = "done"
    assert care_plans.due(plan, steps, now, SHANGHAI, QUIET) == {
        "step_id": "checkin-d1",
        "action": "remind",
        "at": "2026-11-25T04:00:00Z",
    }
    first["reminder"] = "sent"
    due = care_plans.due(plan, steps, now, SHANGHAI, QUIET)
    assert due and (due["action"], due["at"]) == ("escalate", "2026-11-26T02:00:00Z")
    first["status"] = "unanswered"
    assert care_plans.due(plan, steps, now, SHANGHAI, QUIET) is None


def test_a_deferred_send_waits_for_its_not_before() -> None:
    surgery = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    plan = {k: v for k, v in DAILY.items() if v is not None}
    steps = _daily_steps(surgery)
    steps[0]["not_before"] = "2026-11-24T05:00:00Z"
    due = care_plans.due(plan, steps, surgery, SHANGHAI, QUIET)
    assert due == {"step_id": "checkin-d1", "action": "send", "at": "2026-11-24T05:00:00Z"}


def test_an_open_check_in_under_an_urgent_branch_wakes_at_each_send_time() -> None:
    """An urgent answer may add a check-in while the journey sleeps until a later timer: with
    a check-in open and an `on_urgent` branch, the journey looks at the plan's next send time
    (the only moments such a check-in can be due)."""
    surgery = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    plan = {**PLAN, "check_ins": [{"day": 1, "questionnaire": "post-operative"}]}
    steps = _stored(care_plans.agenda(plan, surgery, SHANGHAI, QUIET, surgery))
    steps[0].update(
        status="awaiting_answer",
        reminder="sent",
        remind_at="2026-11-25T02:00:00Z",
        escalate_at="2026-11-29T02:00:00Z",
    )
    steps[1]["status"] = "done"
    now = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)  # 10:30, after today's send time
    assert care_plans.due(plan, steps, now, SHANGHAI, QUIET) == {
        "step_id": "checkin-d1",
        "action": "look",
        "at": "2026-11-25T02:00:00Z",
    }
    no_branch = {k: v for k, v in plan.items() if k != "on_urgent"}
    due = care_plans.due(no_branch, steps, now, SHANGHAI, QUIET)
    assert due and due["action"] == "escalate"


def test_an_answer_through_the_general_route_counts_for_the_check_in_whose_window_holds_it() -> (
    None
):
    surgery = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    steps = _daily_steps(surgery)
    plan = {k: v for k, v in DAILY.items() if v is not None}
    steps[0].update(status="awaiting_answer", escalate_at="2026-11-26T02:00:00Z")

    def found(at: datetime, questionnaire: str = "post-operative") -> str | None:
        step = care_plans.check_in_answered_by(plan, steps, questionnaire, at, SHANGHAI)
        return None if step is None else str(step["id"])

    assert found(datetime(2026, 11, 23, 15, 0, tzinfo=UTC)) is None, "before day 1 began"
    assert found(datetime(2026, 11, 24, 6, 0, tzinfo=UTC)) == "checkin-d1"
    assert found(datetime(2026, 11, 24, 6, 0, tzinfo=UTC), "satisfaction") is None
    # Day 2 (local): both windows hold it; it counts for the latest, day 2's (still planned).
    assert found(datetime(2026, 11, 24, 17, 0, tzinfo=UTC)) == "checkin-d2"
    steps[1]["status"] = "answered"
    assert found(datetime(2026, 11, 24, 17, 0, tzinfo=UTC)) == "checkin-d1"
    assert found(datetime(2026, 11, 26, 3, 0, tzinfo=UTC)) == "checkin-d3", "d1 handed over"


def test_step_statuses_move_only_forward() -> None:
    assert aftercare.step_can_become("planned", aftercare.StepStatus.ANSWERED)
    assert not aftercare.step_can_become("answered", aftercare.StepStatus.UNANSWERED)
    assert aftercare.answered_status("unanswered") == "answered_late"
    assert aftercare.answered_status("failed") == "answered"
    assert aftercare.answered_status("answered") is None
    assert set(aftercare.NEXT_STEP_STATUSES) == set(aftercare.StepStatus)
