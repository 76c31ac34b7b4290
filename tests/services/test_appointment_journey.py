"""The appointment journey's step handler's service against in-memory fakes: a whole journey
walked step by step in milliseconds (what the state machine's loop would ask), and the reads
each step makes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast
from unittest.mock import patch

import pytest

from chalicelib.domain import appointment_journey as rules
from chalicelib.domain.deliveries import SendResult
from chalicelib.services.appointment_journey import AppointmentJourneyService

TENANT = {
    "id": "t1",
    "name": "Test Hospital",
    "time_zone": "Asia/Shanghai",
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    "departments": [{"id": "cardiology", "name": "心内科"}],
}
PATIENT = {"id": "p1", "time_zone": "Asia/Shanghai", "language": "en", "name": {"given": "Wei"}}
BOOKED_AT = datetime(2027, 2, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture(autouse=True)
def links(monkeypatch: pytest.MonkeyPatch) -> None:
    """A message's fields name the app's link base: the only setting a step reads."""
    settings = SimpleNamespace(app_link_base="https://app.example")
    monkeypatch.setattr("chalicelib.services.deliveries.get_settings", lambda: settings)


@dataclass
class Reads:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


@dataclass
class FakeRecords:
    reads: Reads
    appointment: dict[str, Any]

    # The tenants', patients' and appointments' repositories in one, counting reads.
    def tenant(self, tenant_id: str) -> dict[str, Any] | None:
        self.reads.add("tenant")
        return dict(TENANT)

    def patient(self, tenant_id: str, patient_id: str) -> dict[str, Any] | None:
        self.reads.add("patient")
        return dict(PATIENT)

    def appointment_get(self, tenant_id: str, appointment_id: str) -> dict[str, Any] | None:
        self.reads.add("appointment")
        return dict(self.appointment)

    def save(
        self, tenant_id: str, before: dict[str, Any], after: dict[str, Any], day: str
    ) -> dict[str, Any]:
        self.appointment = dict(after)
        return dict(after)

    def for_patient(self, tenant_id: str, patient_id: str, after: str) -> list[dict[str, Any]]:
        self.reads.add("appointments of the patient")
        return []


@dataclass
class FakeDeliveries:
    sent: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def deliver(self, tenant: Any, patient: Any, message: Any, now: datetime) -> SendResult:
        self.sent.append(message.step)
        return {"status": "sent", "channel": "sms"}

    def skip(self, tenant: Any, patient: Any, message: Any, now: datetime, why: str) -> SendResult:
        self.skipped.append((message.step, why))
        return {"status": "skipped", "why": why}


@dataclass
class FakeQueue:
    opened: list[str] = field(default_factory=list)

    def open(self, tenant_id: str, appointment: Any, kind: str, tenant: Any = None) -> Any:
        self.opened.append(kind)
        return {"id": f"task-{kind}"}


@dataclass
class FakeJourneyRecords:
    """The compact journey record: the plan (with what it left out and moved) once, then each
    step's latest outcome."""

    planned: dict[str, Any] | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def started(
        self, tenant_id: str, appointment_id: str, version: int, planned: Any, at: str
    ) -> None:
        self.planned = self.planned or dict(planned)

    def noted(self, tenant_id: str, appointment_id: str, version: int, outcomes: Any) -> None:
        self.steps.update({step: dict(outcome) for step, outcome in outcomes.items()})


@dataclass
class World:
    records: FakeRecords
    journey_records: FakeJourneyRecords = field(default_factory=FakeJourneyRecords)
    deliveries: FakeDeliveries = field(default_factory=FakeDeliveries)
    queue: FakeQueue = field(default_factory=FakeQueue)
    events: list[dict[str, Any]] = field(default_factory=list)

    def service(self) -> AppointmentJourneyService:
        tenants = type("Tenants", (), {"get": lambda _, t: self.records.tenant(t)})()
        patients = type("Patients", (), {"get": lambda _, t, p: self.records.patient(t, p)})()
        appointments = type(
            "Appointments",
            (),
            {
                "get": lambda _, t, a: self.records.appointment_get(t, a),
                "save": lambda _, *args: self.records.save(*args),
                "for_patient": lambda _, t, p, after: self.records.for_patient(t, p, after),
            },
        )()
        return AppointmentJourneyService(
            cast(Any, tenants),
            cast(Any, patients),
            cast(Any, appointments),
            cast(Any, self.deliveries),
            cast(Any, self.queue),
            cast(Any, self.journey_records),
            self.events.append,
        )


