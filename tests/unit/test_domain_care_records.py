"""Aftercare journeys and recalls as records: their statuses' transition tables, and the
constructors and changes that build them. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from chalicelib.domain import aftercare, recall
from chalicelib.domain.aftercare import JourneyStatus, Outcome, StepKind, StepStatus
from chalicelib.domain.errors import NotFound
from chalicelib.domain.fhir import export
from chalicelib.domain.recall import CycleOutcome, RecallStatus
from chalicelib.schemas import load_schema

NOW = "2026-11-23T02:00:00Z"
PLAN = {"id": "knee", "version": 4, "name": "Knee", "check_ins": []}
PATIENT = {"id": "p-1", "departments": ["orthopaedics", "cardiology"]}


def _journey(*steps: aftercare.AftercareStep, event: Any = None) -> dict[str, Any]:
    event = event or {"id": "ev-1", "type": "surgery", "tenant_id": "t-1", "department": "ortho"}
    made = aftercare.new_journey(
        "ac-1", plan=PLAN, event=event, patient=PATIENT, steps=list(steps), now=NOW
    )
    return dict(made)


# --- the aftercare journey -----------------------------------------------------------------


def test_a_journey_runs_then_completes_once() -> None:
    assert set(aftercare.NEXT_JOURNEY_STATUSES) == set(JourneyStatus)
    assert aftercare.journey_can_become("running", JourneyStatus.COMPLETED)
    assert not aftercare.journey_can_become("completed", JourneyStatus.COMPLETED)
    assert not aftercare.journey_can_become("completed", JourneyStatus.RUNNING)


def test_a_new_journey_keeps_the_plan_and_event_as_they_were() -> None:
    step = aftercare.check_in("checkin-d1", "post-operative", NOW)
    journey = _journey(step)
    assert journey["status"] == JourneyStatus.RUNNING
    assert journey["kind"] == aftercare.KIND
    assert journey["care_plan"] == "knee"
    assert "version" not in journey["plan"], "the plan's copy, not its version"
    assert "tenant_id" not in journey["event"]
    assert journey["department"] == "ortho"
    assert journey["steps"] == [step]
    assert journey["started_at"] == journey["updated_at"] == NOW
    visit = {"id": "ap-1", "type": "appointment.fulfilled"}
    assert _journey(event=visit)["department"] == "orthopaedics", "the patient's first"


def test_the_same_event_under_the_same_plan_is_one_journey() -> None:
    first = aftercare.journey_id_for("ev-1", "knee")
    assert first == aftercare.journey_id_for("ev-1", "knee")
    assert first != aftercare.journey_id_for("ev-1", "hip")
    assert first.startswith("ac-")


def test_a_recorded_event_takes_its_type_and_department_from_the_body() -> None:
    body = {"type": "discharge", "department": "cardiology", "occurred_at": "x", "care_plan": "k"}
    event = aftercare.new_care_event(
        body, event_id="ev-1", tenant_id="t-1", patient_id="p-1", occurred_at=NOW, by="staff-1"
    )
    assert event == {
        "id": "ev-1",
        "type": "discharge",
        "tenant_id": "t-1",
        "patient_id": "p-1",
        "department": "cardiology",
        "occurred_at": NOW,
        "recorded_by": "staff-1",
    }


def test_every_step_is_built_planned_and_each_kind_is_sent_into_a_status_it_may_reach() -> None:
    steps = [
        aftercare.check_in("checkin-d1", "post-operative", NOW),
        aftercare.education("education-d2-1", {"en": "Wound care"}, "https://x.example/w", NOW),
        aftercare.recheck("recheck-d30", NOW, 14),
    ]
    assert [step["kind"] for step in steps] == list(StepKind)
    assert {step["status"] for step in steps} == {StepStatus.PLANNED}
    assert "because" not in steps[0]
    extra = aftercare.check_in("checkin-extra-1", "pain", NOW, because="urgent answer")
    assert extra["because"] == "urgent answer"
    assert set(aftercare.SENT_STATUS) == set(StepKind)
    for sent in aftercare.SENT_STATUS.values():
        assert aftercare.step_can_become(StepStatus.PLANNED, sent)


def test_a_step_failed_or_handed_over_can_still_be_answered_but_nothing_moves_back() -> None:
    for status in StepStatus:
        assert not aftercare.step_can_become(status, StepStatus.PLANNED)
    assert aftercare.step_can_become("failed", StepStatus.ANSWERED)
    assert aftercare.answered_status("unanswered") == StepStatus.ANSWERED_LATE
    assert not aftercare.step_can_become("booked", StepStatus.FAILED)


def test_a_journey_completes_as_its_steps_went_or_as_it_is_told() -> None:
    invite = aftercare.recheck("recheck-d30", NOW, 14)
    journey = _journey(invite)
    done = aftercare.completed(journey, None, "2026-12-30T00:00:00Z")
    assert done is not None
    assert (done["status"], done["outcome"]) == ("completed", Outcome.NOT_REBOOKED)
    assert done["completed_at"] == "2026-12-30T00:00:00Z"
    assert aftercare.completed(done, None, NOW) is None, "once"
    assert journey["status"] == "running", "the record read is left as it was"
    gone = aftercare.completed(journey, Outcome.PATIENT_GONE, NOW)
    assert gone is not None and gone["outcome"] == "patient_gone"
    assert aftercare.outcome([{**invite, "status": "booked"}]) == Outcome.REBOOKED
    assert aftercare.outcome([]) == Outcome.COMPLETED


def test_a_replayed_send_returns_what_the_first_gave() -> None:
    step = {"id": "checkin-d1", "sent": "sent", "remind_at": "a", "escalate_at": "b"}
    assert aftercare.sent_before(step) == {"status": "sent", "remind_at": "a", "escalate_at": "b"}
    assert aftercare.sent_before({"id": "x"}) == {"status": "skipped"}


def test_a_step_is_found_by_id() -> None:
    journey = _journey(aftercare.check_in("checkin-d1", "post-operative", NOW))
    assert aftercare.step_of(journey, "checkin-d1") is journey["steps"][0]
    with pytest.raises(NotFound):
        aftercare.step_of(journey, "checkin-d9")


# --- recalls ---------------------------------------------------------------------------------

RULE = {"id": "diabetes-90d", "after_days": 90, "book": {"department": "endocrinology"}}


def _scheduled(current: Any = None, due: date = date(2027, 2, 21)) -> dict[str, Any]:
    made = recall.new_cycle(
        current, patient_id="p-1", rule_id="diabetes-90d", due=due, why="visit", now=NOW
    )
    return dict(made)


def test_a_first_cycle_is_scheduled_with_its_own_reference() -> None:
    first = _scheduled()
    assert first["status"] == RecallStatus.SCHEDULED
    assert (first["id"], first["kind"], first["due_date"]) == (
        "diabetes-90d",
        "recall",
        "2027-02-21",
    )
    assert first["ref"] == recall.cycle_ref("p-1", "diabetes-90d", "2027-02-21")
    assert (first["cycles"], first["unanswered_cycles"]) == ([], 0)
    assert first["created_at"] == NOW


def test_a_visit_during_a_cycle_ends_it_as_visited_and_starts_the_count_again() -> None:
    invited = recall.invited({**_scheduled(), "created_at": "2026-01-01T00:00:00Z"}, NOW, "ex-1")
    assert invited is not None and invited["execution"] == "ex-1"
    again = _scheduled({**invited, "unanswered_cycles": 2}, due=date(2027, 5, 22))
    assert again["cycles"] == [
        {"due_date": "2027-02-21", "outcome": CycleOutcome.VISITED, "settled_at": NOW}
    ]
    assert (again["status"], again["unanswered_cycles"]) == ("scheduled", 0)
    assert again["created_at"] == "2026-01-01T00:00:00Z"
    assert _scheduled(_scheduled())["cycles"] == [], "a cycle not under way is just re-dated"


def test_a_recall_is_invited_and_cancelled_only_from_where_its_table_allows() -> None:
    scheduled = _scheduled()
    invited = recall.invited(scheduled, NOW)
    assert invited is not None and invited["status"] == RecallStatus.INVITED
    assert "execution" not in invited
    assert recall.invited(invited, NOW) is None, "invited once"
    cancelled = recall.cancelled(scheduled, NOW)
    assert cancelled is not None and cancelled["status"] == RecallStatus.CANCELLED
    assert cancelled["cycles"] == [], "no cycle had begun"
    assert recall.cancelled(cancelled, NOW) is None


def test_a_cycle_settles_once_and_a_conversion_clears_the_unanswered_count() -> None:
    invited = recall.invited({**_scheduled(), "unanswered_cycles": 2}, NOW)
    assert invited is not None
    converted = recall.settled(invited, RecallStatus.CONVERTED, NOW, "ap-9")
    assert converted is not None
    assert (converted["status"], converted["unanswered_cycles"]) == ("converted", 0)
    assert converted["appointment_id"] == "ap-9"
    assert converted["cycles"] == [
        {
            "due_date": "2027-02-21",
            "outcome": "converted",
            "settled_at": NOW,
            "appointment_id": "ap-9",
        }
    ]
    assert recall.settled(converted, RecallStatus.CANCELLED, NOW) is None
    assert recall.settled(invited, RecallStatus.HANDED_OVER, NOW) is None, "not a settling"


def test_an_unconverted_cycle_is_followed_by_the_next_or_ends_as_the_rule_says() -> None:
    now = datetime(2027, 3, 14, 2, 0, tzinfo=UTC)
    invited = recall.invited(_scheduled(), NOW)
    assert invited is not None
    following = recall.unconverted(invited, RULE, now)
    assert following is not None
    assert (following["status"], following["due_date"]) == ("scheduled", "2027-05-22")
    assert following["ref"] == recall.cycle_ref("p-1", "diabetes-90d", "2027-05-22")
    assert (following["why"], following["unanswered_cycles"]) == ("unconverted", 1)
    assert [c["outcome"] for c in following["cycles"]] == ["unconverted"]
    assert recall.unconverted(following, RULE, now) is None, "only an invited cycle"
    capped = {**RULE, "repeat": {"max_cycles": 1}}
    handed = recall.unconverted(invited, capped, now)
    assert handed is not None
    assert (handed["status"], handed["due_date"]) == ("handed_over", "2027-02-21")


def test_a_recall_keeps_its_last_cycles_only() -> None:
    old = [recall.cycle_record("2000-01-01", CycleOutcome.UNCONVERTED, NOW)] * recall.CYCLES_KEPT
    invited = recall.invited({**_scheduled(), "cycles": old}, NOW)
    assert invited is not None
    settled = recall.settled(invited, RecallStatus.CANCELLED, NOW)
    assert settled is not None and len(settled["cycles"]) == recall.CYCLES_KEPT
    assert settled["cycles"][-1]["outcome"] == "cancelled"


# --- every status is one the API and the FHIR export know -------------------------------------


def test_the_care_journey_schema_and_the_fhir_export_know_every_status() -> None:
    item = load_schema("care-journey-list")["properties"]["items"]["items"]["properties"]
    step = item["steps"]["items"]["properties"]
    assert set(item["status"]["enum"]) == set(JourneyStatus) | set(RecallStatus)
    assert set(item["kind"]["enum"]) == {aftercare.KIND, recall.KIND}
    assert set(step["status"]["enum"]) == set(StepStatus)
    assert set(step["kind"]["enum"]) == set(StepKind)
    assert set(item["cycles"]["items"]["properties"]["outcome"]["enum"]) == set(CycleOutcome)
    assert set(export.JOURNEY_STATUS) == set(JourneyStatus) | set(RecallStatus)
    assert set(export.STEP_STATUS) == set(StepStatus)
    assert set(export.RECALL_CYCLE_STATUS) == set(CycleOutcome)
