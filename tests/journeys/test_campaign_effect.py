"""What a campaign achieved: a control group that is never messaged, two wordings (an A/B test),
and conversion of each group with the lift between them, counted from the table's stream
(delivered at least once, with seeded duplicate deliveries) and read in GET /campaigns/{id}."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Api, payload
from tests.journeys.support import iso, local_moment, move_to, unique_phone

pytestmark = pytest.mark.journey
PLAIN = "{{clinic}}: {{first_name}}, your diabetes review is due. Book: {{link}}"
BENEFIT = "{{clinic}}: {{first_name}}, 20 minutes keeps your diabetes in check. Book: {{link}}"
PATIENTS = 30


def test_a_control_group_and_two_wordings_report_conversion_and_lift(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    from chalicelib.domain import outreach_effect

    clinic = make_clinic(capacity=PATIENTS, campaigns={"rate_per_minute": 100})
    tenant = clinic.tenant
    patients = [
        make_patient(
            tenant,
            phone=unique_phone(),
            language="en",
            medical={"conditions": ["diabetes"]},
        )
        for _ in range(PATIENTS)
    ]
    move_to(runtime, local_moment(days=1, hour=10))
    runtime.streams.seed_duplicates(0.5, seed=7)  # half the stream's batches come twice
    try:
        response = api.call(
            "POST",
            "/campaigns",
            tenant.staff,
            {
                "segment": "chronic",
                "name": "Diabetes review",
                "variants": [
                    {"name": "plain", "message": {"text": {"en": PLAIN}}},
                    {"name": "benefit", "message": {"text": {"en": BENEFIT}}},
                ],
                "control_group": {"percent": 30},
                "goal": {"appointment_type": "follow_up", "within_days": 3},
            },
            headers={"Idempotency-Key": f"campaign-{random.getrandbits(40)}"},
        )
        assert response.status_code == 201, response.body
        campaign = payload(response)
        assert campaign["control_group"] == {"percent": 30}
        for _ in range(5):
            runtime.clock.advance(timedelta(minutes=1))
            runtime.settle()

        # Who got which wording, read from what reached their phones: the control group, nothing.
        groups: dict[str, list[dict[str, Any]]] = {"control": [], "plain": [], "benefit": []}
        for patient in patients:
            texts = [m.body for m in runtime.outbox.messages(to=patient["phone"])]
            assert len(texts) <= 1, "a campaign messages a patient once"
            name = "control" if not texts else "plain" if "review is due" in texts[0] else "benefit"
            groups[name].append(patient)
        assert all(groups.values()), {k: len(v) for k, v in groups.items()}
        shown = payload(api.call("GET", f"/campaigns/{campaign['id']}", tenant.staff))
        assert shown["status"] == "done"
        assert shown["progress"]["held_out"] == len(groups["control"])
        assert shown["progress"]["sent"] == len(groups["plain"]) + len(groups["benefit"])

        # Bookings: two of the control group and of the first wording, one of the second book a
        # follow-up in time; another books something else; one books the follow-up too late.
        visit = local_moment(days=2, hour=10)

        def book(patient: dict[str, Any], kind: str = "follow_up") -> None:
            token = runtime.token("patient", tenant.id, patient["id"])
            slot = {"schedule_id": clinic.schedule_id, "start": iso(visit)}
            booked = api.call("POST", "/appointments", token, {"slot": slot, "type": kind})
            assert booked.status_code == 201, booked.body

        converting = {"control": 2, "plain": 2, "benefit": 1}
        for name, how_many in converting.items():
            for patient in groups[name][:how_many]:
                book(patient)
        others = [p for name, members in groups.items() for p in members[converting[name] :]]
        book(others[0], kind="first_visit")  # not what the campaign asked for
        late = others[1]
        move_to(runtime, local_moment(days=4, hour=9))  # past the 3 days of the campaign's goal
        visit = local_moment(days=2, hour=10)
        book(late)
        runtime.settle()
    finally:
        runtime.streams.seed_duplicates(0.0, seed=0)

    effect = payload(api.call("GET", f"/campaigns/{campaign['id']}", tenant.staff))["effect"]
    assert effect["goal"] == {"appointment_type": "follow_up", "within_days": 3}
    expected = [
        outreach_effect.group_conversion(
            name,
            len(groups[name]),
            converting[name],
            None if name == "control" else len(groups[name]),  # every text went out
        )
        for name in ("control", "plain", "benefit")
    ]
    assert effect["groups"] == expected
    by_name = {g["group"]: g for g in expected}
    assert effect["lifts"] == [
        outreach_effect.lift(by_name["plain"], by_name["control"]),
        outreach_effect.lift(by_name["benefit"], by_name["control"]),
        outreach_effect.lift(by_name["benefit"], by_name["plain"]),
    ]
    for found in effect["lifts"]:
        low, high = found["ci95"]
        assert low <= found["difference"] <= high

    # A rebuild from the campaign's recipients and the patients' bookings agrees; rebuilt, the
    # effect reads the same.
    from chalicelib.services.registry import services

    assert services().analytics.rebuild(tenant.id, check_only=True)["differing"] == 0
    services().analytics.rebuild(tenant.id)
    again = payload(api.call("GET", f"/campaigns/{campaign['id']}", tenant.staff))["effect"]
    assert again == effect

    # Another hospital finds no such campaign.
    other = make_clinic().tenant
    assert api.call("GET", f"/campaigns/{campaign['id']}", other.staff).status_code == 404
