"""A preview says what the journey then does: the same appointment previewed and booked gets its
messages at the previewed moments, on the previewed channel, with the previewed texts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import payload
from tests.journeys.support import Journey, iso, local_moment, move_to


def test_the_booked_journey_sends_what_its_preview_said(runtime: Any, journey: Any) -> None:
    from chalicelib import clock

    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    asked = {
        "appointment": {
            "type": "follow_up",
            "department": "cardiology",
            "start": iso(start),
            "location": "Building 2",  # the clinic's schedule's
        },
        "patient": {
            "time_zone": j.patient["time_zone"],
            "language": j.patient["language"],
            "channels": j.patient.get("preferred_channels") or ["sms", "email"],
        },
        "booked_at": iso(clock.now()),
    }
    response = j.api.call("POST", "/journeys/preview", j.clinic.tenant.staff, asked)
    assert response.status_code == 200, response.body
    previewed = [s for s in payload(response)["steps"] if s["action"] == "message"]

    j.book(start)
    move_to(runtime, start + timedelta(hours=1))
    sent = sorted((d for d in j.deliveries() if d["status"] == "sent"), key=lambda d: d["sent_at"])
    assert [(d["step"], d["channel"], d["sent_at"]) for d in sent] == [
        (s["step"], s["channel"], s["at"]) for s in previewed
    ]
    # The same texts but for what only a real booking has: the patient's name, the
    # appointment's own link.
    booked_id = sent[0]["appointment_id"]
    for step, message in zip(previewed, j.sms(), strict=True):
        text = message.body.replace(booked_id, "preview")
        assert _without_name(step["text"]) == _without_name(text), step["step"]


def _without_name(text: str) -> str:
    return text.split("，", 1)[-1]  # the greeting (the name and a full-width comma) comes first
