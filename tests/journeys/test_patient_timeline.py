"""`GET /patients/{id}/timeline` (and the patient's own `GET /me/timeline`): every journey of a
patient in one list in time order, read from the journeys' compact records: appointment steps
with what became of them and why, the booking and each change by whom (a texted reply as a
reply), aftercare steps and answers, campaign messages suppressed and why, staff tasks. The
patient's view leaves out internal steps, reasons and tasks."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Api, payload
from tests.journeys.support import Journey, iso, local_moment, move_to
from tests.journeys.test_aftercare_journey import URGENT, Aftercare

pytestmark = pytest.mark.journey


def timeline(api: Api, path: str, token: str) -> dict[str, Any]:
    response = api.call("GET", path, token)
    assert response.status_code == 200, response.body
    found: dict[str, Any] = payload(response)
    return found


def reply(j: Journey, text: str) -> None:
    sent = j.api.call("POST", "/local/sms-reply", None, {"from": f"+86{j.phone}", "text": text})
    assert sent.status_code == 202, sent.body
    j.runtime.settle()


def test_two_appointments_a_reply_staff_actions_and_a_no_show(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    staff = j.clinic.tenant.staff
    first_visit = local_moment(days=3, hour=10)
    kept = j.book(first_visit)
    reply(j, "C")
    missed = j.book(first_visit + timedelta(days=2))
    move_to(runtime, first_visit + timedelta(minutes=5))
    j.act(kept, "check-in", staff)
    j.act(kept, "fulfil", staff)
    move_to(runtime, first_visit + timedelta(days=3))  # the second visit was missed meanwhile

    found = timeline(j.api, f"/patients/{j.patient['id']}/timeline", staff)
    entries = found["entries"]
    moments = [e.get("planned_at") or e["at"] for e in entries]
    assert moments == sorted(moments), "one list in time order"
    assert found["time_zone"] == "Asia/Shanghai"

    def of(appointment: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for e in entries if e.get("appointment_id") == appointment["id"]]

    changes = [(e["kind"], e["change"], e["by"], e.get("via")) for e in of(kept) if "change" in e]
    assert changes == [
        ("booked", "booked", "patient", "app"),
        ("reply", "confirmed", "patient", "sms"),
        ("change", "arrived", "staff", None),
        ("change", "fulfilled", "staff", None),
    ]
    steps = {e["step"]: e for e in of(kept) if e["kind"] == "step"}
    assert steps["confirmation"]["status"] == "sent" and steps["confirmation"]["channel"] == "sms"
    assert steps["answer_deadline"]["status"] == "passed_over"
    assert steps["visit_check"]["status"] == "attended"
    assert steps["confirmation"]["local_time"] <= steps["visit_check"]["local_time"]

    noshow = [e for e in of(missed) if e.get("change") == "noshow"]
    assert [(e["by"], e["kind"]) for e in noshow] == [("journey", "change")]
    missed_steps = {e["step"]: e["status"] for e in of(missed) if e["kind"] == "step"}
    assert missed_steps["visit_check"] == "noshow"
    assert missed_steps["noshow_followup"] == "sent"
    tasks = [e for e in entries if e["kind"] == "task"]
    assert tasks and all(e["appointment_id"] == missed["id"] for e in tasks), tasks
    assert all(e["status"] == "open" and e["task_kind"] for e in tasks)

    # The patient's own view: bookings, changes, their reply, their messages; nothing internal.
    mine = timeline(j.api, "/me/timeline", j.token)
    assert mine == timeline(j.api, f"/patients/{j.patient['id']}/timeline", j.token)
    kinds = {e["kind"] for e in mine["entries"]}
    assert {"booked", "reply", "change", "step"} <= kinds and "task" not in kinds
    shown_steps = {e["step"] for e in mine["entries"] if e["kind"] == "step"}
    assert "confirmation" in shown_steps and "noshow_followup" in shown_steps
    assert not shown_steps & {"answer_deadline", "visit_check", "rebook_check"}
    assert not any({"why", "task_id", "reasons", "risk"} & e.keys() for e in mine["entries"])


def test_aftercare_answers_and_a_suppressed_campaign_message_say_why(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    a = Aftercare(runtime, api, make_clinic(capacity=5), make_patient)
    start = local_moment(days=0, hour=10, minute=1)
    a.surgery()
    move_to(runtime, start + timedelta(days=1))
    a.answer(a.sms()[-1], URGENT)
    sent = api.call("POST", "/local/sms-reply", None, {"from": f"+86{a.phone}", "text": "STOP"})
    assert sent.status_code == 202, sent.body
    runtime.settle()
    campaign = api.call(
        "POST",
        "/campaigns",
        a.clinic.tenant.staff,
        {"segment": "elderly", "name": "Flu", "message": {"text": {"zh-CN": "流感疫苗"}}},
        headers={"Idempotency-Key": f"timeline-{random.getrandbits(40)}"},
    )
    assert campaign.status_code == 201, campaign.body
    move_to(runtime, start + timedelta(days=2, hours=1))

    found = timeline(api, f"/patients/{a.patient['id']}/timeline", a.clinic.tenant.staff)
    entries = found["entries"]
    [started] = [e for e in entries if e["kind"] == "started"]
    assert (started["journey"], started["event"]) == ("aftercare", "surgery")
    steps = {e["step"]: e for e in entries if e.get("journey") == "aftercare" and "step" in e}
    assert steps["checkin-d1"]["status"] == "answered" and steps["checkin-d1"]["risk"] == "urgent"
    assert steps["checkin-d1"]["channel"] == "sms"
    assert steps["checkin-d7"]["status"] == "planned", "still to come, at its planned moment"
    answers = [e for e in entries if e["kind"] == "answer"]
    assert [e["risk"] for e in answers][:1] == ["urgent"]
    [urgent_task] = [e for e in entries if e["kind"] == "task"]
    assert urgent_task["task_kind"] == "urgent_answer"
    campaign_messages = [e for e in entries if e.get("journey") == "campaign"]
    # Texts opted out: it went by email, and says why the text did not.
    assert [(e["kind"], e["status"], e["channel"]) for e in campaign_messages] == [
        ("message", "sent", "email")
    ]
    assert any(r.startswith("sms:") for r in campaign_messages[0]["reasons"]), campaign_messages
    assert steps["education-d2-1"]["channel"] == "email"

    mine = timeline(api, "/me/timeline", a.token)["entries"]
    assert not any(e["kind"] in ("task", "started", "completed") for e in mine)
    assert [e for e in mine if e["kind"] == "answer"] and not any("risk" in e for e in mine)


def test_the_window_is_bounded_and_another_patient_or_hospital_finds_nothing(
    runtime: Any, journey: Any
) -> None:
    j: Journey = journey()
    j.book(local_moment(days=8, hour=10))
    path = f"/patients/{j.patient['id']}/timeline"
    staff = j.clinic.tenant.staff
    near = timeline(j.api, f"{path}?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", staff)
    assert near["entries"] == [], "nothing then"
    for query, field in (
        ("to=2000-01-01T00:00:00Z", "to"),
        ("from=yesterday", "from"),
        ("from=2027-01-01T00:00:00", "from"),
        ("from=2026-01-01T00:00:00Z&to=2028-01-01T00:00:00Z", "to"),
    ):
        refused = j.api.call("GET", f"{path}?{query}", staff)
        assert refused.status_code == 400, (query, refused.body)
        assert payload(refused)["error"]["details"][0]["path"] == field
    other: Journey = journey()
    assert j.api.call("GET", path, other.token).status_code == 404
    assert j.api.call("GET", path, other.clinic.tenant.staff).status_code == 404


def test_quiet_hours_moved_the_confirmation_and_left_a_reminder_out(
    runtime: Any, journey: Any
) -> None:
    j: Journey = journey()
    move_to(runtime, local_moment(days=1, hour=22, minute=30))
    booked_at = local_moment(days=0, hour=22, minute=30)
    j.book(local_moment(days=1, hour=8, minute=30))
    assert j.sms() == [], "not at night"
    entries = timeline(j.api, f"/patients/{j.patient['id']}/timeline", j.clinic.tenant.staff)[
        "entries"
    ]
    steps = {e["step"]: e for e in entries if e["kind"] == "step"}
    confirmation = steps["confirmation"]
    assert confirmation["why"] == "quiet hours" and confirmation["status"] == "planned"
    assert confirmation["moved_from"] == iso(booked_at)
    assert confirmation["local_time"].endswith("08:00"), confirmation
    left_out = [e for e in entries if e.get("status") == "left_out"]
    assert left_out and all(e["why"] for e in left_out), entries
    mine = timeline(j.api, "/me/timeline", j.token)["entries"]
    assert not any(e.get("status") == "left_out" for e in mine)
    # The session's clock is shared: leave it in the morning, as the other tests expect.
    move_to(runtime, local_moment(days=1, hour=9))


def test_an_email_the_provider_bounced_and_what_followed(runtime: Any, journey: Any) -> None:
    j: Journey = journey(preferred_channels=["email"])
    visit = local_moment(days=3, hour=10)
    j.book(visit)
    [sent] = j.deliveries()
    bounce = {
        "notificationType": "Bounce",
        "mail": {"messageId": sent["message_id"]},
        "bounce": {
            "bounceType": "Permanent",
            "bouncedRecipients": [{"emailAddress": j.patient["email"]}],
        },
    }
    runtime.client("sns").publish(
        TopicArn=runtime.resources.ref("EmailFeedbackTopic"), Message=json.dumps(bounce)
    )
    runtime.settle()
    move_to(runtime, visit - timedelta(days=1) + timedelta(minutes=5))
    entries = timeline(j.api, f"/patients/{j.patient['id']}/timeline", j.clinic.tenant.staff)[
        "entries"
    ]
    steps = {e["step"]: e for e in entries if e["kind"] == "step"}
    confirmation = steps["confirmation"]
    assert (confirmation["status"], confirmation["channel"], confirmation["delivery"]) == (
        "sent",
        "email",
        "bounced",
    )
    # The address is suppressed since: the reminder went by text, and says why.
    reminder = steps["reminder_1d"]
    assert (reminder["status"], reminder["channel"]) == ("sent", "sms"), reminder
    assert any(r.startswith("email:") for r in reminder["reasons"]), reminder
    [opt_out] = [e for e in entries if e["kind"] == "opt_out" and e["channel"] == "email"]
    assert (opt_out["how"], opt_out["status"]) == ("bounce", "in_force")
