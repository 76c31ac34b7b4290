"""The aftercare journey on the virtual clock: a surgery recorded by staff starts the care plan;
check-ins are answered ok, urgently (staff alerted at once, the plan's extra check-in follows) or
never (one reminder, then a staff task); the re-check invitation succeeds when the patient books."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Api, ClinicCtx, payload
from tests.journeys.support import (
    SHANGHAI,
    iso,
    local_moment,
    move_to,
    unique_phone,
)

pytestmark = pytest.mark.journey

PLAN = {
    "name": "Cardiac procedure recovery",
    "trigger": {"event": "surgery", "departments": ["cardiology"]},
    "check_ins": [
        {"day": 1, "questionnaire": "post-operative"},
        {"day": 7, "questionnaire": "post-operative"},
    ],
    "education": [
        {
            "day": 2,
            "title": {"zh-CN": "术后伤口护理", "en": "Caring for your wound"},
            "url": "https://example.org/wound-care",
        }
    ],
    "on_urgent": {"extra_check_in_after_days": 2},
    "recheck": {"day": 10, "book_within_days": 5, "appointment_type": "follow_up"},
}
OK = {"pain": 2, "wound": "healing", "fever": False, "mobility": "normal"}
URGENT = {"pain": 8, "wound": "healing", "fever": False, "mobility": "normal"}


class Aftercare:
    def __init__(
        self,
        runtime: Any,
        api: Api,
        clinic: ClinicCtx,
        make_patient: Any,
        plan: dict[str, Any] = PLAN,
    ) -> None:
        self.runtime, self.api, self.clinic = runtime, api, clinic
        self.phone = unique_phone()
        self.patient = make_patient(clinic.tenant, phone=self.phone)
        self.token = runtime.token("patient", clinic.tenant.id, self.patient["id"])
        saved = api.call("PUT", "/care-plans/cardiac-recovery", clinic.tenant.admin, plan)
        assert saved.status_code == 200, saved.body

    def surgery(self) -> dict[str, Any]:
        from chalicelib import clock

        response = self.api.call(
            "POST",
            f"/patients/{self.patient['id']}/care-events",
            self.clinic.tenant.staff,
            {"type": "surgery", "department": "cardiology", "occurred_at": iso(clock.now())},
        )
        assert response.status_code == 201, response.body
        self.runtime.settle()
        event: dict[str, Any] = payload(response)
        return event

    def sms(self) -> list[Any]:
        sent: list[Any] = self.runtime.outbox.messages(to=f"+86{self.phone}", channel="sms")
        return sent

    def journey(self) -> dict[str, Any]:
        items = payload(
            self.api.call(
                "GET", f"/patients/{self.patient['id']}/care-journeys", self.clinic.tenant.staff
            )
        )["items"]
        [journey] = [j for j in items if j["kind"] == "aftercare"]
        return dict(journey)

    def step(self, step_id: str) -> dict[str, Any]:
        return next(s for s in self.journey()["steps"] if s["id"] == step_id)

    def answer(self, message: Any, answers: dict[str, Any]) -> dict[str, Any]:
        """Follow the link in a check-in message, save, submit."""
        match = re.search(r"/q/(qr-[0-9a-f]{16})", message.body)
        assert match, message.body
        path = f"/me/questionnaire-responses/{match.group(1)}"
        opened = self.api.call("GET", path, self.token)
        assert opened.status_code == 200, opened.body
        assert payload(opened)["questionnaire"] == "post-operative"
        saved = self.api.call("PATCH", path, self.token, {"answers": answers})
        assert saved.status_code == 200, saved.body
        submitted = self.api.call("POST", f"{path}/submit", self.token)
        assert submitted.status_code == 200, submitted.body
        self.runtime.settle()
        done: dict[str, Any] = payload(submitted)
        return done

    def answer_in_the_app(self, answers: dict[str, Any]) -> dict[str, Any]:
        """Answer the questionnaire from the app's questionnaire list, not a check-in's link."""
        started = self.api.call(
            "POST", "/questionnaires/post-operative/responses", self.token, {"answers": answers}
        )
        assert started.status_code == 201, started.body
        path = f"/me/questionnaire-responses/{payload(started)['id']}"
        submitted = self.api.call("POST", f"{path}/submit", self.token)
        assert submitted.status_code == 200, submitted.body
        self.runtime.settle()
        done: dict[str, Any] = payload(submitted)
        return done

    def check_in_messages(self) -> dict[str, list[Any]]:
        """Each check-in's messages (the check-in, then its reminder), by its response id."""
        found: dict[str, list[Any]] = {}
        for message in self.sms():
            match = re.search(r"/q/(qr-[0-9a-f]{16})", message.body)
            if match:
                found.setdefault(match.group(1), []).append(message)
        return found

    def tasks(self) -> list[dict[str, Any]]:
        items = payload(self.api.call("GET", "/tasks", self.clinic.tenant.staff))["items"]
        return [t for t in items if t["patient_id"] == self.patient["id"]]

    def book_recheck(self, days: int) -> None:
        start = local_moment(days=days, hour=10)
        booked = self.api.call(
            "POST",
            "/appointments",
            self.token,
            {
                "slot": {"schedule_id": self.clinic.schedule_id, "start": iso(start)},
                "type": "follow_up",
            },
        )
        assert booked.status_code == 201, booked.body
        self.runtime.settle()

    def execution_status(self) -> str:
        from chalicelib.settings import get_settings

        arn = get_settings().aftercare_journey_arn.replace(":stateMachine:", ":execution:")
        sfn = self.runtime.client("stepfunctions")
        described = sfn.describe_execution(
            executionArn=f"{arn}:{self.clinic.tenant.id}-{self.journey()['id']}"
        )
        return str(described["status"])


