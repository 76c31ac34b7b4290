"""What comes back: SMS replies (as two-way SMS delivers them on SNS) and SES feedback."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Api
from tests.journeys.support import Journey, assert_stopped, local_moment, move_to

pytestmark = pytest.mark.journey


def reply(runtime: Any, api: Api, phone: str, text: str) -> None:
    response = api.call("POST", "/local/sms-reply", None, {"from": phone, "text": text})
    assert response.status_code == 202, response.body
    runtime.settle()


def test_cancelled_by_sms(runtime: Any, api: Api, journey: Any) -> None:
    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    reply(runtime, api, f"+86{j.phone}", "N")
    assert j.appointment(appointment)["status"] == "cancelled"
    assert_stopped(j.execution(appointment))
    move_to(runtime, start + timedelta(hours=3))
    assert len(j.sms()) == 1, "only the confirmation"


def test_confirmed_by_sms_is_not_escalated(runtime: Any, api: Api, journey: Any) -> None:
    j: Journey = journey()
    start = local_moment(days=3, hour=10)
    appointment = j.book(start)
    assert "C确认" in j.sms()[0].body, "the confirmation asks for C/N/R"
    reply(runtime, api, f"+86{j.phone}", " c ")
    assert j.appointment(appointment)["patient_response"] == "confirmed"
    move_to(runtime, start - timedelta(hours=23))
    assert j.tasks() == []
    reminder = j.sms()[-1]
    assert "提醒" in reminder.body
    assert "确认" not in reminder.body and "N取消" not in reminder.body, reminder.body
    assert "回复N" in reminder.body and "回复R" in reminder.body, "cancel and reschedule only"


def test_reschedule_request_by_sms_reaches_staff(runtime: Any, api: Api, journey: Any) -> None:
    j: Journey = journey()
    appointment = j.book(local_moment(days=8, hour=10))
    reply(runtime, api, f"+86{j.phone}", "改约")
    assert j.appointment(appointment)["patient_response"] == "reschedule_requested"
    [task] = j.tasks()
    assert task["kind"] == "reschedule_requested"
    closed = api.call("POST", f"/tasks/{task['id']}/close", j.clinic.tenant.staff)
    assert closed.status_code == 200, "long task ids can be closed too"


def test_stop_start_and_help(runtime: Any, api: Api, journey: Any) -> None:
    j: Journey = journey(preferred_channels=["sms", "email"])
    start = local_moment(days=8, hour=10)
    j.book(start)
    number = f"+86{j.phone}"
    assert j.sms_opt_out() == {
        "channel": "sms",
        "address": number,
        "whose": "patient",
        "opted_out": False,
    }
    reply(runtime, api, number, "退订")
    stopped_at = clock_iso(runtime)
    confirmation = j.sms()[-1]
    assert "退订" in confirmation.body and j.clinic.tenant.doc["name"] in confirmation.body
    reply(runtime, api, number, "STOP")
    assert len(j.sms()) == 2, "confirmed once"
    stop = {
        "channel": "sms",
        "address": number,
        "whose": "patient",
        "opted_out": True,
        "at": stopped_at,
        "how": "sms_reply",
        "keyword": "退订",
        "scope": "this_hospital",
    }
    assert j.sms_opt_out() == stop, "staff see when, how and which word (the first STOP)"
    move_to(runtime, start - timedelta(days=7))
    assert len(j.sms()) == 2, "no reminder by SMS"
    reminder = next(d for d in j.deliveries() if d["step"] == "reminder_7d")
    assert reminder["channel"] == "email"
    assert any("opted out" in reason for reason in reminder["fell_back"])
    reply(runtime, api, number, "HELP")
    assert "STOP" in j.sms()[-1].body, "help says how to stop"
    move_to(runtime, start - timedelta(days=6))
    reply(runtime, api, number, "start")
    assert len(j.sms()) == 4
    assert j.sms_opt_out() == {
        **stop,
        "opted_out": False,
        "lifted_at": clock_iso(runtime),
        "lifted_how": "sms_reply",
        "lifted_keyword": "START",
    }, "START shows the opt-out lifted, and which one it was"
    move_to(runtime, start - timedelta(days=1))
    assert "提醒" in j.sms()[-1].body, "texts are back on"


def clock_iso(runtime: Any) -> str:
    from chalicelib.domain.common import utc_iso

    return utc_iso(runtime.clock.now())


def test_a_replayed_sns_event_acts_once(runtime: Any, api: Api, journey: Any) -> None:
    j: Journey = journey()
    j.book(local_moment(days=8, hour=10))
    sns = runtime.client("sns")
    topic = runtime.resources.ref("InboundSmsTopic")
    notification = json.dumps(
        {
            "originationNumber": f"+86{j.phone}",
            "messageBody": "STOP",
            "inboundMessageId": f"replayed-{j.phone}",
        }
    )
    for _ in range(2):
        sns.publish(TopicArn=topic, Message=notification)
    runtime.settle()
    assert len(j.sms()) == 2, "the confirmation and one STOP answer"


def test_bounced_address_is_suppressed(runtime: Any, journey: Any) -> None:
    j: Journey = journey(
        preferred_channels=["email"], consent={"sms": {"status": "withdrawn", "method": "app"}}
    )
    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bouncedRecipients": [{"emailAddress": j.patient["email"]}],
        },
    }
    runtime.client("sns").publish(
        TopicArn=runtime.resources.ref("EmailFeedbackTopic"), Message=json.dumps(bounce)
    )
    runtime.settle()
    j.book(local_moment(days=8, hour=10))
    [logged] = j.deliveries()
    assert logged["status"] == "suppressed"
    assert "email: address suppressed (bounce or complaint)" in logged["reasons"]
    [shown] = [o for o in j.record()["opt_outs"] if o["channel"] == "email"]
    assert (shown["opted_out"], shown["how"], shown["whose"]) == (True, "bounce", "patient")


def test_email_delivery_is_recorded_when_ses_reports_it(runtime: Any, journey: Any) -> None:
    j: Journey = journey(preferred_channels=["email"])
    j.book(local_moment(days=8, hour=10))
    [sent] = j.deliveries()
    assert (sent["channel"], sent["status"]) == ("email", "sent")
    report = {
        "notificationType": "Delivery",
        "mail": {"messageId": sent["message_id"]},
        "delivery": {"recipients": [j.patient["email"]]},
    }
    runtime.client("sns").publish(
        TopicArn=runtime.resources.ref("EmailFeedbackTopic"), Message=json.dumps(report)
    )
    runtime.settle()
    [delivered] = j.deliveries()
    assert delivered["status"] == "delivered" and "delivered_at" in delivered