def world(**appointment: Any) -> World:
    booked = {
        "id": "a1",
        "patient_id": "p1",
        "journey_version": 1,
        "status": "booked",
        "patient_response": "pending",
        "type": "follow_up",
        "department": "cardiology",
        "start": "2027-03-10T02:00:00Z",
        "location": "Building 2",
        **appointment,
    }
    return World(FakeRecords(Reads(), booked))


def walk(w: World, until: str = "done") -> list[str]:
    """The state machine's loop: take the step, wait until the next one's moment, again."""
    service = w.service()
    ref: dict[str, Any] = rules.start_input("t1", "a1", 1, BOOKED_AT)
    taken = []
    moment = BOOKED_AT
    while True:
        with patch("chalicelib.clock.now", return_value=moment):
            state = service.take(ref)
        taken.append(ref["journey"]["next"]["step"])
        nxt = state["next"]
        if nxt["step"] in ("done", until):
            return taken
        ref = {**ref, "journey": state}
        moment = max(moment, datetime.fromisoformat(nxt["at"]))


def test_a_whole_journey_in_milliseconds() -> None:
    w = world()
    assert walk(w) == [
        "start",  # the confirmation is due at once: sent by the same step
        "reminder_7d",
        "reminder_1d",
        "answer_deadline",
        "reminder_2h",
        "visit_check",
        "noshow_followup",
        "rebook_check",
        "noshow_second",
        "final_rebook_check",
        "noshow_task",
    ]
    assert w.deliveries.sent == [
        "confirmation",
        "reminder_7d",
        "reminder_1d",
        "reminder_2h",
        "noshow_followup",
        "noshow_second",
    ]
    assert w.queue.opened == ["no_answer", "noshow_unrebooked"]
    assert w.records.appointment["status"] == "noshow" and w.events == []
    # The journey's record: its plan, and what each step did (codes and times only).
    planned = w.journey_records.planned
    assert planned is not None and planned["plan"]["reminders"]
    assert planned["left_out"] == [] and planned["moved"] == {}
    steps = w.journey_records.steps
    assert steps["confirmation"]["status"] == "sent" and steps["confirmation"]["channel"] == "sms"
    assert steps["answer_deadline"]["status"] == "escalated"
    assert steps["visit_check"]["status"] == "noshow"
    assert steps["final_rebook_check"]["status"] == "not_rebooked"
    assert steps["noshow_task"] == {
        "status": "task_opened",
        "task_id": "task-noshow_unrebooked",
        "at": steps["noshow_task"]["at"],
    }


def test_an_answered_and_attended_journey_publishes_the_visit() -> None:
    w = world(patient_response="confirmed")
    assert "answer_deadline" not in walk(w, until="visit_check")
    assert w.journey_records.steps["answer_deadline"]["status"] == "passed_over"
    w.records.appointment["status"] = "fulfilled"
    service = w.service()
    plan = rules.plan(w.records.appointment, TENANT, "Asia/Shanghai", BOOKED_AT)
    ref = {
        "tenant_id": "t1",
        "appointment_id": "a1",
        "journey_version": 1,
        "journey": {"plan": plan, "next": rules.at("visit_check", plan["visit_check_at"])},
    }
    with patch("chalicelib.clock.now", return_value=datetime(2027, 3, 10, 4, 1, tzinfo=UTC)):
        state = service.take(ref)
    assert state["next"]["step"] == "done"
    assert [e["type"] for e in w.events] == ["appointment.fulfilled"]


def test_each_step_reads_the_appointment_and_a_send_the_patient_never_more() -> None:
    w = world(patient_response="confirmed")
    walk(w, until="visit_check")
    reads = w.records.reads.counts
    # start+confirmation, three reminders: five steps, each reading the appointment once; the
    # sends read the patient; the tenant's settings come from the brief cache when warm (here
    # the steps are days apart, so each reads them).
    assert reads["appointment"] == 4 and reads["patient"] == 4
    assert reads["tenant"] <= 4


def test_a_superseded_journey_ends_at_its_next_step() -> None:
    w = world()
    w.records.appointment["journey_version"] = 2  # rescheduled meanwhile
    assert walk(w) == ["start"]
    assert w.deliveries.sent == []