@pytest.fixture
def aftercare(runtime: Any, api: Api, make_clinic: Any, make_patient: Any) -> Any:
    def make(plan: dict[str, Any] = PLAN) -> Aftercare:
        return Aftercare(runtime, api, make_clinic(capacity=5), make_patient, plan)

    return make


def day(n: int, hour: int = 10, minute: int = 1) -> Any:
    return local_moment(days=n, hour=hour, minute=minute, zone=SHANGHAI)


def test_answered_ok_education_and_a_recheck_booked_in_time(runtime: Any, aftercare: Any) -> None:
    a: Aftercare = aftercare()
    start = day(0)
    event = a.surgery()
    assert len(event["journeys"]) == 1
    steps = a.journey()["steps"]
    assert [s["id"] for s in steps] == ["checkin-d1", "education-d2-1", "checkin-d7", "recheck-d10"]
    assert a.sms() == [], "nothing before day 1"

    move_to(runtime, start + timedelta(days=1))
    [check_in] = a.sms()
    assert "/q/qr-" in check_in.body and "Wei" in check_in.body
    response = a.answer(check_in, OK)
    assert response["risk"] == "ok"
    assert a.step("checkin-d1")["status"] == "answered"

    move_to(runtime, start + timedelta(days=2))
    assert "https://example.org/wound-care" in a.sms()[-1].body
    assert "伤口" not in a.sms()[-1].body, "no clinical detail in SMS"

    move_to(runtime, start + timedelta(days=7))
    a.answer(a.sms()[-1], OK)
    move_to(runtime, start + timedelta(days=10))
    invite = a.sms()[-1]
    assert "/book?ref=ac-" in invite.body
    ref = invite.body.rsplit("ref=", 1)[1].split()[0]
    resolved = payload(a.api.call("GET", f"/me/booking-invitations/{ref}", a.token))
    assert resolved == {"ref": ref, "department": "cardiology", "appointment_type": "follow_up"}
    a.book_recheck(days=12)
    assert a.step("recheck-d10")["status"] == "booked"
    move_to(runtime, start + timedelta(days=16))
    journey = a.journey()
    assert (journey["status"], journey["outcome"]) == ("completed", "rebooked")
    assert a.execution_status() == "SUCCEEDED"
    assert a.tasks() == [], "nothing for staff when all went well"


