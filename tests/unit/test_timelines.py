"""The timeline's entries from the journeys' records (domain/timelines.py): pure, so every kind of
record is tried here without an emulator."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.domain import timelines

SHANGHAI = ZoneInfo("Asia/Shanghai")
PLAN = {
    "confirmation_at": "2027-03-01T00:00:00Z",
    "reminders": [{"step": "reminder_1d", "at": "2027-03-04T02:00:00Z"}],
    "await_answer": True,
    "answer_deadline": "2027-03-04T02:00:00Z",
    "visit_check_at": "2027-03-05T04:00:00Z",
    "noshow_retry_seconds": 259200,
}


def record(**steps: dict[str, str]) -> dict[str, object]:
    return {
        "appointment_id": "a-1",
        "journey_version": 1,
        "plan": PLAN,
        "moved": {"confirmation": "2027-02-28T14:30:00Z"},
        "left_out": [
            {"step": "reminder_2h", "would_be_at": "2027-03-05T00:00:00Z", "why": "quiet hours"}
        ],
        "steps": steps,
    }


def test_a_journeys_steps_in_time_order_with_what_became_of_them_and_why() -> None:
    entries = timelines.in_order(
        timelines.journey_entries(
            record(confirmation={"status": "sent", "channel": "sms", "at": "2027-03-01T00:00:00Z"}),
            current=True,
            zone=SHANGHAI,
        )
    )
    shown = [(e["step"], e["status"], e.get("why")) for e in entries]
    assert shown == [
        ("confirmation", "sent", "quiet hours"),
        ("reminder_1d", "planned", None),
        ("answer_deadline", "planned", None),
        ("reminder_2h", "left_out", "quiet hours"),
        ("visit_check", "planned", None),
    ]
    assert entries[0]["moved_from"] == "2027-02-28T14:30:00Z"
    assert entries[0]["local_time"] == "2027-03-01 08:00", "the patient's zone"


def test_an_ended_journeys_untaken_steps_and_a_no_shows_steps_beyond_the_plan() -> None:
    done = record(
        visit_check={"status": "noshow", "at": "2027-03-05T04:00:00Z"},
        noshow_followup={"status": "sent", "channel": "email", "at": "2027-03-05T05:00:00Z"},
    )
    entries = timelines.journey_entries(done, current=False, zone=SHANGHAI)
    statuses = {e["step"]: e["status"] for e in entries}
    assert statuses["reminder_1d"] == "not_taken"
    assert statuses["noshow_followup"] == "sent"
    assert entries[-1]["local_time"] == "2027-03-05 13:00", "happened, not planned"


def test_deliveries_add_to_their_steps_and_the_rest_become_messages() -> None:
    steps = timelines.journey_entries(record(), current=True, zone=SHANGHAI)
    deliveries: list[dict[str, Any]] = [
        {
            "key": "a-1#v1#confirmation",
            "step": "confirmation",
            "status": "delivered",
            "channel": "email",
            "attempt": 2,
            "fell_back": ["sms: opted out"],
            "created_at": "2027-03-01T00:00:00Z",
            "appointment_id": "a-1",
        },
        {
            "key": "campaign#c-1#p-1",
            "step": "campaign",
            "status": "suppressed",
            "reasons": ["sms: no consent"],
            "created_at": "2027-03-02T00:00:00Z",
            "campaign_id": "c-1",
        },
        {
            "key": "recall#p-1#r-1#2027-03-03#recall_invitation",
            "step": "recall_invitation",
            "status": "bounced",
            "channel": "email",
            "sent_at": "2027-03-03T01:00:00Z",
            "created_at": "2027-03-03T01:00:00Z",
            "recall_rule": "r-1",
        },
    ]
    merged = timelines.merged_with_deliveries(steps, deliveries, SHANGHAI)
    [confirmation] = [e for e in merged if e.get("step") == "confirmation"]
    assert (confirmation["delivery"], confirmation["attempts"], confirmation["channel"]) == (
        "delivered",
        2,
        "email",
    )
    assert confirmation["reasons"] == ["sms: opted out"]
    messages = [e for e in merged if e["kind"] == "message"]
    assert [(e["journey"], e["status"], e.get("delivery")) for e in messages] == [
        ("campaign", "suppressed", None),
        ("recall", "sent", "bounced"),
    ]
    assert messages[0]["campaign_id"] == "c-1" and messages[1]["rule_id"] == "r-1"


def test_a_recalls_cycles_and_an_aftercare_journey() -> None:
    recall = {
        "rule_id": "r-1",
        "status": "scheduled",
        "due_date": "2027-09-01",
        "cycles": [
            {
                "due_date": "2027-03-01",
                "outcome": "converted",
                "settled_at": "2027-03-04T02:00:00Z",
                "appointment_id": "a-9",
            }
        ],
    }
    cycles = timelines.recall_entries(recall, SHANGHAI)
    assert [(e["due_date"], e["status"]) for e in cycles] == [
        ("2027-03-01", "converted"),
        ("2027-09-01", "scheduled"),
    ]
    assert cycles[1]["planned_at"] == "2027-08-31T16:00:00Z", "the due day in the patient's zone"
    journey = {
        "id": "ac-1",
        "status": "completed",
        "outcome": "rebooked",
        "started_at": "2027-03-01T00:00:00Z",
        "completed_at": "2027-03-20T00:00:00Z",
        "event": {"type": "surgery"},
        "steps": [
            {
                "id": "checkin-d1",
                "kind": "checkin",
                "at": "2027-03-02T02:00:00Z",
                "status": "answered",
                "answered_at": "2027-03-02T03:00:00Z",
                "risk": "urgent",
            },
            {
                "id": "education-d2-1",
                "kind": "education",
                "at": "2027-03-03T02:00:00Z",
                "status": "planned",
                "not_before": "2027-03-04T00:00:00Z",
            },
        ],
    }
    entries = timelines.aftercare_entries(journey, SHANGHAI)
    assert [e["kind"] for e in entries] == ["started", "step", "step", "completed"]
    assert entries[1]["risk"] == "urgent" and entries[1]["at"] == "2027-03-02T03:00:00Z"
    assert entries[2]["why"] == "quiet hours" and entries[2]["retry_at"] == "2027-03-04T00:00:00Z"


def test_a_patient_sees_no_internal_step_reason_risk_or_task() -> None:
    steps = timelines.journey_entries(record(), current=True, zone=SHANGHAI)
    task = timelines.task_entry(
        {"id": "t-1", "kind": "no_answer", "status": "open", "created_at": "2027-03-04T02:00:00Z"},
        SHANGHAI,
    )
    answer = timelines.answer_entry(
        {
            "id": "qr-1",
            "questionnaire": "post-operative",
            "status": "completed",
            "authored_at": "2027-03-02T03:00:00Z",
            "updated_at": "2027-03-02T03:00:00Z",
            "risk": "urgent",
        },
        SHANGHAI,
    )
    assert answer is not None
    draft = {"id": "qr-2", "status": "in-progress", "updated_at": "2027-03-02T03:00:00Z"}
    assert timelines.answer_entry(draft, SHANGHAI) is None, "not an answer yet"
    shown = timelines.for_patient([*steps, task, answer])
    assert [(e["kind"], e.get("step")) for e in shown] == [
        ("step", "confirmation"),
        ("step", "reminder_1d"),
        ("answer", None),
    ]
    assert not any({"why", "risk", "task_id", "reasons"} & e.keys() for e in shown)


def test_timelines_read_compact_records_never_step_functions_history() -> None:
    """The issue's line: a timeline is read from the records the journeys write, not from
    execution history on the request path. Its service reaches no AWS adapter at all."""
    import ast
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "chalicelib" / "services" / "timelines.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not any(m.startswith(("chalicelib.adapters", "boto")) for m in imported), imported
    assert any(m.startswith("chalicelib.store.") for m in imported), "it reads the store"
