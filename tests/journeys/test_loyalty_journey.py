"""Loyalty points earned by the journeys themselves, on the virtual clock: check-ins answered in
time, a care plan's re-check visit (pending from its booking, confirmed when attended, reversed
when cancelled), a cap, a redemption and an expiry; then the whole stream delivered again, and
nothing changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Api, payload
from tests.journeys.support import iso, local_moment, move_to
from tests.journeys.test_aftercare_journey import OK, PLAN, Aftercare, day

pytestmark = pytest.mark.journey

RULES = {
    "enabled": True,
    "points": {"check_in_on_time": 10, "follow_up_attended": 50, "referral_first_visit": 60},
    "caps": {"per_patient_per_year": 120},  # 2027's second re-check visit: 40 of its 50
    "expiry_days": 60,
}
RECHECK_ONLY = {**PLAN, "check_ins": [], "education": [], "on_urgent": None}
RECHECK_ONLY = {k: v for k, v in RECHECK_ONLY.items() if v is not None}
RECHECK_ONLY["recheck"] = {"day": 1, "book_within_days": 5, "appointment_type": "follow_up"}


def book(a: Aftercare, days: int) -> dict[str, Any]:
    start = local_moment(days=days, hour=10)
    booked = a.api.call(
        "POST",
        "/appointments",
        a.token,
        {"slot": {"schedule_id": a.clinic.schedule_id, "start": iso(start)}, "type": "follow_up"},
    )
    assert booked.status_code == 201, booked.body
    a.runtime.settle()
    appointment: dict[str, Any] = payload(booked)
    return appointment


def act(a: Aftercare, appointment: dict[str, Any], action: str, token: str) -> None:
    response = a.api.call("POST", f"/appointments/{appointment['id']}/{action}", token)
    assert response.status_code == 200, response.body
    a.runtime.settle()


def points(a: Aftercare) -> dict[str, Any]:
    seen: dict[str, Any] = payload(a.api.call("GET", "/me/points", a.token))
    return seen


def ledger(a: Aftercare) -> list[tuple[str, str, int, int]]:
    """(kind, event, what it did to the balance, pending points), oldest first."""
    history = payload(a.api.call("GET", "/me/points/history", a.token))["items"]
    return [
        (line["kind"], line.get("event", ""), line["points"], line.get("pending_points", 0))
        for line in reversed(history)
    ]


def test_a_year_of_one_patients_points_is_exact_and_a_replay_changes_nothing(
    own_runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    """From 23 November 2026 to the same day in 2027: two surgeries with their check-ins and
    re-check visits (one attended, one missed), a redemption, a referred patient's first visit,
    the year's cap, and every credit's expiry after 60 days."""
    from chalicelib.services.registry import services

    runtime = own_runtime
    clinic = make_clinic(capacity=5, referrals={"enabled": True})
    admin, staff = clinic.tenant.admin, clinic.tenant.staff
    assert api.call("PUT", "/loyalty/rules", admin, RULES).status_code == 200
    reward = {"name": {"en": "Check-up"}, "kind": "check_up_package", "points": 40}
    assert api.call("PUT", "/rewards/check-up", admin, reward).status_code == 200
    api.call("POST", "/rewards/check-up/restock", admin, {"quantity": 1})

    a = Aftercare(runtime, api, clinic, make_patient)
    start = day(0)
    a.surgery()
    move_to(runtime, start + timedelta(days=1))
    a.answer(a.sms()[-1], OK)
    assert points(a)["balance"] == 10
    move_to(runtime, start + timedelta(days=7))
    a.answer(a.sms()[-1], OK)
    assert points(a)["balance"] == 20

    move_to(runtime, start + timedelta(days=10))
    visit = book(a, days=2)
    assert a.step("recheck-d10")["status"] == "booked"
    assert (points(a)["balance"], points(a)["pending"]) == (20, 50), "pending until the visit"
    move_to(runtime, local_moment(days=2, hour=9, minute=50))
    act(a, visit, "check-in", staff)
    act(a, visit, "fulfil", staff)
    assert (points(a)["balance"], points(a)["pending"]) == (70, 0)

    redeemed = api.call("POST", "/me/redemptions", a.token, {"reward_id": "check-up"})
    assert redeemed.status_code == 201, redeemed.body
    assert points(a)["balance"] == 30, "the redemption took the check-ins' 20 and 20 of 50"
    move_to(runtime, start + timedelta(days=12 + 45))
    assert [e["points"] for e in points(a)["expiring_soon"]] == [30]
    move_to(runtime, start + timedelta(days=12 + 61))
    assert points(a)["balance"] == 0, "what was left of the visit's points expired"

    # A friend registers with the patient's code and attends a first visit: 60 points.
    code = payload(api.call("GET", "/me/referral-code", a.token))["code"]
    friend = make_patient(clinic.tenant, referral_code=code)
    friend_token = runtime.token("patient", clinic.tenant.id, friend["id"])
    first = api.call(
        "POST",
        "/appointments",
        friend_token,
        {
            "slot": {
                "schedule_id": clinic.schedule_id,
                "start": iso(local_moment(days=2, hour=10)),
            },
            "type": "first_visit",
        },
    )
    assert first.status_code == 201, first.body
    move_to(runtime, local_moment(days=2, hour=9, minute=50))
    act(a, payload(first), "check-in", staff)
    act(a, payload(first), "fulfil", staff)
    assert points(a)["balance"] == 60

    # A second surgery in 2027: check-ins in time; its re-check booked (the year's cap leaves
    # 40 of its 50) and missed: the pending points go back.
    second = day(0)
    a.surgery()
    move_to(runtime, second + timedelta(days=1))
    a.answer(a.sms()[-1], OK)
    move_to(runtime, second + timedelta(days=7))
    a.answer(a.sms()[-1], OK)
    assert points(a)["balance"] == 80
    move_to(runtime, second + timedelta(days=10))
    missed = book(a, days=2)
    assert (points(a)["balance"], points(a)["pending"]) == (80, 40)
    move_to(runtime, local_moment(days=2, hour=11))
    act(a, missed, "no-show", staff)
    assert (points(a)["balance"], points(a)["pending"]) == (80, 0)

    move_to(runtime, start + timedelta(days=365))
    assert points(a)["balance"] == 0, "every credit expired 60 days after it came"
    expected = [
        ("earn", "check_in_on_time", 10, 0),
        ("earn", "check_in_on_time", 10, 0),
        ("earn", "follow_up_attended", 0, 50),
        ("confirm", "follow_up_attended", 50, 0),
        ("redeem", "", -40, 0),
        ("expire", "follow_up_attended", -30, 0),
        ("earn", "referral_first_visit", 60, 0),
        ("earn", "check_in_on_time", 10, 0),
        ("earn", "check_in_on_time", 10, 0),
        ("earn", "follow_up_attended", 0, 40),
        ("reverse", "follow_up_attended", 0, 0),
        ("expire", "referral_first_visit", -60, 0),
        ("expire", "check_in_on_time", -10, 0),
        ("expire", "check_in_on_time", -10, 0),
    ]
    assert ledger(a) == expected
    history = payload(api.call("GET", "/me/points/history", a.token))["items"]
    assert sum(line["points"] for line in history) == 0 == points(a)["balance"]
    capped = [line for line in history if line.get("pending_points") == 40]
    assert len(capped) == 1
    friend_ids = [line["id"] for line in history if "referral" in line["id"]]
    assert len(friend_ids) == 2 and not any(friend["id"] in i for i in friend_ids), "hashed"

    # Every record of the stream delivered again (and each batch twice): nothing changes.
    runtime.streams.seed_duplicates(1.0, seed=3)
    try:
        runtime.streams.forget()
        runtime.settle()
    finally:
        runtime.streams.seed_duplicates(0.0, seed=0)
    assert ledger(a) == expected and points(a)["balance"] == 0
    staff_view = payload(api.call("GET", f"/patients/{a.patient['id']}/points", staff))
    assert staff_view["balance"] == 0 and len(staff_view["history"]) == len(expected)

    # The hospital's figures agree, and a rebuild agrees with them.
    summed: dict[str, float] = {}
    report = api.call("GET", "/analytics/loyalty?granularity=month&from=2026-11-01", admin)
    for row in payload(report)["rows"]:
        for name, value in row["values"].items():
            summed[name] = summed.get(name, 0) + value
    assert summed == {
        "points_earned": 150,
        "points_pending": 90,
        "points_reversed": 40,
        "points_redeemed": 40,
        "redemptions": 1,
        "points_expired": 110,
    }
    assert services().analytics.rebuild(clinic.tenant.id, check_only=True)["differing"] == 0


def test_a_cancelled_re_check_visit_gives_its_pending_points_back(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic = make_clinic(capacity=5)
    assert api.call("PUT", "/loyalty/rules", clinic.tenant.admin, RULES).status_code == 200
    b = Aftercare(runtime, api, clinic, make_patient, RECHECK_ONLY)
    later = day(0)
    b.surgery()
    move_to(runtime, later + timedelta(days=1))
    cancelled = book(b, days=3)
    assert (points(b)["balance"], points(b)["pending"]) == (0, 50)
    act(b, cancelled, "cancel", b.token)
    assert (points(b)["balance"], points(b)["pending"]) == (0, 0)
    assert ledger(b) == [
        ("earn", "follow_up_attended", 0, 50),
        ("reverse", "follow_up_attended", 0, 0),
    ]


def test_points_earned_are_announced_out_of_quiet_hours_once(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic = make_clinic(capacity=5)
    rules = {**RULES, "announce": True}
    assert api.call("PUT", "/loyalty/rules", clinic.tenant.admin, rules).status_code == 200
    a = Aftercare(runtime, api, clinic, make_patient)
    start = day(0)
    a.surgery()
    move_to(runtime, start + timedelta(days=1))
    [check_in] = a.sms()
    move_to(runtime, (start + timedelta(days=1)).replace(hour=22, minute=30))
    a.answer(check_in, OK)
    assert points(a)["balance"] == 10
    announced = [m for m in a.sms() if "10积分" in m.body or "10 points" in m.body]
    assert announced == [], "not in quiet hours"
    move_to(runtime, (start + timedelta(days=2)).replace(hour=8, minute=15))
    # The sweep's part for this hospital (the schedule visits every hospital of the shared
    # runtime, where other tests leave complaints that cannot escalate).
    from chalicelib.services.registry import services
    from chalicelib.tenant_scope import acting_for

    with acting_for(clinic.tenant.id):
        assert services().owed_messages.send_due(clinic.tenant.id) == (1, 0)
        assert services().owed_messages.send_due(clinic.tenant.id) == (0, 0), "once"
    runtime.settle()
    announced = [m for m in a.sms() if "10积分" in m.body or "10 points" in m.body]
    assert len(announced) == 1, [m.body for m in a.sms()]
