"""A booking, reschedule or cancel that committed always gets its execution started or stopped:
when Step Functions fails right after the change, the API still answers with the change, and
the repair sweep settles the journeys from the marker the change wrote."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters.executions import Executions
from chalicelib.domain.errors import DependencyUnavailable
from tests.conftest import Api, free_slots, payload, slot_ref
from tests.journeys.support import Journey, assert_stopped, local_moment, move_to, repair_sweep

pytestmark = pytest.mark.journey


def failing_once(monkeypatch: pytest.MonkeyPatch, method: str) -> list[Exception]:
    """Step Functions throttles the next `method` call of the API (after the SDK's retries)."""
    original = getattr(Executions, method)
    failures: list[Exception] = [DependencyUnavailable("Step Functions throttled (injected)")]

    def call(self: Executions, *args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Executions, method, call)
    return failures


def test_a_booking_whose_journey_did_not_start_is_repaired(
    runtime: Any, api: Api, journey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    j: Journey = journey()
    failures = failing_once(monkeypatch, "start")
    appointment = j.book(local_moment(days=8, hour=10))
    assert failures == [], "the start failed"
    assert j.appointment(appointment)["status"] == "booked", "the booking stands (201)"
    assert j.sms() == [], "no journey yet"
    assert repair_sweep(runtime)["repaired"] == 0, "a fresh change is left to its request"
    move_to(runtime, runtime.clock.now() + timedelta(minutes=3))
    assert repair_sweep(runtime)["repaired"] >= 1
    assert j.execution(appointment)["status"] == "RUNNING"
    [confirmation] = j.sms()
    assert "已预约" in confirmation.body
    repair_sweep(runtime)
    assert len(j.sms()) == 1, "settled once: a second sweep starts nothing"


def test_a_reschedule_whose_new_journey_did_not_start_is_repaired(
    runtime: Any, api: Api, journey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    j: Journey = journey()
    appointment = j.book(local_moment(days=8, hour=10))
    failing_once(monkeypatch, "start")
    later = free_slots(api, j.token, days_ahead=9)[0]
    response = api.call(
        "POST", f"/appointments/{appointment['id']}/reschedule", j.token, {"slot": slot_ref(later)}
    )
    assert response.status_code == 200, response.body
    moved = payload(response)
    runtime.settle()
    assert_stopped(j.execution(appointment))
    move_to(runtime, runtime.clock.now() + timedelta(minutes=3))
    repair_sweep(runtime)
    assert j.execution(moved)["status"] == "RUNNING", "version 2 has its journey"


def test_a_cancel_whose_stop_failed_is_repaired(
    runtime: Any, api: Api, journey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    failing_once(monkeypatch, "stop")
    j.act(appointment, "cancel")
    assert j.execution(appointment)["status"] == "RUNNING", "the stop failed"
    move_to(runtime, runtime.clock.now() + timedelta(minutes=3))
    repair_sweep(runtime)
    assert_stopped(j.execution(appointment))
    move_to(runtime, start + timedelta(hours=3))
    assert len(j.sms()) == 1, "only the confirmation"
