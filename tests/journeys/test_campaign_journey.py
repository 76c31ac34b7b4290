"""Campaigns on the virtual clock: the driver starts outreach at the tenant's rate, minute by
minute; progress is readable while it runs; everyone is messaged once; quiet hours wait."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Api, TenantCtx, payload
from tests.journeys.support import SHANGHAI, unique_phone

pytestmark = pytest.mark.journey
TEXT = {"zh-CN": "{{clinic}}：{{first_name}}您好，流感疫苗已到，预约请点 {{link}}"}


def move_to_local(runtime: Any, days: int, hour: int) -> datetime:
    from chalicelib import clock

    day = (clock.now().astimezone(SHANGHAI) + timedelta(days=days)).date()
    moment = datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI)
    runtime.clock.set(moment)
    runtime.settle()
    return moment


def advance(runtime: Any, delta: timedelta) -> None:
    runtime.clock.advance(delta)
    runtime.settle()


def start_campaign(api: Api, tenant: TenantCtx, segment: str) -> dict[str, Any]:
    response = api.call(
        "POST",
        "/campaigns",
        tenant.staff,
        {"segment": segment, "name": "Flu shots", "message": {"text": TEXT}},
        headers={"Idempotency-Key": f"campaign-{random.getrandbits(40)}"},
    )
    assert response.status_code == 201, response.body
    created: dict[str, Any] = payload(response)
    return created


def progress(api: Api, tenant: TenantCtx, campaign: dict[str, Any]) -> dict[str, Any]:
    response = api.call("GET", f"/campaigns/{campaign['id']}", tenant.staff)
    assert response.status_code == 200, response.body
    found: dict[str, Any] = payload(response)
    return found


def campaign_sms(runtime: Any, phone: str) -> list[Any]:
    return [m for m in runtime.outbox.messages(to=f"+86{phone}", channel="sms") if "流感" in m.body]


def test_a_campaign_runs_at_the_tenants_rate(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    tenant: TenantCtx = make_tenant(campaigns={"rate_per_minute": 2})
    phones = [unique_phone() for _ in range(5)]
    for phone in phones[:4]:
        make_patient(tenant, phone=phone, medical={"conditions": ["diabetes"]})
    opted_out = make_patient(
        tenant,
        phone=phones[4],
        medical={"conditions": ["asthma"]},
        consent={"email": {"status": "withdrawn", "method": "app"}},
    )
    make_patient(tenant, phone=unique_phone(), medical={"conditions": ["myopia"]})
    response = api.call(
        "POST", "/local/sms-reply", None, {"from": f"+86{phones[4]}", "text": "STOP"}
    )
    assert response.status_code == 202, response.body
    move_to_local(runtime, days=1, hour=10)

    campaign = start_campaign(api, tenant, "chronic")
    assert campaign["progress"]["targeted"] == 5 and campaign["status"] == "running"
    runtime.settle()
    first = progress(api, tenant, campaign)
    assert first["progress"]["started"] == 2 and first["status"] == "running"
    assert first["progress"]["sent"] + first["progress"]["suppressed"] == 2
    advance(runtime, timedelta(seconds=30))
    assert progress(api, tenant, campaign)["progress"]["started"] == 2, "the minute is used up"
    advance(runtime, timedelta(seconds=30))
    assert progress(api, tenant, campaign)["progress"]["started"] == 4
    advance(runtime, timedelta(minutes=1))
    done = progress(api, tenant, campaign)
    assert done["status"] == "done"
    assert done["progress"] == {
        "targeted": 5,
        "started": 5,
        "sent": 4,
        "suppressed": 1,
        "failed": 0,
        "held_out": 0,
    }
    advance(runtime, timedelta(minutes=5))
    assert [len(campaign_sms(runtime, phone)) for phone in phones] == [1, 1, 1, 1, 0]
    deliveries = payload(api.call("GET", f"/patients/{opted_out['id']}/deliveries", tenant.staff))[
        "items"
    ]
    [suppressed] = [d for d in deliveries if d.get("campaign_id") == campaign["id"]]
    assert suppressed["status"] == "suppressed"
    assert any("opted out" in reason for reason in suppressed["reasons"])
    listed = payload(api.call("GET", "/campaigns", tenant.staff))["items"]
    assert [c["id"] for c in listed] == [campaign["id"]]


def test_quiet_hours_hold_a_campaign_message_until_morning(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    tenant: TenantCtx = make_tenant()
    phone = unique_phone()
    child = make_patient(
        tenant,
        phone=unique_phone(),
        birth_date="2019-05-01",
        guardian={"name": "Li Na", "relationship": "parent", "phone": phone},
    )
    move_to_local(runtime, days=1, hour=22)
    campaign = start_campaign(api, tenant, "guardians-of-minors")
    runtime.settle()
    waiting = progress(api, tenant, campaign)
    assert waiting["progress"]["started"] == 0, "the driver waits for the morning to start"
    assert waiting["status"] == "running"
    assert campaign_sms(runtime, phone) == []
    move_to_local(runtime, days=1, hour=9)
    [sms] = campaign_sms(runtime, phone)
    assert "Li Na" in sms.body, "the guardian is addressed"
    assert progress(api, tenant, campaign)["status"] == "done"
    assert child["id"] not in sms.body


def test_campaign_requests_are_checked(api: Api, make_tenant: Any) -> None:
    tenant: TenantCtx = make_tenant()
    unknown = api.call(
        "POST", "/campaigns", tenant.staff, {"segment": "nobody", "message": {"text": TEXT}}
    )
    assert unknown.status_code == 404
    bad = api.call(
        "POST",
        "/campaigns",
        tenant.staff,
        {"segment": "chronic", "message": {"text": {"en": "See you on {{date}}"}}},
    )
    assert bad.status_code == 400
    assert payload(bad)["error"]["details"][0]["path"] == "$.message.text.en"
    kind = api.call(
        "POST",
        "/campaigns",
        tenant.staff,
        {"segment": "chronic", "message": {"template": "reminder"}},
    )
    assert kind.status_code == 400
    assert payload(kind)["error"]["details"][0]["path"] == "$.message.template"
    shape = api.call("POST", "/campaigns", tenant.staff, {"segment": "chronic"})
    assert shape.status_code == 400
    other = make_tenant()
    assert api.call("GET", "/campaigns/c-0123456789abcdef", other.staff).status_code == 404


def test_campaigns_are_listed_newest_first_in_pages(
    runtime: Any, api: Api, make_tenant: Any
) -> None:
    tenant: TenantCtx = make_tenant()
    first = start_campaign(api, tenant, "chronic")
    advance(runtime, timedelta(seconds=1))
    second = start_campaign(api, tenant, "elderly")
    runtime.settle()
    page = payload(api.call("GET", "/campaigns?limit=1", tenant.staff))
    assert [c["id"] for c in page["items"]] == [second["id"]]
    rest = payload(
        api.call("GET", f"/campaigns?limit=1&cursor={page['next_cursor']}", tenant.staff)
    )
    assert [c["id"] for c in rest["items"]] == [first["id"]]
    assert rest["items"][0]["status"] == "done", "an empty segment is done at once"
    assert api.call("GET", "/campaigns?cursor=nonsense", tenant.staff).status_code == 400


def test_a_long_campaign_continues_as_new_executions_before_its_history_fills(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any, monkeypatch: Any
) -> None:
    """With two batches per execution, nine patients at two a minute take five batches: three
    driver executions, each ending when the next has started; everyone is messaged once and
    the campaign's progress reads the same across them."""
    import app
    from chalicelib.domain import campaigns as rules
    from chalicelib.settings import get_settings
    from local.lambdas import LambdaContext

    monkeypatch.setattr(rules, "BATCHES_PER_EXECUTION", 2)
    tenant: TenantCtx = make_tenant(campaigns={"rate_per_minute": 2})
    phones = [unique_phone() for _ in range(9)]
    for phone in phones:
        make_patient(tenant, phone=phone, medical={"conditions": ["diabetes"]})
    move_to_local(runtime, days=1, hour=10)
    campaign = start_campaign(api, tenant, "chronic")
    runtime.settle()

    sfn = runtime.client("stepfunctions")
    machine = get_settings().campaign_driver_arn
    base = f"{tenant.id}-{campaign['id']}"

    def drivers() -> dict[str, str]:
        listed = sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]
        return {e["name"]: e["status"] for e in listed if e["name"].startswith(base)}

    seen = []
    for minute in range(5):
        shown = progress(api, tenant, campaign)
        assert shown["progress"]["started"] == min(2 * (minute + 1), 9), (minute, shown)
        assert shown["progress"]["sent"] == shown["progress"]["started"]
        assert shown["progress"]["targeted"] == 9
        assert shown["status"] == ("done" if minute == 4 else "running"), minute
        seen.append(drivers())
        advance(runtime, timedelta(minutes=1))

    assert seen[0] == {base: "RUNNING"}
    assert seen[2] == {base: "SUCCEEDED", f"{base}-part2": "RUNNING"}, "part 1 ended at its limit"
    assert drivers() == {
        base: "SUCCEEDED",
        f"{base}-part2": "SUCCEEDED",
        f"{base}-part3": "SUCCEEDED",
    }
    assert [len(campaign_sms(runtime, phone)) for phone in phones] == [1] * 9
    assert progress(api, tenant, campaign)["progress"] == {
        "targeted": 9,
        "started": 9,
        "sent": 9,
        "suppressed": 0,
        "failed": 0,
        "held_out": 0,
    }

    # The continuation replayed (a retried task) starts nothing more.
    context = LambdaContext(function_name="campaign_batch", invoked_function_arn="")
    event = {
        "tenant_id": tenant.id,
        "campaign_id": campaign["id"],
        "action": "continue_as_new",
        "part": 1,
    }
    assert app.campaign_batch(event, context) == {"part": 2, "started": False}
    runtime.settle()
    assert len(drivers()) == 3