def test_urgent_answer_alerts_at_once_and_takes_the_plans_branch(
    runtime: Any, aftercare: Any
) -> None:
    a: Aftercare = aftercare()
    start = day(0)
    a.surgery()
    move_to(runtime, start + timedelta(days=1))
    response = a.answer(a.sms()[-1], URGENT)
    assert response["risk"] == "urgent"
    [task] = a.tasks()
    assert (task["kind"], task["priority"], task["department"]) == (
        "urgent_answer",
        "urgent",
        "cardiology",
    )
    alerts = [m for m in runtime.outbox.messages(channel="topic") if task["id"] in m.body]
    assert alerts and "URGENT" in (alerts[0].subject or "")
    assert a.patient["name"]["given"] not in alerts[0].body, "ids only on the topic"

    first = a.step("checkin-d1")
    assert (first["status"], first["risk"]) == ("answered", "urgent")
    extra = a.step("checkin-extra-1")
    assert extra["status"] == "planned"
    assert extra["at"] == iso(start + timedelta(days=3) - timedelta(minutes=1)), (
        "two days after the answer (day 1), at the plan's send time"
    )
    move_to(runtime, start + timedelta(days=3))
    assert len([m for m in a.sms() if "/q/qr-" in m.body]) == 2, "the extra check-in went out"
    a.answer(a.sms()[-1], OK)
    assert a.step("checkin-extra-1")["status"] == "answered"


def test_never_answered_reminds_once_then_hands_over_to_staff(runtime: Any, aftercare: Any) -> None:
    a: Aftercare = aftercare()
    start = day(0)
    a.surgery()
    move_to(runtime, start + timedelta(days=1))
    assert len(a.sms()) == 1
    move_to(runtime, start + timedelta(days=2, hours=1))
    reminders = [m for m in a.sms() if "/q/qr-" in m.body]
    assert len(reminders) == 2, "the check-in and one reminder"
    assert reminders[0].body != reminders[1].body
    assert a.tasks() == []
    move_to(runtime, start + timedelta(days=3, hours=1))
    [task] = a.tasks()
    assert task["kind"] == "checkin_unanswered" and task["questionnaire"] == "post-operative"
    assert a.step("checkin-d1")["status"] == "unanswered"
    move_to(runtime, start + timedelta(days=4))
    assert len([m for m in a.sms() if "/q/qr-" in m.body]) == 2, "no second reminder"
    # A late answer is still recorded, as late.
    a.answer(reminders[0], OK)
    assert a.step("checkin-d1")["status"] == "answered_late"


