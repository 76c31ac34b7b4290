"""The appointment journey, path by path, on the virtual clock: each test books through the
API, moves the clock to the moments that matter, lets the executions settle, and reads what was
sent (the outbox), what staff see (tasks) and how the execution ended."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Api, payload
from tests.journeys.support import (
    SHANGHAI,
    Journey,
    assert_stopped,
    iso,
    local_moment,
    move_to,
)

pytestmark = pytest.mark.journey


def test_confirmed_and_attended(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    [confirmation] = j.sms()
    assert "回复C确认" in confirmation.body and "10:00" in confirmation.body
    assert "Bring your glucose diary" not in confirmation.body, "no clinical notes in SMS"
    move_to(runtime, start - timedelta(days=7))
    assert len(j.sms()) == 2
    j.act(appointment, "confirm")
    move_to(runtime, start - timedelta(days=1))
    move_to(runtime, start - timedelta(hours=2))
    assert len(j.sms()) == 4
    assert j.tasks() == [], "a confirmed appointment is not escalated"
    j.act(appointment, "check-in", j.clinic.tenant.staff)
    j.act(appointment, "fulfil", j.clinic.tenant.staff)
    move_to(runtime, start + timedelta(hours=2, minutes=1))
    assert j.execution(appointment)["status"] == "SUCCEEDED"
    events = [
        json.loads(m.body)
        for m in runtime.outbox.messages(channel="topic")
        if "journey-events" in m.to
    ]
    fulfilled = [e for e in events if e["appointment_id"] == appointment["id"]]
    assert fulfilled and fulfilled[0]["type"] == "appointment.fulfilled"
    # The journey's compact record: its plan, and what each step did, in a few items.
    from chalicelib.store.journey_records import JourneyRecordRepository

    (record,) = JourneyRecordRepository().for_appointment(j.clinic.tenant.id, appointment["id"])
    assert [r["step"] for r in record["plan"]["reminders"]] == [
        "reminder_7d",
        "reminder_1d",
        "reminder_2h",
    ]
    assert {step: done["status"] for step, done in record["steps"].items()} == {
        "confirmation": "sent",
        "reminder_7d": "sent",
        "reminder_1d": "sent",
        "answer_deadline": "passed_over",  # confirmed after the 7-day reminder
        "reminder_2h": "sent",
        "visit_check": "attended",
    }


def test_no_answer_escalates_to_staff(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    start = local_moment(days=3, hour=10)
    appointment = j.book(start)
    assert j.tasks() == []
    move_to(runtime, start - timedelta(hours=24))
    [task] = j.tasks()
    assert (task["kind"], task["appointment_id"]) == ("no_answer", appointment["id"])
    staff_alerts = [m for m in runtime.outbox.messages(channel="topic") if "staff-alerts" in m.to]
    assert any(task["id"] in m.body for m in staff_alerts)
    assert j.patient["name"]["given"] not in "".join(m.body for m in staff_alerts), "ids only"
    j.act(appointment, "confirm")
    assert j.tasks() == [], "a late answer closes the task by itself"
    closed = j.api.call("POST", f"/tasks/{task['id']}/close", j.clinic.tenant.staff)
    assert closed.status_code == 409, "already closed"


def test_cancel_stops_every_later_message(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    j.act(appointment, "cancel")
    assert_stopped(j.execution(appointment))
    move_to(runtime, start + timedelta(hours=3))
    assert len(j.sms()) == 1, "only the confirmation"


def test_reschedule_replaces_the_reminders(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    old_start = local_moment(days=8, hour=10)
    appointment = j.book(old_start)
    new_start = old_start + timedelta(days=2)
    moved = j.act(
        appointment,
        "reschedule",
        body={"slot": {"schedule_id": j.clinic.schedule_id, "start": iso(new_start)}},
    )
    assert_stopped(j.execution(appointment))
    assert j.execution(moved)["status"] == "RUNNING"
    assert len(j.sms()) == 2, "a confirmation for each version"
    move_to(runtime, old_start - timedelta(days=7))
    assert len(j.sms()) == 2, "the old 7-day reminder never goes out"
    move_to(runtime, new_start - timedelta(days=7))
    reminders = j.sms()[2:]
    assert len(reminders) == 1 and new_start.astimezone(SHANGHAI).date().isoformat() in (
        reminders[0].body
    )


def test_no_show_follow_up_then_staff_task(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    start = local_moment(days=2, hour=10)
    appointment = j.book(start)
    move_to(runtime, start + timedelta(hours=2, minutes=1))
    current = payload(j.api.call("GET", f"/appointments/{appointment['id']}", j.token))
    assert current["status"] == "noshow"
    assert "missed you" in j.sms()[-1].body or "未能就诊" in j.sms()[-1].body
    sent_so_far = len(j.sms())
    move_to(runtime, start + timedelta(days=3, hours=3))
    assert len(j.sms()) == sent_so_far + 1, "the second attempt"
    second = j.sms()[-1].body
    assert "今天" not in second and start.date().isoformat() in second, "names the missed day"
    assert [t["kind"] for t in j.tasks()] == ["no_answer"], "it was never answered either"
    move_to(runtime, start + timedelta(days=6, hours=4))
    assert sorted(t["kind"] for t in j.tasks()) == ["no_answer", "noshow_unrebooked"]
    assert j.execution(appointment)["status"] == "SUCCEEDED"


def test_rebooking_after_a_no_show_closes_the_loop(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    start = local_moment(days=2, hour=11)
    appointment = j.book(start)
    move_to(runtime, start + timedelta(hours=2, minutes=1))
    j.book(start + timedelta(days=6))
    move_to(runtime, start + timedelta(days=3, hours=3))
    assert j.execution(appointment)["status"] == "SUCCEEDED"
    assert "noshow_unrebooked" not in [t["kind"] for t in j.tasks()]


def test_booking_an_hour_ahead_gets_only_the_confirmation(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    move_to(runtime, local_moment(days=1, hour=9))
    start = local_moment(days=0, hour=10)
    appointment = j.book(start)
    move_to(runtime, start - timedelta(minutes=1))
    assert len(j.sms()) == 1
    assert j.tasks() == []
    move_to(runtime, start + timedelta(hours=2, minutes=1))
    assert len(j.sms()) == 2, "the journey went on to the no-show follow-up: it did not hang"
    assert j.appointment(appointment)["status"] == "noshow"


def test_patient_abroad_gets_reminders_in_their_daytime(runtime: Any, journey: Any) -> None:
    london = ZoneInfo("Europe/London")
    j: Journey = journey(time_zone="Europe/London")
    move_to(runtime, local_moment(days=1, hour=12, zone=london))
    start = local_moment(days=8, hour=8)  # 08:00 Shanghai: 00:00 or 01:00 in London
    j.book(start)
    night_in_london = (start - timedelta(days=7)).astimezone(london)
    assert night_in_london.hour < 8, "the 7-day reminder falls in London's quiet hours"
    morning = night_in_london.replace(hour=8, minute=0)
    move_to(runtime, morning - timedelta(minutes=1))
    sent = [(m.sent_at, m.body[:30]) for m in j.sms()]
    assert len(sent) == 1, f"not during the night in London: {sent}"
    move_to(runtime, morning)
    reminder = j.sms()[1]
    local = datetime.fromisoformat(reminder.sent_at).astimezone(london)
    assert local.strftime("%H:%M") == "08:00", "moved out of quiet hours, London time"
    shown = start.astimezone(london).strftime("%H:%M")
    assert shown in reminder.body, "the time shown is the patient's own"


def test_late_night_booking_is_confirmed_in_the_morning(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    move_to(runtime, local_moment(days=1, hour=23))
    j.book(local_moment(days=8, hour=10))
    assert j.sms() == []
    move_to(runtime, local_moment(days=1, hour=8, minute=5))
    [confirmation] = j.sms()
    assert datetime.fromisoformat(confirmation.sent_at).astimezone(SHANGHAI).hour == 8


def test_opted_out_patient_gets_nothing_and_the_log_says_why(runtime: Any, journey: Any) -> None:
    withdrawn = {"sms": {"status": "withdrawn", "method": "sms_keyword"}}
    j: Journey = journey(consent=withdrawn)
    j.book(local_moment(days=8, hour=10))
    assert j.sms() == []
    [logged] = j.deliveries()
    assert logged["step"] == "confirmation"
    assert logged["status"] == "sent" and logged["channel"] == "email", "falls back to email"
    assert any("consent withdrawn" in reason for reason in logged["fell_back"])


def test_no_channel_left_is_suppressed(runtime: Any, journey: Any, api: Api) -> None:
    withdrawn = {
        "sms": {"status": "withdrawn", "method": "sms_keyword"},
        "email": {"status": "withdrawn", "method": "app"},
    }
    j: Journey = journey(consent=withdrawn)
    j.book(local_moment(days=8, hour=10))
    [logged] = j.deliveries()
    assert logged["status"] == "suppressed"
    assert sorted(r.split(":")[0] for r in logged["reasons"]) == ["email", "push", "sms"]
    assert runtime.outbox.messages(to=j.patient["email"]) == []


def test_every_task_replayed_twice_acts_once(runtime: Any, journey: Any) -> None:
    """Each step run again (a Lambda retried after it acted, an execution's history replayed)
    sends nothing twice and opens no second task; the journey's own run of them finds them
    done."""
    from tests.journeys.test_cancel_race import late_step

    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    ref = {
        "tenant_id": j.clinic.tenant.id,
        "appointment_id": appointment["id"],
        "journey_version": 1,
    }
    lam = runtime.client("lambda")
    for _ in range(2):
        for step in ("confirmation", "reminder_7d", "answer_deadline"):
            answer = lam.invoke(
                FunctionName="careloop-local-appointment_journey_step",
                Payload=json.dumps(late_step(ref, start, step)).encode(),
            )
            assert "FunctionError" not in answer, answer["Payload"].read()
    assert len(j.sms()) == 2, "confirmation and the 7-day reminder, once each"
    assert len(j.tasks()) == 1, "one no-answer task"
    move_to(runtime, start - timedelta(days=7))
    assert len(j.sms()) == 2, "the journey's own reminder finds it already sent"


def test_the_tenants_own_wording_is_sent(runtime: Any, journey: Any) -> None:
    j: Journey = journey()
    wording = {"body": "{{clinic}}：{{first_name}}，{{date}} {{time}}就诊，请携带医保卡。"}
    saved = j.api.call("PUT", "/templates/reminder/sms/zh-CN", j.clinic.tenant.admin, wording)
    assert saved.status_code == 200, saved.body
    start = local_moment(days=8, hour=10)
    j.book(start)
    move_to(runtime, start - timedelta(days=7))
    assert j.sms()[-1].body.endswith("请携带医保卡。")
    assert "回复C确认" in j.sms()[0].body, "the confirmation keeps the default wording"


def test_push_to_a_registered_device_when_preferred(runtime: Any, journey: Any) -> None:
    j: Journey = journey(preferred_channels=["push", "sms"])
    registered = j.api.call(
        "POST", "/me/devices", j.token, {"platform": "fcm", "token": f"fcm-token-{j.phone}"}
    )
    assert registered.status_code == 201, registered.body
    again = j.api.call(
        "POST", "/me/devices", j.token, {"platform": "fcm", "token": f"fcm-token-{j.phone}"}
    )
    assert payload(again)["device_id"] == payload(registered)["device_id"]
    family = j.api.call(
        "POST",
        "/me/devices",
        runtime.token("patient", j.clinic.tenant.id, j.patient["id"]),
        {"platform": "fcm", "token": f"fcm-token-{j.phone}"},
    )
    assert family.status_code == 201
    j.book(local_moment(days=8, hour=10))
    [logged] = j.deliveries()
    assert logged["channel"] == "push"
    pushed = runtime.outbox.messages(channel="push")
    assert any(logged["message_id"] == m.message_id for m in pushed)
    assert j.sms() == [], "push went through, so no SMS"


def test_a_failing_channel_falls_back_to_the_next(runtime: Any, journey: Any) -> None:
    j: Journey = journey(preferred_channels=["sms", "email"])
    too_long = {"body": "{{clinic}}：" + "请按时就诊。" * 300}  # over SMS's 1,600 bytes
    saved = j.api.call("PUT", "/templates/confirmation/sms/zh-CN", j.clinic.tenant.admin, too_long)
    assert saved.status_code == 200
    j.book(local_moment(days=8, hour=10))
    [logged] = j.deliveries()
    assert (logged["status"], logged["channel"]) == ("sent", "email")
    assert any(why.startswith("sms: refused") for why in logged["fell_back"])
    assert j.sms() == []


def test_no_time_to_answer_means_no_wait_for_an_answer(runtime: Any, journey: Any) -> None:
    """Booked at 23:00 for 08:00 the day after next: the confirmation goes at 08:00, when the
    24-hour answer deadline has already passed. The journey must not wait for an answer it
    never asked for, nor escalate."""
    j: Journey = journey()
    move_to(runtime, local_moment(days=1, hour=23))
    start = local_moment(days=2, hour=8)
    appointment = j.book(start)
    move_to(runtime, local_moment(days=1, hour=8, minute=1))
    assert len(j.sms()) == 1 and j.tasks() == []
    move_to(runtime, start + timedelta(hours=2, minutes=1))
    assert j.appointment(appointment)["status"] == "noshow"
    assert len(j.sms()) == 2, "the follow-up went out: the journey did not hang"
