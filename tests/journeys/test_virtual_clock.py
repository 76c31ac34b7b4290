"""The virtual clock behaves like time: a move of any length fires every timer on the way (Wait
states, schedules, campaign pacing) in time order with "now" at its moment, so one long move and
many short ones give the same outbox with the same timestamps."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import START, Api, payload, tenant_body
from tests.journeys.support import SHANGHAI, iso, open_cardiology

pytestmark = pytest.mark.journey

TENANT = "t-c10c0ffee1"
REPLY_NUMBER = "+15550000101"
PLAN = {
    "name": "Recovery",
    "trigger": {"event": "surgery", "departments": ["cardiology"]},
    "check_ins": [{"day": 1, "questionnaire": "post-operative"}],
    "education": [{"day": 2, "title": {"zh-CN": "伤口护理"}, "url": "https://example.org/wound"}],
    "recheck": {"day": 5, "book_within_days": 3, "appointment_type": "follow_up"},
}
RULE = {
    "name": "Review",
    "match": {"condition": "diabetes"},
    "after_days": 3,
    "book": {"department": "cardiology", "appointment_type": "follow_up"},
    "sequence": {"reminder_after_days": 2, "last_call_after_days": 4, "staff_task_after_days": 6},
}
CAMPAIGN = {
    "segment": "chronic",
    "name": "Flu shots",
    "message": {"text": {"zh-CN": "{{clinic}}：{{first_name}}您好，流感疫苗已到 {{link}}"}},
}


@pytest.fixture
def schedules(own_runtime: Any) -> Iterator[Any]:
    """The app's schedules on the clock, as EventBridge runs them (`only` picks some)."""
    import app
    from local.schedules import ScheduleRunner

    runners: list[Any] = []

    def start(only: tuple[str, ...] | None = None) -> Any:
        runner = ScheduleRunner(app, own_runtime.clock, only=only).start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        runner.stop()