def test_a_fulfilled_visit_of_a_planned_type_starts_its_plan(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    """The appointment journey's `appointment.fulfilled` event (journey-events topic) starts
    the care plans whose trigger names the appointment type."""
    from chalicelib.services.registry import services
    from tests.journeys.support import Journey

    clinic = make_clinic(journeys=True)
    plan = {
        "name": "After a follow-up",
        "trigger": {"event": "appointment.fulfilled", "appointment_types": ["follow_up"]},
        "check_ins": [{"day": 1, "questionnaire": "satisfaction"}],
    }
    assert api.call("PUT", "/care-plans/after-visit", clinic.tenant.admin, plan).status_code == 200
    recheck_rule = {
        "name": "Re-check 30 days after a follow-up",
        "match": {"appointment_type": "follow_up"},
        "after_days": 30,
        "book": {"department": "cardiology"},
    }
    saved = api.call("PUT", "/recall-rules/recheck-30d", clinic.tenant.admin, recheck_rule)
    assert saved.status_code == 200, saved.body
    j = Journey(runtime, api, clinic, make_patient)
    start = local_moment(days=2, hour=10)
    appointment = j.book(start)
    move_to(runtime, start - timedelta(minutes=30))
    j.act(appointment, "check-in", clinic.tenant.staff)
    j.act(appointment, "fulfil", clinic.tenant.staff)
    move_to(runtime, start + timedelta(hours=2, minutes=1))
    journeys = services().aftercare.views.for_patient(
        _staff(runtime, clinic.tenant.id), j.patient["id"]
    )
    [journey] = [x for x in journeys if x["kind"] == "aftercare"]
    assert journey["event"]["appointment_id"] == appointment["id"]
    assert [s["questionnaire"] for s in journey["steps"]] == ["satisfaction"]
    [recall] = [x for x in journeys if x["kind"] == "recall"]
    visit_day = datetime.fromisoformat(appointment["start"]).date()
    assert (recall["rule_id"], recall["status"], recall["due_date"]) == (
        "recheck-30d",
        "scheduled",
        (visit_day + timedelta(days=30)).isoformat(),
    ), "the visit restarted the recall count"
    # The same event delivered twice starts nothing new.
    event = {
        "type": "appointment.fulfilled",
        "tenant_id": clinic.tenant.id,
        "appointment_id": appointment["id"],
        "patient_id": j.patient["id"],
        "department": "cardiology",
        "appointment_type": "follow_up",
        "start": appointment["start"],
    }
    assert services().aftercare.starting.on_event(event, appointment["id"]) == [journey["id"]]
    again = services().aftercare.views.for_patient(
        _staff(runtime, clinic.tenant.id), j.patient["id"]
    )
    assert len([x for x in again if x["kind"] == "aftercare"]) == 1


def _staff(runtime: Any, tenant_id: str) -> Any:
    from chalicelib.domain.access import Principal, Role

    return Principal(subject="staff-test", role=Role.STAFF, tenant_id=tenant_id, patient_id=None)


def test_the_recorded_journey_event_is_the_contract(runtime: Any) -> None:
    """The SNS delivery recorded in tests/events is what the handler parses; a fulfilled event
    for a tenant it does not know starts nothing, and a malformed one is dropped, not retried."""
    from pathlib import Path

    import app
    from chalicelib.schemas import validate
    from local.lambdas import LambdaContext

    recorded = json.loads(
        (Path(__file__).parent.parent / "events" / "sns-journey-event-fulfilled.json").read_text()
    )
    message = json.loads(recorded["Records"][0]["Sns"]["Message"])
    validate("journey-event", message)
    context = LambdaContext(function_name="journey_event", invoked_function_arn="")
    assert app.journey_event(recorded, context) == {"aftercare": [], "recalls": 0}
    recorded["Records"][0]["Sns"]["Message"] = json.dumps({**message, "type": "other"})
    assert app.journey_event(recorded, context) is None


def test_deleting_the_patient_ends_the_journey(runtime: Any, aftercare: Any) -> None:
    from chalicelib.store.care import AFTERCARE, CareRepository

    a: Aftercare = aftercare()
    start = day(0)
    [journey_id] = a.surgery()["journeys"]
    gone = a.api.call("DELETE", f"/patients/{a.patient['id']}", a.clinic.tenant.staff)
    assert gone.status_code == 204, gone.body
    move_to(runtime, start + timedelta(days=1))
    assert a.sms() == [], "a deleted patient hears nothing"
    record = CareRepository().get(a.clinic.tenant.id, a.patient["id"], AFTERCARE, journey_id)
    assert record is not None
    assert (record["status"], record["outcome"]) == ("completed", "patient_gone")


DAILY: dict[str, Any] = {
    "name": "Daily check-ins after surgery",
    "trigger": {"event": "surgery", "departments": ["cardiology"]},
    "check_ins": [{"day": d, "questionnaire": "post-operative"} for d in (1, 2, 3, 4)],
    "education": PLAN["education"],
}


def at(message: Any) -> datetime:
    return datetime.fromisoformat(message.sent_at)


def test_daily_check_ins_nobody_answers_each_go_out_on_their_own_date(
    runtime: Any, aftercare: Any
) -> None:
    """A check-in waiting for its answer holds back nothing: day 2's education and every day's
    check-in go out on their own day at the send time, each reminded 24 h later and handed
    over to staff 48 h later, and a late answer still counts for its own day."""
    a: Aftercare = aftercare(DAILY)
    send_time = {n: local_moment(days=n, hour=10) for n in range(8)}
    a.surgery()
    move_to(runtime, send_time[7])

    by_response = list(a.check_in_messages().values())
    assert [at(messages[0]) for messages in by_response] == [send_time[n] for n in (1, 2, 3, 4)]
    assert [at(messages[1]) for messages in by_response] == [send_time[n] for n in (2, 3, 4, 5)]
    assert all(len(messages) == 2 for messages in by_response), "one reminder each"
    [education] = [m for m in a.sms() if "wound-care" in m.body]
    assert at(education) == send_time[2]
    journey = a.journey()
    for n in (1, 2, 3, 4):
        step = a.step(f"checkin-d{n}")
        assert step["status"] == "unanswered"
        assert datetime.fromisoformat(step["escalated_at"]) == send_time[n + 2]
    handed_over = [t for t in a.tasks() if t["kind"] == "checkin_unanswered"]
    assert len(handed_over) == 4
    assert journey["status"] == "completed"

    a.answer(by_response[0][0], OK)  # day 1's link, on day 7
    assert a.step("checkin-d1")["status"] == "answered_late"
    assert [a.step(f"checkin-d{n}")["status"] for n in (2, 3, 4)] == ["unanswered"] * 3


def test_a_same_day_answer_through_the_general_route_counts_for_the_check_in(
    runtime: Any, aftercare: Any
) -> None:
    """The patient answers the check-in's questionnaire from the app's list instead of the
    link: within the check-in's window it answers that check-in (no reminder, no hand-over);
    an answer before the check-in's day counts for nothing."""
    plan = {**DAILY, "check_ins": DAILY["check_ins"][:2], "education": []}
    a: Aftercare = aftercare(plan)
    moments = {(n, hour): local_moment(days=n, hour=hour) for n in range(6) for hour in (9, 15)}
    a.surgery()
    a.answer_in_the_app(OK)  # day 0: before any check-in's window
    assert a.step("checkin-d1")["status"] == "planned"

    move_to(runtime, moments[1, 15])
    answered = a.answer_in_the_app(OK)  # the afternoon of day 1, after the 10:00 check-in
    step = a.step("checkin-d1")
    assert (step["status"], step["answered_by"]) == ("answered", answered["id"])

    move_to(runtime, moments[2, 9])
    a.answer_in_the_app(OK)  # day 2 at 09:00, before its check-in goes out
    assert a.step("checkin-d2")["status"] == "answered"
    move_to(runtime, moments[5, 9])
    messages = a.check_in_messages()
    assert [len(m) for m in messages.values()] == [1], "day 1's check-in only, no reminder"
    assert a.tasks() == [], "no hand-over"
    assert a.journey()["status"] == "completed"


def test_an_urgent_answer_through_the_general_route_takes_the_plans_branch(
    runtime: Any, aftercare: Any
) -> None:
    a: Aftercare = aftercare()
    start = day(0)
    a.surgery()
    move_to(runtime, start + timedelta(days=1, hours=2))
    a.answer_in_the_app(URGENT)
    assert [t["kind"] for t in a.tasks()] == ["urgent_answer"]
    assert a.step("checkin-d1")["branched"] == "checkin-extra-1"
    move_to(runtime, start + timedelta(days=3))
    assert len(a.check_in_messages()) == 2, "the extra check-in went out on day 3"


def test_a_step_whose_task_keeps_failing_is_put_before_staff_and_the_plan_goes_on(
    runtime: Any, aftercare: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The education task fails (not a fault a retry heals): staff get a task naming the step,
    the step is marked failed, and the next day's check-in still goes out on its date."""
    from chalicelib.services.aftercare.steps import AftercareSteps

    sending = AftercareSteps.send

    def send(self: AftercareSteps, ref: Any, step_id: str) -> Any:
        if step_id.startswith("education"):
            raise ValueError("the education link could not be built")
        return sending(self, ref, step_id)

    monkeypatch.setattr(AftercareSteps, "send", send)
    plan = {**DAILY, "check_ins": [{"day": 3, "questionnaire": "post-operative"}]}
    a: Aftercare = aftercare(plan)
    send_time = {n: local_moment(days=n, hour=10) for n in range(4)}
    a.surgery()
    move_to(runtime, send_time[3])
    assert a.step("education-d2-1")["status"] == "failed"
    [failed] = [t for t in a.tasks() if t["kind"] != "urgent_answer"]
    assert "education-d2-1" in json.dumps(failed), failed
    [check_in] = [m for m in a.sms() if "/q/qr-" in m.body]
    assert at(check_in) == send_time[3]
