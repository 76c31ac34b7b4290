"""Children are reached through their guardians: every journey and campaign addresses a minor's
messages to the guardian (the guardian's channels, consent and language), naming the child; a
minor's own phone is used only from the tenant's age (default 14)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.conftest import Api, TenantCtx, payload
from tests.journeys.support import Journey, local_moment, move_to, unique_phone
from tests.journeys.test_campaign_journey import move_to_local, progress, start_campaign

pytestmark = pytest.mark.journey


def born(years: int) -> str:
    """A birth date that makes the patient `years` old today (1 January of that year)."""
    from chalicelib import clock

    return date(clock.now().year - years, 1, 1).isoformat()


def guardian(name: str, **contact: Any) -> dict[str, Any]:
    return {"name": name, "relationship": "parent", **contact}


def test_a_campaign_reaches_each_minor_through_their_guardian_until_their_own_age(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    tenant: TenantCtx = make_tenant()
    phones = {key: unique_phone() for key in ("g6", "g13", "own13", "own15", "g15", "adult")}
    chronic = {"medical": {"conditions": ["asthma"]}}
    six = make_patient(
        tenant,
        name={"given": "Xiaoming"},
        birth_date=born(6),
        guardian=guardian("Li Na", phone=phones["g6"]),
        **chronic,
    )
    make_patient(
        tenant,
        name={"given": "Xiaohong"},
        birth_date=born(9),
        guardian=guardian("Wang Fang", email=f"wang-{tenant.id}@example.com", language="en"),
        **chronic,
    )
    make_patient(
        tenant,
        name={"given": "Dawei"},
        phone=phones["own13"],
        preferred_channels=["sms"],
        birth_date=born(13),
        guardian=guardian("Zhao Lei", phone=phones["g13"]),
        **chronic,
    )
    make_patient(
        tenant,
        name={"given": "Jing"},
        phone=phones["own15"],
        birth_date=born(15),
        guardian=guardian("Sun Li", phone=phones["g15"]),
        **chronic,
    )
    make_patient(tenant, name={"given": "Jun"}, phone=phones["adult"], **chronic)
    move_to_local(runtime, days=1, hour=10)
    campaign = start_campaign(api, tenant, "chronic")
    move_to_local(runtime, days=0, hour=11)
    assert progress(api, tenant, campaign)["progress"]["sent"] == 5

    def texts(phone: str) -> list[str]:
        return [m.body for m in runtime.outbox.messages(to=f"+86{phone}", channel="sms")]

    [to_six] = texts(phones["g6"])
    assert to_six.startswith("（关于Xiaoming）") and "Li Na您好" in to_six
    [to_nine] = [
        m
        for m in runtime.outbox.messages(channel="email")
        if m.to == f"wang-{tenant.id}@example.com"
    ]
    assert "(About Xiaohong)" in to_nine.body, "in the guardian's language"
    [to_thirteen] = texts(phones["g13"])
    assert "Dawei" in to_thirteen and "Zhao Lei" in to_thirteen
    assert texts(phones["own13"]) == [], "a 13-year-old's own phone is not used"
    assert len(texts(phones["own15"])) == 1 and texts(phones["g15"]) == []
    assert "关于" not in texts(phones["own15"])[0]
    assert len(texts(phones["adult"])) == 1
    deliveries = payload(api.call("GET", f"/patients/{six['id']}/deliveries", tenant.staff))
    [sent] = [d for d in deliveries["items"] if d.get("campaign_id") == campaign["id"]]
    assert sent["to_guardian"] is True


def test_a_childs_appointment_journey_speaks_to_the_guardian_who_can_answer(
    runtime: Any, api: Api, journey: Any
) -> None:
    """A 9-year-old with a phone of their own: the confirmation and the reminders go to the
    guardian's phone, naming the child; the guardian's "Y" confirms the child's visit."""
    parent_phone = unique_phone()
    j: Journey = journey(
        name={"given": "Xiaoming"},
        birth_date=born(9),
        guardian=guardian("Li Na", phone=parent_phone),
    )
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    assert j.sms() == [], "nothing to the child's own phone"
    to_parent = runtime.outbox.messages(to=f"+86{parent_phone}", channel="sms")
    [confirmation] = to_parent
    assert confirmation.body.startswith("（关于Xiaoming）") and "Li Na" in confirmation.body
    response = api.call(
        "POST", "/local/sms-reply", None, {"from": f"+86{parent_phone}", "text": "Y"}
    )
    assert response.status_code == 202, response.body
    runtime.settle()
    assert j.appointment(appointment)["patient_response"] == "confirmed"
    move_to(runtime, start - timedelta(days=1))
    reminders = runtime.outbox.messages(to=f"+86{parent_phone}", channel="sms")[1:]
    assert reminders and all("Xiaoming" in m.body for m in reminders)
    assert j.sms() == [] and all(
        m.to != f"+86{j.phone}" for m in runtime.outbox.messages(channel="email")
    )