def local(days: int, hour: int, minute: int = 0) -> datetime:
    day = (START.astimezone(SHANGHAI) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def call(api: Api, method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
    response = api.call(method, path, token, body)
    assert response.status_code in (200, 201), response.body
    found: dict[str, Any] = payload(response)
    return found


def set_up_the_hospital(runtime: Any, api: Api) -> None:
    """At START (09:00 in Shanghai): a booking 13 days ahead, a surgery with its plan, a
    diabetic patient under a recall rule, and at 22:00 a campaign to the chronic patients."""
    operator = runtime.token("operator")
    body = tenant_body(TENANT, journey={"enabled": True}, campaigns={"rate_per_minute": 1})
    body["sender"]["sms_reply_number"] = REPLY_NUMBER
    call(api, "POST", "/tenants", operator, body)
    admin, staff = runtime.token("admin", TENANT), runtime.token("staff", TENANT)
    open_cardiology(api, admin)
    call(api, "PUT", "/care-plans/recovery", admin, PLAN)
    call(api, "PUT", "/recall-rules/review", admin, RULE)

    def patient(n: int, **more: Any) -> dict[str, Any]:
        return call(
            api,
            "POST",
            "/patients",
            staff,
            {
                "name": {"given": f"P{n}", "family": "Zhang"},
                "birth_date": "1961-04-12",
                "phone": f"1390000010{n}",
                "email": f"p{n}@patients.example.com",
                "preferred_channels": ["sms"],
                **more,
            },
        )

    booker = patient(1)
    token = runtime.token("patient", TENANT, booker["id"])
    slot = {"schedule_id": "cardio", "start": iso(local(13, 9))}
    call(api, "POST", "/appointments", token, {"slot": slot, "type": "follow_up"})
    operated = patient(2)
    event = {"type": "surgery", "department": "cardiology", "occurred_at": iso(START)}
    call(api, "POST", f"/patients/{operated['id']}/care-events", staff, event)
    for n in (3, 4, 5):
        patient(n, medical={"conditions": ["diabetes"]})
    runtime.settle()
    runtime.clock.set(local(0, 22))
    headers = {"Idempotency-Key": "clock-campaign"}
    response = api.call("POST", "/campaigns", staff, CAMPAIGN, headers=headers)
    assert response.status_code == 201, response.body
    runtime.settle()


def test_one_long_move_and_many_short_moves_give_the_same_outbox(
    own_runtime: Any, api: Api, schedules: Any
) -> None:
    plays = {}
    for label, steps in (("one move", [timedelta(days=16)]), ("16 days", [timedelta(days=1)] * 16)):
        own_runtime.reset(START)
        runner = schedules(only=("recall_sweep",))
        set_up_the_hospital(own_runtime, api)
        for step in steps:
            own_runtime.clock.advance(step)
        runner.stop()
        plays[label] = own_runtime.outbox.transcript()

    # A campaign reaches its patients in the order of their (random) ids, one a minute here:
    # which patient gets which minute may differ between plays, the minutes and texts may not.
    def unordered_campaign(sent: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
        campaign = [line for line in sent if "流感" in line[3]]
        rest = [line for line in sent if "流感" not in line[3]]
        return rest, [line[0] for line in campaign], sorted(line[1:] for line in campaign)

    assert unordered_campaign(plays["one move"]) == unordered_campaign(plays["16 days"])
    sent = plays["one move"]
    assert [at for at, *_ in sent] == sorted(at for at, *_ in sent)
    to = {f"+861390000010{n}": n for n in range(1, 6)}
    by_patient: dict[int, list[str]] = {}
    for at, channel, address, _ in sent:
        if channel == "sms":
            by_patient.setdefault(to[address], []).append(at)
    # The booking: confirmation, 7 days, 1 day and 2 hours before (07:00 is quiet: 08:00),
    # then the no-show follow-up and, not rebooked, its second attempt three days later.
    assert by_patient[1] == [
        iso(START),
        iso(local(6, 9)),
        iso(local(12, 9)),
        iso(local(13, 8)),
        iso(local(13, 11)),
        iso(local(16, 11)),
    ], by_patient[1]
    # The day-1 check-in (nobody answers), its reminder on day 2 beside day 2's education,
    # and the day-5 re-check invitation: each on its own date, none held back by the wait.
    assert by_patient[2] == [
        iso(local(1, 10)),
        iso(local(2, 10)),
        iso(local(2, 10)),
        iso(local(5, 10)),
    ], by_patient[2]
    campaign = [at for n in (3, 4, 5) for at in by_patient[n] if at < iso(local(1, 8))]
    assert campaign == [], "the night campaign waits for the morning"
    morning = sorted(at for at, _, _, text in sent if "流感" in text)
    assert morning == [iso(local(1, 8, minute)) for minute in (0, 1, 2)], "then 1 a minute"


def test_a_long_jump_stamps_each_reminder_at_its_moment(own_runtime: Any, api: Api) -> None:
    operator = own_runtime.token("operator")
    call(api, "POST", "/tenants", operator, tenant_body(TENANT, journey={"enabled": True}))
    admin = own_runtime.token("admin", TENANT)
    open_cardiology(api, admin, until="20:00", capacity=1)
    staff = own_runtime.token("staff", TENANT)
    body = {"name": {"given": "Wei", "family": "Zhang"}, "birth_date": "1961-04-12"}
    patient = call(api, "POST", "/patients", staff, body | {"phone": "13900000201"})
    token = own_runtime.token("patient", TENANT, patient["id"])
    slot = {"schedule_id": "cardio", "start": iso(local(13, 18, 30))}
    call(api, "POST", "/appointments", token, {"slot": slot, "type": "follow_up"})

    moved = api.call("POST", "/local/clock", None, {"advance": "30d"})  # as `clock advance 30d`
    assert payload(moved)["now"] == iso(START + timedelta(days=30))
    sent = [m.sent_at for m in own_runtime.outbox.messages(to="+8613900000201", channel="sms")]
    assert sent == [
        iso(START),  # the confirmation
        iso(local(6, 18, 30)),
        iso(local(12, 18, 30)),
        iso(local(13, 16, 30)),
        iso(local(13, 20, 30)),  # the no-show follow-up
        iso(local(16, 20, 30)),  # and its second attempt
    ]


def test_schedules_fire_at_their_moments_in_order(own_runtime: Any, schedules: Any) -> None:
    runner = schedules()
    own_runtime.clock.advance(timedelta(days=2))
    runs = runner.runs
    repair = [at for name, at in runs if name == "repair_sweep"]
    recall = [at for name, at in runs if name == "recall_sweep"]
    assert len(repair) == 2 * 24 * 6
    assert all(b - a == timedelta(minutes=10) for a, b in itertools.pairwise(repair))
    assert len(recall) == 2
    assert [at for _, at in runs] == sorted(at for _, at in runs)
