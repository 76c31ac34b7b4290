"""Cancel wins: a send holds its claim (and the appointment's send lock) from the claim until
its outcome is written; a cancel or reschedule that arrives meanwhile waits for it. Once the
cancel has returned, nothing of the old version is published."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest

from tests.conftest import error_code
from tests.journeys.support import Journey, iso, local_moment, move_to

pytestmark = pytest.mark.journey


class Hold:
    """Texts to one number stop between their claim and their publish until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def wait_until_held(self) -> None:
        assert self.entered.wait(timeout=20), "no text was claimed and held"

    def let_go(self) -> None:
        self.release.set()


@contextmanager
def clock_moving(runtime: Any, moment: Any) -> Iterator[None]:
    """The clock moves in the background: a move returns only when everything is quiet, and a
    held text is not quiet."""
    mover = threading.Thread(target=runtime.clock.set, args=(moment,), daemon=True)
    mover.start()
    try:
        yield
    finally:
        mover.join(timeout=60)
        assert not mover.is_alive(), "the clock's move never became quiet"


@contextmanager
def held_sms(phone: str) -> Iterator[Hold]:
    from chalicelib.adapters.channels import Channels

    hold = Hold()
    original = Channels.send_sms

    def send_sms(self: Channels, to: str, *args: Any, **kwargs: Any) -> str:
        if to == phone:
            hold.entered.set()
            hold.release.wait(timeout=30)
        return original(self, to, *args, **kwargs)

    try:
        with patch.object(Channels, "send_sms", send_sms):
            yield hold
    finally:
        hold.let_go()


def test_a_cancel_waits_for_a_reminder_being_sent_then_nothing_more(
    runtime: Any, journey: Any
) -> None:
    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    assert len(j.sms()) == 1
    # The 7-day reminder is claimed, then held.
    with held_sms(f"+86{j.phone}") as hold, clock_moving(runtime, start - timedelta(days=7)):
        hold.wait_until_held()
        threading.Timer(0.5, hold.let_go).start()
        began = time.monotonic()
        cancelled = j.api.call("POST", f"/appointments/{appointment['id']}/cancel", j.token)
        waited = time.monotonic() - began
    assert cancelled.status_code == 200, cancelled.body
    assert waited >= 0.3, "the cancel waited for the message that was leaving"
    runtime.settle()
    sent = j.sms()
    assert len(sent) == 2, "the reminder left before the cancel committed"
    reminder = next(d for d in j.deliveries() if d["step"] == "reminder_7d")
    assert reminder["status"] == "sent"
    move_to(runtime, start + timedelta(days=4))
    assert len(j.sms()) == 2, "nothing after the cancel returned"


def test_a_cancel_that_cannot_wait_longer_answers_503_and_retry_after(
    runtime: Any, journey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chalicelib.services.appointments.SEND_WAIT_SECONDS", 0.3)
    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    with held_sms(f"+86{j.phone}") as hold, clock_moving(runtime, start - timedelta(days=7)):
        hold.wait_until_held()
        refused = j.api.call("POST", f"/appointments/{appointment['id']}/cancel", j.token)
        assert refused.status_code == 503
        assert error_code(refused) == "send_in_progress"
        assert refused.headers["Retry-After"] == "2"
        hold.let_go()
        runtime.settle()
    assert j.act(appointment, "cancel")["status"] == "cancelled"
    assert len(j.sms()) == 2, [(d["step"], d["status"], d.get("why")) for d in j.deliveries()]
    move_to(runtime, start + timedelta(days=4))
    assert len(j.sms()) == 2


def test_after_a_reschedule_the_old_version_sends_nothing(runtime: Any, journey: Any) -> None:

    j: Journey = journey()
    old_start = local_moment(days=8, hour=10)
    appointment = j.book(old_start)
    new_start = old_start + timedelta(days=3)
    # The old version's reminder is held.
    with held_sms(f"+86{j.phone}") as hold, clock_moving(runtime, old_start - timedelta(days=7)):
        hold.wait_until_held()
        threading.Timer(0.5, hold.let_go).start()
        moved = j.api.call(
            "POST",
            f"/appointments/{appointment['id']}/reschedule",
            j.token,
            {"slot": {"schedule_id": j.clinic.schedule_id, "start": iso(new_start)}},
        )
    assert moved.status_code == 200, moved.body
    runtime.settle()
    steps = sorted(d["key"] for d in j.deliveries() if d["status"] == "sent")
    assert steps == sorted(
        [
            f"{appointment['id']}#v1#confirmation",
            f"{appointment['id']}#v1#reminder_7d",
            f"{appointment['id']}#v2#confirmation",
        ]
    )


def late_step(ref: dict[str, Any], start: datetime, step: str) -> dict[str, Any]:
    """The appointment journey's step task's input for `step`, with a plan of every reminder."""
    reminders = [
        {"step": name, "at": iso(start - timedelta(hours=hours))}
        for name, hours in (("reminder_7d", 168), ("reminder_1d", 24), ("reminder_2h", 2))
    ]
    plan = {
        "confirmation_at": iso(start - timedelta(days=8)),
        "reminders": reminders,
        "await_answer": True,
        "answer_deadline": iso(start - timedelta(hours=24)),
        "visit_check_at": iso(start + timedelta(hours=2)),
        "noshow_retry_seconds": 3 * 24 * 3600,
    }
    return {**ref, "journey": {"plan": plan, "next": {"step": step, "at": iso(start)}}}


def test_a_late_step_of_a_cancelled_or_begun_visit_is_logged_as_skipped(
    runtime: Any, journey: Any
) -> None:
    """However late a send task runs (an outage held the journey past the visit), it sends
    nothing that no longer makes sense, and the patient's log says why."""
    from chalicelib.services.registry import services

    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    booked = j.book(start)
    # The journey is held up (here: stopped), so its reminders' tasks run only after the start.
    runtime.client("stepfunctions").stop_execution(executionArn=j.execution(booked)["executionArn"])
    move_to(runtime, start)
    ref = {"tenant_id": j.clinic.tenant.id, "appointment_id": booked["id"], "journey_version": 1}
    steps = ("reminder_7d", "reminder_1d", "reminder_2h")
    for step, following in zip(
        steps, ("reminder_1d", "answer_deadline", "visit_check"), strict=True
    ):
        taken = services().appointment_journey.take(late_step(ref, start, step))
        assert taken["next"]["step"] == following
    logged = {d["step"]: (d["status"], d.get("why")) for d in j.deliveries()}
    for step in ("reminder_7d", "reminder_1d", "reminder_2h"):
        assert logged[step] == ("skipped", "the visit has begun"), step
    assert len(j.sms()) == 1, "only the confirmation"

    later = j.book(start + timedelta(days=7))
    j.act(later, "cancel")
    ref = {"tenant_id": j.clinic.tenant.id, "appointment_id": later["id"], "journey_version": 1}
    # A task that ran after the cancel (its execution was stopped, but it had begun).
    services().appointment_journey.take(late_step(ref, start + timedelta(days=7), "reminder_1d"))
    logged = {
        d["step"]: (d["status"], d.get("why"))
        for d in j.deliveries()
        if d.get("appointment_id") == later["id"]
    }
    assert logged["reminder_1d"] == ("skipped", "the appointment is cancelled")
    assert len(j.sms()) == 2, "the second confirmation, nothing more"
