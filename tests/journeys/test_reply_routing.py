"""A reply acts only for the hospital whose number it was sent to, and only on the appointment
it names: one phone shared by a parent and a child, or by one patient at two hospitals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.services.appointments import AppointmentService
from tests.conftest import Api
from tests.journeys.support import Journey, local_moment, move_to

pytestmark = pytest.mark.journey


def reply(runtime: Any, api: Api, phone: str, text: str, to: str | None = None) -> None:
    body = {"from": phone, "text": text, **({"to": to} if to else {})}
    response = api.call("POST", "/local/sms-reply", None, body)
    assert response.status_code == 202, response.body
    runtime.settle()


def number_of(j: Journey) -> str:
    number: str = j.clinic.tenant.doc["sender"]["sms_reply_number"]
    return number


def test_a_parent_and_child_on_one_phone_answer_by_code(
    runtime: Any, api: Api, journey: Any, make_patient: Any
) -> None:
    parent: Journey = journey()
    child = Journey(
        runtime, api, parent.clinic, make_patient, phone=parent.phone, name={"given": "Ming"}
    )
    parents_visit = parent.book(local_moment(days=8, hour=10))
    childs_visit = child.book(local_moment(days=8, hour=11))
    first, second = parent.sms()
    assert "回复C确认" in first.body, "one awaited answer: no code"
    assert "回复C2确认，N2取消" in second.body, "the second visit on the number has its code"
    assert first.sender == second.sender == number_of(parent)

    reply(runtime, api, f"+86{parent.phone}", "N")
    assert parent.appointment(parents_visit)["status"] == "booked", "no code: nothing done"
    assert child.appointment(childs_visit)["status"] == "booked"
    listing = parent.sms()[-1].body
    assert "C1" in listing and "C2" in listing and "Wei" in listing and "Ming" in listing

    reply(runtime, api, f"+86{parent.phone}", "N2")
    assert child.appointment(childs_visit)["status"] == "cancelled"
    assert parent.appointment(parents_visit)["status"] == "booked"
    reply(runtime, api, f"+86{parent.phone}", "c1")
    assert parent.appointment(parents_visit)["patient_response"] == "confirmed"


def test_one_phone_at_two_hospitals_never_crosses(runtime: Any, api: Api, journey: Any) -> None:
    at_a: Journey = journey(preferred_channels=["sms", "email"])
    at_b: Journey = journey(phone=at_a.phone, preferred_channels=["sms", "email"])
    start = local_moment(days=8, hour=10)
    visit_a, visit_b = at_a.book(start), at_b.book(start + timedelta(hours=1))
    phone = f"+86{at_a.phone}"

    reply(runtime, api, phone, "N", to=number_of(at_a))
    assert at_a.appointment(visit_a)["status"] == "cancelled"
    assert at_b.appointment(visit_b)["status"] == "booked", "hospital B's visit is untouched"

    reply(runtime, api, phone, "STOP", to=number_of(at_b))
    assert at_b.sms()[-1].sender == number_of(at_b), "B confirms the STOP from its number"
    move_to(runtime, start - timedelta(days=7) + timedelta(hours=2))
    reminder_b = next(d for d in at_b.deliveries() if d["step"] == "reminder_7d")
    assert reminder_b["channel"] == "email", "B's texts stopped"


def test_a_stop_whose_hospital_cannot_be_told_stops_every_hospital(
    runtime: Any, api: Api, journey: Any
) -> None:
    at_a: Journey = journey(preferred_channels=["sms", "email"])
    at_b: Journey = journey(phone=at_a.phone, preferred_channels=["sms", "email"])
    start = local_moment(days=8, hour=10)
    at_a.book(start)
    at_b.book(start + timedelta(hours=1))
    reply(runtime, api, f"+86{at_a.phone}", "退订", to="+19990000001")  # a number nobody owns
    move_to(runtime, start - timedelta(days=7) + timedelta(hours=2))
    for j in (at_a, at_b):
        reminder = next(d for d in j.deliveries() if d["step"] == "reminder_7d")
        assert reminder["channel"] == "email", "the safe side: no hospital texts the number"
        shown = j.sms_opt_out()
        assert (shown["opted_out"], shown["scope"], shown["keyword"]) == (
            True,
            "every_hospital",
            "退订",
        )

    reply(runtime, api, f"+86{at_a.phone}", "START", to=number_of(at_a))
    move_to(runtime, start - timedelta(days=1) + timedelta(hours=2))
    channels = {
        j is at_a: next(d for d in j.deliveries() if d["step"] == "reminder_1d")["channel"]
        for j in (at_a, at_b)
    }
    assert channels == {True: "sms", False: "email"}, "START at A's number turns A's back on"
    lifted_at_a, still_at_b = at_a.sms_opt_out(), at_b.sms_opt_out()
    assert (lifted_at_a["opted_out"], lifted_at_a["scope"], lifted_at_a["lifted_keyword"]) == (
        False,
        "every_hospital",
        "START",
    )
    assert still_at_b["opted_out"] and "lifted_at" not in still_at_b

    # Another STOP nobody can place outlasts A's START: the safe side again.
    reply(runtime, api, f"+86{at_a.phone}", "STOP", to="+19990000001")
    again = at_a.sms_opt_out()
    shown_again = (again["opted_out"], again["scope"], again["keyword"])
    assert shown_again == (True, "every_hospital", "STOP")


def test_a_start_nobody_can_place_does_not_lift_one_hospitals_own_stop(
    runtime: Any, api: Api, journey: Any
) -> None:
    """STOP to a number nobody owns, then STOP to A's number, then START to a number nobody
    owns: A's own STOP still holds (it used to be dropped as "already stopped")."""
    at_a: Journey = journey(preferred_channels=["sms", "email"])
    start = local_moment(days=8, hour=10)
    at_a.book(start)
    phone = f"+86{at_a.phone}"
    reply(runtime, api, phone, "STOP", to="+19990000001")
    move_to(runtime, start - timedelta(days=7, hours=20))
    reply(runtime, api, phone, "退订", to=number_of(at_a))
    move_to(runtime, start - timedelta(days=7, hours=19))
    reply(runtime, api, phone, "START", to="+19990000001")
    shown = at_a.sms_opt_out()
    assert (shown["opted_out"], shown["scope"], shown["keyword"]) == (
        True,
        "this_hospital",
        "退订",
    )
    move_to(runtime, start - timedelta(days=7) + timedelta(hours=2))
    reminder = next(d for d in at_a.deliveries() if d["step"] == "reminder_7d")
    assert reminder["channel"] == "email", "A's texts stay stopped"


