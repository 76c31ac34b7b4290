"""The claim rules of a message, on the emulator's DynamoDB: who may take a step, when a
cancelled or moved appointment refuses it, the appointment's send lock, and provider notices
that arrive out of order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.common import utc_iso
from chalicelib.domain.deliveries import DeliveryRecord, DeliveryStatus, lease_until
from tests.conftest import Api, ClinicCtx, free_slots, payload, slot_ref

NOW = datetime(2030, 1, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def booked(api: Api, make_clinic: Any, make_patient: Any) -> tuple[ClinicCtx, dict[str, Any]]:
    clinic: ClinicCtx = make_clinic()
    patient = make_patient(clinic.tenant)
    [slot, *_] = free_slots(api, clinic.tenant.staff)
    response = api.call(
        "POST",
        "/appointments",
        clinic.tenant.staff,
        {"patient_id": patient["id"], "slot": slot_ref(slot), "type": "follow_up"},
    )
    assert response.status_code == 201, response.body
    return clinic, payload(response)


def attempt(appointment: dict[str, Any], step: str, number: int, now: datetime) -> DeliveryRecord:
    return DeliveryRecord(
        key=f"{appointment['id']}#v1#{step}",
        patient_id=appointment["patient_id"],
        step=step,
        status="sending",
        created_at=utc_iso(now),
        attempt=number,
        appointment_id=appointment["id"],
        channel="sms",
        lease_until=lease_until(now),
    )


def settled(record: DeliveryRecord, status: str) -> DeliveryRecord:
    """The same attempt with its outcome."""
    outcome = DeliveryRecord(**record)
    outcome["status"] = status
    return outcome


def guard_of(appointment: dict[str, Any], version: int = 1) -> Any:
    from chalicelib.store.messages import SendGuard

    return SendGuard(appointment["id"], version, frozenset({"booked"}))


def test_a_step_is_taken_once_until_its_attempt_fails_or_its_lease_runs_out(
    runtime: Any, booked: tuple[ClinicCtx, dict[str, Any]]
) -> None:
    from chalicelib.store.messages import Claim, DeliveryRepository

    (clinic, appointment), log = booked, DeliveryRepository()
    tenant, guard = clinic.tenant.id, guard_of(appointment)
    first = attempt(appointment, "reminder_1d", 1, NOW)
    assert log.claim(tenant, first, utc_iso(NOW), guard) is Claim.CLAIMED
    second = attempt(appointment, "reminder_1d", 2, NOW)
    assert log.claim(tenant, second, utc_iso(NOW), guard) is Claim.TAKEN, "within the lease"

    failed = settled(first, "failed")
    assert log.settle(tenant, failed, guard)
    assert log.claim(tenant, second, utc_iso(NOW), guard) is Claim.CLAIMED, "a failed attempt"
    assert not log.settle(tenant, settled(first, "sent"), guard), (
        "the first attempt no longer holds the step"
    )

    later = NOW + timedelta(minutes=5)
    third = attempt(appointment, "reminder_1d", 3, later)
    assert log.claim(tenant, third, utc_iso(later), guard) is Claim.CLAIMED, "lease ran out"
    assert log.settle(tenant, settled(third, "sent"), guard)
    fourth = attempt(appointment, "reminder_1d", 4, later + timedelta(hours=1))
    assert log.claim(tenant, fourth, utc_iso(later + timedelta(hours=1)), guard) is Claim.TAKEN
    stored = log.get(tenant, first["key"])
    assert stored is not None and (stored["status"], stored["attempt"]) == ("sent", 3)


def test_the_appointment_must_still_be_as_the_message_needs_it(
    runtime: Any, api: Api, booked: tuple[ClinicCtx, dict[str, Any]]
) -> None:
    from chalicelib.store.messages import Claim, DeliveryRepository

    (clinic, appointment), log = booked, DeliveryRepository()
    tenant = clinic.tenant.id
    record = attempt(appointment, "reminder_1d", 1, NOW)
    assert log.claim(tenant, record, utc_iso(NOW), guard_of(appointment, 2)) is Claim.NOT_DUE
    cancel = api.call("POST", f"/appointments/{appointment['id']}/cancel", clinic.tenant.staff)
    assert cancel.status_code == 200, cancel.body
    assert log.claim(tenant, record, utc_iso(NOW), guard_of(appointment)) is Claim.NOT_DUE
    assert log.get(tenant, record["key"]) is None, "nothing was claimed"


def test_one_message_of_an_appointment_leaves_at_a_time(
    runtime: Any, booked: tuple[ClinicCtx, dict[str, Any]]
) -> None:
    from chalicelib.store.messages import Claim, DeliveryRepository

    (clinic, appointment), log = booked, DeliveryRepository()
    tenant, guard = clinic.tenant.id, guard_of(appointment)
    reminder = attempt(appointment, "reminder_1d", 1, NOW)
    confirmation = attempt(appointment, "confirmation", 1, NOW)
    assert log.claim(tenant, reminder, utc_iso(NOW), guard) is Claim.CLAIMED
    assert log.claim(tenant, confirmation, utc_iso(NOW), guard) is Claim.BUSY
    assert log.settle(tenant, settled(reminder, "sent"), guard)
    assert log.claim(tenant, confirmation, utc_iso(NOW), guard) is Claim.CLAIMED


def test_a_bounce_wins_over_a_delivery_notice_in_either_order(
    runtime: Any, booked: tuple[ClinicCtx, dict[str, Any]]
) -> None:
    from chalicelib.store.messages import DeliveryRepository

    (clinic, appointment), log = booked, DeliveryRepository()
    tenant, at = clinic.tenant.id, utc_iso(NOW)
    for step, notices, final in (
        ("confirmation", (DeliveryStatus.BOUNCED, DeliveryStatus.DELIVERED), "bounced"),
        ("reminder_1d", (DeliveryStatus.DELIVERED, DeliveryStatus.BOUNCED), "bounced"),
    ):
        record = attempt(appointment, step, 1, NOW)
        log.claim(tenant, record, at)
        log.settle(tenant, settled(record, "sent"), None)
        applied = [log.mark(tenant, record["key"], notice, at) for notice in notices]
        stored = log.get(tenant, record["key"])
        assert stored is not None and stored["status"] == final, step
        assert applied == [True, step != "confirmation"], "a Delivery after a Bounce is ignored"
