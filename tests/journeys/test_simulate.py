"""The scenario simulator (`python -m local simulate`): every example in examples/, played on an
emptied runtime, gives its committed transcript; a bad scenario is refused with the field named,
before anything runs when the file alone shows it, or as the API refused it."""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

import pytest

from local.simulate import (
    ScenarioError,
    check_scenario,
    expected_path,
    load_scenario,
    play,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.journey

EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def regenerate(scenario: Path) -> str:
    return f".venv/bin/python -m local simulate {scenario.relative_to(ROOT)} --write-expected"


@pytest.mark.parametrize("scenario", EXAMPLES, ids=lambda path: path.stem)
def test_each_example_plays_as_its_expected_transcript(own_runtime: Any, scenario: Path) -> None:
    expected = expected_path(scenario)
    assert expected.exists(), f"{expected.relative_to(ROOT)} is missing: {regenerate(scenario)}"
    played = play(load_scenario(scenario), own_runtime)
    wanted = expected.read_text(encoding="utf-8")
    if played != wanted:
        diff = "".join(
            difflib.unified_diff(
                wanted.splitlines(keepends=True),
                played.splitlines(keepends=True),
                fromfile=str(expected.relative_to(ROOT)),
                tofile="played now",
            )
        )
        pytest.fail(
            f"{scenario.name} no longer plays as {expected.name} says:\n{diff}\n"
            f"If the change is meant, write the new transcript and review its diff:\n"
            f"  {regenerate(scenario)}",
            pytrace=False,
        )


def test_the_transcripts_hold_no_generated_id_name_or_contact() -> None:
    """What the examples commit: labels and appointment ordinals, never what identifies."""
    import re

    from local.outbox import GENERATED_ID

    for scenario in EXAMPLES:
        expected = expected_path(scenario)
        if not expected.exists():
            continue
        text = expected.read_text(encoding="utf-8")
        assert not GENERATED_ID.search(text), f"a generated id in {expected.name}"
        document = json.loads(scenario.read_text(encoding="utf-8"))
        for label, patient in document["patients"].items():
            for name in patient["name"].values():
                assert not re.search(rf"\b{re.escape(name)}\b", text), f"{label}'s name"
            for contact in (patient.get("phone"), patient.get("email")):
                assert not contact or contact not in text, f"{label}'s contact"


BASE: dict[str, Any] = {
    "start": "2026-11-23T09:00:00+08:00",
    "until": "+2d",
    "hospital": {"id": "sim-bad-input", "time_zone": "Asia/Shanghai"},
    "schedules": {"cardio": {}},
    "patients": {"wei": {"name": {"given": "Wei"}}},
    "events": [
        {
            "at": "+1h",
            "book": {
                "patient": "wei",
                "schedule": "cardio",
                "start": "2026-11-24T10:00:00+08:00",
                "type": "follow_up",
            },
        },
        {"at": "+2h", "reply": {"patient": "wei", "text": "C"}},
    ],
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path (list indexes as numbers) replaced, or removed
    when `value` is REMOVE."""
    document = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    target: Any = document
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is REMOVE:
        del target[last]
    else:
        target[int(last) if isinstance(target, list) else last] = value
    return document


REMOVE = object()


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        ("events.1.reply.patient", "li", 'events[1].reply.patient: no patient labelled "li"'),
        ("events.0.book.schedule", "derma", 'events[0].book.schedule: no schedule "derma"'),
        ("events.0.book.pateint", "wei", "events[0].book.pateint: unknown field"),
        ("events.0.book.type", REMOVE, "events[0].book.type: missing"),
        ("events.0.at", "2026-11-23T10:00:00", "events[0].at: '2026-11-23T10:00:00' has no UTC"),
        ("events.1.at", "+30m", "events[1].at: before the event above it"),
        ("events.1.at", "+3d", "events[1].at: after until"),
        ("events.1.at", "+1 fortnight", "events[1].at: not a duration"),
        ("events.1.visit", {"patient": "wei", "outcome": "late"}, "events[1]: give exactly one"),
        ("events.1.ring", {}, "events[1].ring: not an action"),
        ("start", "tomorrow", "start: not a moment: 'tomorrow'"),
        ("until", "2026-11-22T09:00:00+08:00", "until: before start"),
        ("hospital.time_zone", REMOVE, "hospital.time_zone: missing"),
        ("patients", {"Wei Zhang": {}}, "patients.Wei Zhang: a label is lower-case"),
        ("patients", [], "patients: an object, not list"),
        ("templates", {"reminder": {"body": "x"}}, "templates.reminder: name it step/channel/"),
        ("colour", "blue", "colour: unknown field"),
    ],
)
def test_bad_input_is_refused_naming_the_field(path: str, value: Any, error: str) -> None:
    check_scenario(BASE, "base")  # the base itself is fine
    with pytest.raises(ScenarioError) as refused:
        check_scenario(changed(path, value), "bad")
    assert str(refused.value).startswith(error), str(refused.value)


def test_a_booking_the_scenario_never_made_is_refused() -> None:
    document = changed("events.1", {"at": "+2h", "visit": {"patient": "wei", "booking": 2}})
    document["events"][1]["visit"]["outcome"] = "attended"
    with pytest.raises(ScenarioError, match=r"events\[1\]\.visit\.booking: \"wei\" has made 1"):
        check_scenario(document, "bad")
    document["events"][0] = {"at": "+1h", "reply": {"patient": "wei", "text": "C"}}
    with pytest.raises(ScenarioError, match=r"events\[1\]\.visit\.patient: \"wei\" has booked"):
        check_scenario(document, "bad")


def test_a_file_that_is_not_json_says_where(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"start": ', encoding="utf-8")
    with pytest.raises(ScenarioError, match="not JSON: line 1 column 11"):
        load_scenario(broken)


def test_what_only_the_api_can_judge_is_refused_naming_the_scenarios_field(
    own_runtime: Any,
) -> None:
    """A slot the schedule does not offer: the API names `$.slot.start`, the error names the
    scenario's own field."""
    [example] = [path for path in EXAMPLES if path.stem == "appointment-basics"]
    document = json.loads(example.read_text(encoding="utf-8"))
    document["hospital"]["id"] = "sim-bad-slot"
    document["hospital"]["sender"]["sms_reply_number"] = "+8610690000199"
    document["events"] = [
        {
            "at": "+10m",
            "book": {
                "patient": "wei",
                "schedule": "cardio",
                "start": "2026-12-01T10:10:00+08:00",
                "type": "first_visit",
            },
        }
    ]
    with pytest.raises(ScenarioError) as refused:
        play(check_scenario(document, "bad-slot"), own_runtime)
    assert str(refused.value) == (
        "events[0].book.start: the schedule offers no slot starting then "
        "(POST /appointments answered 400 validation_failed)"
    )


def test_a_timeline_entry_prints_whatever_it_holds_but_ids() -> None:
    """The printer reads entries generically: a field the route adds shows up as key=value,
    moments in the patient's zone; generated ids never, an appointment by its ordinal."""
    from zoneinfo import ZoneInfo

    from local.simulate import entry_fields

    entry = {
        "at": "2026-11-30T02:05:00Z",
        "local_time": "2026-11-30 10:05",
        "journey": "appointment",
        "kind": "step",
        "step": "reminder_1d",
        "status": "sent",
        "channel": "sms",
        "appointment_id": "a-0123456789abcdef",
        "journey_version": 2,
        "task_id": "t-0123456789abcdef",
        "planned_at": "2026-11-30T02:00:00Z",
        "retry_at": "2026-11-30T02:04:00Z",
        "moved_from": "2026-11-29T23:00:00Z",
        "why": "deferred from +8613800138000",
        "attempts": 2,
    }
    cells, extras = entry_fields(entry, {"a-0123456789abcdef": "appt#1"}, ZoneInfo("Asia/Shanghai"))
    assert cells == [
        "2026-11-30 10:05",
        "appointment",
        "step",
        "appt#1 v2",
        "reminder_1d",
        "sent",
        "sms",
    ]
    assert extras == [
        "why=deferred from <phone>",
        "planned=2026-11-30 10:00",
        "attempts=2",
        "moved_from=2026-11-30 07:00",
        "retry_at=2026-11-30 10:04",
    ]