def test_texts_from_a_sender_id_invite_no_reply(
    runtime: Any, api: Api, journey: Any, make_clinic: Any, make_patient: Any
) -> None:
    clinic = make_clinic(
        journeys=True,
        sender={"sms_sender_id": "TestHosp", "email_from": "care@hospital.example.com"},
    )
    j = Journey(runtime, api, clinic, make_patient)
    visit = j.book(local_moment(days=8, hour=10))
    [confirmation] = j.sms()
    assert confirmation.sender == "TestHosp"
    assert "回复" not in confirmation.body, "a sender ID cannot be answered"
    reply(runtime, api, f"+86{j.phone}", "N")
    assert j.appointment(visit)["status"] == "booked"


def test_a_reply_whose_handling_failed_is_handled_again(
    runtime: Any, api: Api, journey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    j: Journey = journey()
    visit = j.book(local_moment(days=8, hour=10))
    original = AppointmentService.cancel
    failures = [RuntimeError("the service failed once")]

    def cancel_failing_once(self: AppointmentService, *args: Any) -> Any:
        if failures:
            raise failures.pop()
        return original(self, *args)

    monkeypatch.setattr(AppointmentService, "cancel", cancel_failing_once)
    reply(runtime, api, f"+86{j.phone}", "N")
    assert failures == [], "the first attempt failed"
    assert j.appointment(visit)["status"] == "cancelled", "the redelivered reply was acted on"