def test_a_night_campaign_keeps_its_pace_before_and_after_quiet_hours(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    """50 patients at 5 a minute, started at 20:55 (quiet hours 21:00 to 08:00): 25 leave
    before 21:00, none in the night, and the other 25 from 08:00, never more than 5 in any
    minute; a journey's reminder due at 08:00 is not slowed by the full minute."""
    from collections import Counter

    from chalicelib import clock
    from tests.journeys.support import Journey

    clinic = make_clinic(capacity=5, journeys=True, campaigns={"rate_per_minute": 5})
    tenant = clinic.tenant
    phones = [unique_phone() for _ in range(50)]
    for phone in phones:
        make_patient(tenant, phone=phone, medical={"conditions": ["diabetes"]})
    evening = move_to_local(runtime, days=1, hour=20)
    runtime.clock.set(evening + timedelta(minutes=55))
    runtime.settle()
    booker = Journey(runtime, api, clinic, make_patient)
    visit = (evening + timedelta(days=1)).replace(hour=10)  # its 2-hour reminder: 08:00
    booker.book(visit)
    start_campaign(api, tenant, "chronic")
    runtime.settle()
    runtime.clock.set(visit - timedelta(hours=1))
    runtime.settle()

    sent = [datetime.fromisoformat(m.sent_at) for p in phones for m in campaign_sms(runtime, p)]
    assert len(sent) == 50, "everyone, once"
    local = [moment.astimezone(SHANGHAI) for moment in sent]
    per_minute = Counter(moment.strftime("%d %H:%M") for moment in local)
    assert max(per_minute.values()) == 5, per_minute
    night = [m for m in local if m.hour >= 21 or m.hour < 8]
    assert night == [], "nothing in quiet hours"
    assert len([m for m in local if m.hour == 20]) == 25, "20:55 to 20:59, 5 a minute"
    morning = sorted(m for m in local if m.hour == 8)
    assert len(morning) == 25 and morning[0].minute == 0 and morning[-1].minute == 4
    [reminder] = [
        m
        for m in booker.sms()
        if datetime.fromisoformat(m.sent_at) > clock.now() - timedelta(hours=2)
    ]
    assert datetime.fromisoformat(reminder.sent_at) == visit - timedelta(hours=2)
