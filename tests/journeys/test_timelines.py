"""`GET /appointments/{id}/timeline`: each planned step with its moment in the patient's zone
and what became of it, and why, read from the journeys' compact records; a patient sees the
booking and their messages only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import payload
from tests.journeys.support import Journey, iso, local_moment, move_to


def timeline(j: Journey, appointment: dict[str, Any], token: str) -> dict[str, Any]:
    response = j.api.call("GET", f"/appointments/{appointment['id']}/timeline", token)
    assert response.status_code == 200, response.body
    found: dict[str, Any] = payload(response)
    return found


def steps_of(found: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [
        (e["journey_version"], e["step"], e["status"])
        for e in found["entries"]
        if e["kind"] == "step"
    ]


def test_what_happened_what_is_planned_and_why(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    booked = j.book(start)
    move_to(runtime, start - timedelta(days=7))
    j.act(booked, "confirm")
    move_to(runtime, start - timedelta(days=1))
    staff = timeline(j, booked, j.clinic.tenant.staff)
    assert steps_of(staff) == [
        (1, "confirmation", "sent"),
        (1, "reminder_7d", "sent"),
        (1, "reminder_1d", "sent"),
        (1, "answer_deadline", "passed_over"),  # the patient had answered
        (1, "reminder_2h", "planned"),
        (1, "visit_check", "planned"),
    ]
    entries = {e.get("step", e["kind"]): e for e in staff["entries"]}
    assert entries["booked"]["local_time"] <= entries["confirmation"]["local_time"]
    assert entries["confirmation"]["channel"] == "sms"
    assert entries["answer_deadline"]["why"] == "the patient had answered"
    assert entries["reminder_2h"]["local_time"] == (start - timedelta(hours=2)).strftime(
        "%Y-%m-%d %H:%M"
    )
    assert staff["time_zone"] == "Asia/Shanghai" and staff["patient_response"] == "confirmed"

    # A reschedule starts the next journey: the first one's remaining steps were never taken.
    later = start + timedelta(days=2)
    slot = {"schedule_id": j.clinic.schedule_id, "start": iso(later)}
    moved = j.act(booked, "reschedule", body={"slot": slot})
    after = steps_of(timeline(j, moved, j.clinic.tenant.staff))
    assert (1, "reminder_2h", "not_taken") in after
    assert (2, "confirmation", "sent") in after

    mine = timeline(j, booked, j.token)
    assert {e.get("step") for e in mine["entries"]} >= {"confirmation", "reminder_7d"}
    assert not any(e.get("step") in ("answer_deadline", "visit_check") for e in mine["entries"])
    assert not any("why" in e for e in mine["entries"]), "no internal reasons for the patient"


def test_another_patient_and_another_hospital_find_nothing(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    booked = j.book(local_moment(days=8, hour=10))
    other: Journey = journey()
    path = f"/appointments/{booked['id']}/timeline"
    assert j.api.call("GET", path, other.token).status_code == 404
    assert j.api.call("GET", path, other.clinic.tenant.staff).status_code == 404
