"""What an imported (hospital-owned) appointment's write means: places freed and taken, the
journeys owed, and no write at all for the same appointment sent again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.errors import Conflict
from chalicelib.domain.hospital_appointments import (
    HOSPITAL_SCHEDULE,
    check_changeable_here,
    department_from_hints,
    hospital_appointment_id,
    imported_change,
)

NOW = datetime(2027, 3, 1, tzinfo=UTC)
NOW_ISO = "2027-03-01T00:00:00Z"


def incoming(**changes: Any) -> dict[str, Any]:
    doc = {
        "id": "a-1",
        "owner": "hospital_system",
        "external_id": {"system": "urn:h", "value": "1"},
        "patient_id": "p-1",
        "department": "cardiology",
        "clinician": "dr-li",
        "schedule_id": "cardio",
        "location": "Building 2",
        "type": "follow_up",
        "start": "2027-03-05T01:00:00Z",
        "end": "2027-03-05T01:30:00Z",
        "status": "booked",
        "patient_time_zone": "Asia/Shanghai",
        "booked_by": "hospital_system",
    }
    doc.update(changes)
    return doc


def stored(**changes: Any) -> dict[str, Any]:
    change = imported_change(None, incoming(**changes), NOW, NOW_ISO)
    assert change is not None
    return {**change.doc, "version": 1}


def test_a_new_future_appointment_takes_its_place_and_starts_its_journey() -> None:
    change = imported_change(None, incoming(), NOW, NOW_ISO)
    assert change is not None and change.created
    assert (change.take_place, change.free_previous) == (True, False)
    assert (change.start_version, change.stop_version) == (1, None)
    assert change.doc["patient_response"] == "pending"


def test_outside_our_schedules_no_place_and_in_the_past_no_journey() -> None:
    change = imported_change(None, incoming(schedule_id=HOSPITAL_SCHEDULE), NOW, NOW_ISO)
    assert change is not None and not change.take_place
    past = incoming(start="2026-01-05T01:00:00Z", end="2026-01-05T01:30:00Z", status="fulfilled")
    history = imported_change(None, past, NOW, NOW_ISO)
    assert history is not None
    assert (history.take_place, history.start_version) == (False, None)


def test_the_same_appointment_again_is_no_change() -> None:
    previous = {**stored(), "patient_response": "confirmed", "version": 4}
    assert imported_change(previous, incoming(), NOW, NOW_ISO) is None


def test_a_new_time_moves_the_place_and_the_journey() -> None:
    previous = {**stored(), "patient_response": "confirmed"}
    moved = incoming(start="2027-03-06T01:00:00Z", end="2027-03-06T01:30:00Z")
    change = imported_change(previous, moved, NOW, NOW_ISO)
    assert change is not None and not change.created
    assert (change.free_previous, change.take_place) == (True, True)
    assert (change.stop_version, change.start_version) == (1, 2)
    assert change.doc["patient_response"] == "pending"


def test_a_cancellation_frees_the_place_and_stops_the_journey() -> None:
    change = imported_change(stored(), incoming(status="cancelled"), NOW, NOW_ISO)
    assert change is not None
    assert (change.free_previous, change.take_place) == (True, False)
    assert (change.stop_version, change.start_version) == (1, None)
    # Brought back: a new journey and the place again.
    cancelled = {**change.doc, "version": 2}
    back = imported_change(cancelled, incoming(), NOW, NOW_ISO)
    assert back is not None
    assert (back.take_place, back.start_version, back.stop_version) == (True, 2, None)


def test_attendance_keeps_the_place_and_says_the_visit_was_fulfilled() -> None:
    arrived = imported_change(stored(), incoming(status="arrived"), NOW, NOW_ISO)
    assert arrived is not None
    assert (arrived.free_previous, arrived.take_place, arrived.stop_version) == (True, False, 1)
    fulfilled = imported_change(
        {**arrived.doc, "version": 2}, incoming(status="fulfilled"), NOW, NOW_ISO
    )
    assert fulfilled is not None and fulfilled.became_fulfilled
    assert (fulfilled.free_previous, fulfilled.take_place) == (False, False)


def test_the_hospitals_identifier_names_one_appointment_per_tenant() -> None:
    one = hospital_appointment_id("t1", "urn:h", "1")
    assert one == hospital_appointment_id("t1", "urn:h", "1")
    assert one != hospital_appointment_id("t2", "urn:h", "1")
    assert one != hospital_appointment_id("t1", "urn:h", "2")


def test_departments_by_code_or_name() -> None:
    departments = {"cardiology": "心内科", "dermatology": "Skin clinic"}
    assert department_from_hints(["394579002", "Cardiology"], departments) == "cardiology"
    assert department_from_hints(["skin CLINIC"], departments) == "dermatology"
    assert department_from_hints(["心内科"], departments) == "cardiology"
    assert department_from_hints(["Oncology"], departments) is None


def test_changed_only_in_the_hospitals_system() -> None:
    check_changeable_here(stored(owner=None))
    with pytest.raises(Conflict) as refused:
        check_changeable_here(stored())
    assert refused.value.code == "hospital_owned"
