"""Booking and the life of an appointment through the API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import Api, ClinicCtx, error_code, error_paths, free_slots, payload, slot_ref


def patient_token(
    runtime: Any, clinic: ClinicCtx, make_patient: Any, **overrides: Any
) -> tuple[str, dict[str, Any]]:
    patient = make_patient(clinic.tenant, **overrides)
    return runtime.token("patient", clinic.tenant.id, patient["id"]), patient


def book_first_free(
    runtime: Any, api: Api, clinic: ClinicCtx, make_patient: Any
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A new patient books the first free slot: their token, the patient, the slot, the booking."""
    token, patient = patient_token(runtime, clinic, make_patient)
    slot = free_slots(api, token)[0]
    response = api.call(
        "POST", "/appointments", token, {"slot": slot_ref(slot), "type": "check_up"}
    )
    assert response.status_code == 201, response.body
    return token, patient, slot, payload(response)


def test_slots_come_from_the_schedule_in_hospital_time(api: Api, make_clinic: Any) -> None:
    clinic: ClinicCtx = make_clinic()
    slots = free_slots(api, clinic.tenant.staff)
    assert len(slots) == 16  # 8 hours of 30-minute slots
    assert slots[0]["local_start"].endswith("T08:00:00+08:00")
    assert {s["clinician"] for s in slots} == {"dr-li"}
    bad = api.call("GET", "/slots?department=cardiology&from=2026-01-01", clinic.tenant.staff)
    assert bad.status_code == 400 and payload(bad)["error"]["details"][0]["path"] == "to"
    too_long = api.call(
        "GET", "/slots?department=cardiology&from=2027-01-01&to=2027-03-01", clinic.tenant.staff
    )
    assert too_long.status_code == 400
    unknown = api.call(
        "GET", "/slots?department=nope&from=2027-01-01&to=2027-01-02", clinic.tenant.staff
    )
    assert unknown.status_code == 400


def test_patient_books_and_the_slot_is_taken(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    token, patient = patient_token(runtime, clinic, make_patient, time_zone="Europe/London")
    slot = free_slots(api, token)[0]
    booked = api.call(
        "POST",
        "/appointments",
        token,
        {"slot": slot_ref(slot), "type": "first_visit", "notes_for_patient": "Please come fasting"},
    )
    assert booked.status_code == 201, booked.body
    doc = payload(booked)
    assert (doc["status"], doc["patient_response"], doc["journey_version"]) == (
        "booked",
        "pending",
        1,
    )
    assert doc["patient_id"] == patient["id"] and doc["location"] == "Building 2"
    assert doc["local"]["tenant"]["start"].endswith("+08:00")
    assert doc["local"]["patient"]["time_zone"] == "Europe/London"
    # London's offset on the day (+00:00 in winter, +01:00 in summer: the shared clock moves).
    london = datetime.fromisoformat(slot["start"]).astimezone(ZoneInfo("Europe/London"))
    assert doc["local"]["patient"]["start"] == london.isoformat()
    assert slot["start"] not in [s["start"] for s in free_slots(api, token)]
    taken = api.call(
        "POST",
        "/appointments",
        clinic.tenant.staff,
        {"slot": slot_ref(slot), "type": "first_visit", "patient_id": patient["id"]},
    )
    assert taken.status_code == 409 and error_code(taken) == "slot_full"


def test_capacity_counts_down(api: Api, make_clinic: Any, make_patient: Any) -> None:
    clinic: ClinicCtx = make_clinic(capacity=2)
    slot = free_slots(api, clinic.tenant.staff)[0]
    assert slot["remaining"] == 2
    for expected in (201, 201, 409):
        patient = make_patient(clinic.tenant)
        response = api.call(
            "POST",
            "/appointments",
            clinic.tenant.staff,
            {"slot": slot_ref(slot), "type": "follow_up", "patient_id": patient["id"]},
        )
        assert response.status_code == expected


def test_booking_refuses_what_cannot_be_booked(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    token, _ = patient_token(runtime, clinic, make_patient)
    slot = free_slots(api, token)[0]
    staff = clinic.tenant.staff

    def book(who: str, body: dict[str, Any]) -> Any:
        return api.call("POST", "/appointments", who, body)

    off_grid = {**slot_ref(slot), "start": slot["start"].replace(":00:00Z", ":10:00Z")}
    cases = [
        (book(token, {"slot": off_grid, "type": "first_visit"}), 400, "$.slot.start"),
        (
            book(token, {"slot": {**slot_ref(slot), "schedule_id": "nope"}, "type": "check_up"}),
            400,
            "$.slot.schedule_id",
        ),
        (
            book(
                token,
                {"slot": {**slot_ref(slot), "start": "2020-01-01T00:00:00Z"}, "type": "check_up"},
            ),
            400,
            "$.slot.start",
        ),
        (book(staff, {"slot": slot_ref(slot), "type": "check_up"}), 400, "$.patient_id"),
        (
            book(staff, {"slot": slot_ref(slot), "type": "check_up", "patient_id": "p-nobody"}),
            400,
            "$.patient_id",
        ),
        (book(token, {"slot": slot_ref(slot), "type": "surgery"}), 400, "$.type"),
    ]
    for response, status, path in cases:
        assert response.status_code == status, (path, response.body)
        assert payload(response)["error"]["details"][0]["path"] == path
    other = make_patient(clinic.tenant)
    for_someone_else = book(
        token, {"slot": slot_ref(slot), "type": "check_up", "patient_id": other["id"]}
    )
    assert for_someone_else.status_code == 403
    assert payload(api.call("GET", "/me/appointments", token))["items"] == []


def test_idempotency_key_books_once(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    token, _ = patient_token(runtime, clinic, make_patient)
    first_slot, second_slot = free_slots(api, token)[:2]
    body = {"slot": slot_ref(first_slot), "type": "first_visit"}
    key = {"Idempotency-Key": "booking-attempt-0001"}
    first = api.call("POST", "/appointments", token, body, headers=key)
    again = api.call("POST", "/appointments", token, body, headers=key)
    assert first.status_code == again.status_code == 201
    assert payload(first) == payload(again)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(payload(api.call("GET", "/me/appointments", token))["items"]) == 1
    reused = api.call(
        "POST",
        "/appointments",
        token,
        {"slot": slot_ref(second_slot), "type": "first_visit"},
        headers=key,
    )
    assert reused.status_code == 409 and error_code(reused) == "idempotency_key_reused"
    bad_key = api.call("POST", "/appointments", token, body, headers={"Idempotency-Key": "x"})
    assert bad_key.status_code == 400
    # A refused request frees its key for a corrected retry.
    key2 = {"Idempotency-Key": "booking-attempt-0002"}
    refused = api.call("POST", "/appointments", token, {**body, "type": "surgery"}, headers=key2)
    assert refused.status_code == 400
    retried = api.call(
        "POST",
        "/appointments",
        token,
        {"slot": slot_ref(second_slot), "type": "first_visit"},
        headers=key2,
    )
    assert retried.status_code == 201


def test_idempotency_key_on_patient_registration(api: Api, make_clinic: Any) -> None:
    clinic: ClinicCtx = make_clinic()
    body = {"name": {"given": "Once"}, "phone": "13600136000"}
    key = {"Idempotency-Key": "register-once-001"}
    first = api.call("POST", "/patients", clinic.tenant.staff, body, headers=key)
    again = api.call("POST", "/patients", clinic.tenant.staff, body, headers=key)
    assert payload(first)["id"] == payload(again)["id"]
    assert again.headers["ETag"] == first.headers["ETag"] == '"1"'
    search = {"phone": "13600136000"}
    found = payload(api.call("POST", "/patients/search", clinic.tenant.staff, search))
    assert len(found["items"]) == 1


def test_cancel_frees_the_slot(runtime: Any, api: Api, make_clinic: Any, make_patient: Any) -> None:
    clinic: ClinicCtx = make_clinic()
    token, _, slot, doc = book_first_free(runtime, api, clinic, make_patient)
    cancelled = api.call("POST", f"/appointments/{doc['id']}/cancel", token)
    assert cancelled.status_code == 200
    assert (payload(cancelled)["status"], payload(cancelled)["patient_response"]) == (
        "cancelled",
        "declined",
    )
    assert slot["start"] in [s["start"] for s in free_slots(api, token)]
    again = api.call("POST", f"/appointments/{doc['id']}/cancel", token)
    assert again.status_code == 409 and error_code(again) == "invalid_status_change"


def test_reschedule_moves_the_place_in_one_step(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    token, _ = patient_token(runtime, clinic, make_patient)
    old, new, full = free_slots(api, token)[:3]
    doc = payload(
        api.call("POST", "/appointments", token, {"slot": slot_ref(old), "type": "check_up"})
    )
    blocker = make_patient(clinic.tenant)
    api.call(
        "POST",
        "/appointments",
        clinic.tenant.staff,
        {"slot": slot_ref(full), "type": "check_up", "patient_id": blocker["id"]},
    )
    path = f"/appointments/{doc['id']}/reschedule"
    refused = api.call("POST", path, token, {"slot": slot_ref(full)})
    assert refused.status_code == 409 and error_code(refused) == "slot_full"
    assert payload(api.call("GET", f"/appointments/{doc['id']}", token))["start"] == old["start"]
    moved = api.call("POST", path, token, {"slot": slot_ref(new)})
    assert moved.status_code == 200
    assert (payload(moved)["start"], payload(moved)["journey_version"]) == (new["start"], 2)
    starts = [s["start"] for s in free_slots(api, token)]
    assert old["start"] in starts and new["start"] not in starts
    other_department = free_slots(api, token, department="dermatology")[0]
    crossing = api.call("POST", path, token, {"slot": slot_ref(other_department)})
    assert crossing.status_code == 400


def test_staff_day_check_in_and_fulfil(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    token, patient, slot, doc = book_first_free(runtime, api, clinic, make_patient)
    confirmed = api.call("POST", f"/appointments/{doc['id']}/confirm", token)
    assert payload(confirmed)["patient_response"] == "confirmed"
    day = slot["local_start"][:10]
    listed = payload(
        api.call("GET", f"/departments/cardiology/appointments?date={day}", clinic.tenant.staff)
    )
    assert [a["id"] for a in listed["items"]] == [doc["id"]]
    staff = clinic.tenant.staff
    assert api.call("POST", f"/appointments/{doc['id']}/check-in", token).status_code == 403
    early_no_show = api.call("POST", f"/appointments/{doc['id']}/no-show", staff)
    assert early_no_show.status_code == 409
    assert (
        payload(api.call("POST", f"/appointments/{doc['id']}/check-in", staff))["status"]
        == "arrived"
    )
    assert (
        payload(api.call("POST", f"/appointments/{doc['id']}/fulfil", staff))["status"]
        == "fulfilled"
    )
    staff_view = payload(api.call("GET", f"/patients/{patient['id']}/appointments", staff))["items"]
    assert [a["status"] for a in staff_view] == ["fulfilled"]


def test_no_show_after_the_start(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    token, _, _slot, doc = book_first_free(runtime, api, clinic, make_patient)
    runtime.clock.advance(timedelta(days=2))
    marked = api.call("POST", f"/appointments/{doc['id']}/no-show", clinic.tenant.staff)
    assert marked.status_code == 200 and payload(marked)["status"] == "noshow"
    upcoming = payload(api.call("GET", "/me/appointments", token))["items"]
    past = payload(api.call("GET", "/me/appointments?when=past", token))["items"]
    assert upcoming == [] and [a["id"] for a in past] == [doc["id"]]
    late = api.call(
        "POST",
        f"/appointments/{doc['id']}/reschedule",
        token,
        {"slot": slot_ref(free_slots(api, token)[0])},
    )
    assert late.status_code == 409


def test_appointments_are_private(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    other_clinic: ClinicCtx = make_clinic()
    _token, _, _slot, doc = book_first_free(runtime, api, clinic, make_patient)
    path = f"/appointments/{doc['id']}"
    neighbour, _ = patient_token(runtime, clinic, make_patient)
    assert api.call("GET", path, neighbour).status_code == 404
    assert api.call("POST", f"{path}/cancel", neighbour).status_code == 404
    assert api.call("GET", path, other_clinic.tenant.staff).status_code == 404
    assert api.call("GET", path, clinic.tenant.staff).status_code == 200


def test_schedule_rules_and_replacement(api: Api, make_clinic: Any) -> None:
    clinic: ClinicCtx = make_clinic()
    admin = clinic.tenant.admin
    body = {
        "department": "cardiology",
        "clinician": "dr-wang",
        "location": "X",
        "weekly_hours": {"mon": [{"start": "09:00", "end": "08:00"}]},
        "slot_minutes": 15,
        "capacity": 1,
    }
    wrong = api.call("PUT", "/schedules/extra", admin, body)
    assert wrong.status_code == 400
    assert error_paths(wrong) == [
        "$.clinician",
        "$.weekly_hours.mon",
    ]
    current = payload(api.call("GET", "/schedules/cardio", admin))
    replaced = {
        k: current[k]
        for k in ("department", "clinician", "location", "weekly_hours", "slot_minutes")
    } | {"capacity": 3}
    assert api.call("PUT", "/schedules/cardio", admin, replaced).status_code == 428
    ok = api.call("PUT", "/schedules/cardio", admin, replaced, headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and payload(ok)["version"] == 2
    assert (
        api.call(
            "PUT", "/schedules/cardio", clinic.tenant.staff, replaced, headers={"If-Match": '"2"'}
        ).status_code
        == 403
    )
    assert len(payload(api.call("GET", "/schedules", clinic.tenant.staff))["items"]) == 2
    assert len(payload(api.call("GET", "/clinicians", clinic.tenant.staff))["items"]) == 2


def test_dates_far_out_of_range_are_400(api: Api, make_clinic: Any, make_patient: Any) -> None:
    clinic: ClinicCtx = make_clinic()
    staff = clinic.tenant.staff
    for query in (
        "from=9999-12-30&to=9999-12-31",
        "from=9999-12-31T20:00:00-05:00&to=2027-01-01",
        "from=0001-01-01T00:00:00%2B05:00&to=2027-01-01",
    ):
        response = api.call("GET", f"/slots?department=cardiology&{query}", staff)
        assert response.status_code == 400, query
    patient = make_patient(clinic.tenant)
    for start in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00+05:00"):
        response = api.call(
            "POST",
            "/appointments",
            staff,
            {
                "slot": {"schedule_id": "cardio", "start": start},
                "type": "check_up",
                "patient_id": patient["id"],
            },
        )
        assert response.status_code == 400, start


def test_patient_cannot_cancel_after_the_start(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    token, _, _slot, doc = book_first_free(runtime, api, clinic, make_patient)
    runtime.clock.advance(timedelta(days=2))
    late = api.call("POST", f"/appointments/{doc['id']}/cancel", token)
    assert late.status_code == 409 and error_code(late) == "appointment_started"


def test_a_patient_with_booked_appointments_is_not_deleted(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    token, patient, _slot, doc = book_first_free(runtime, api, clinic, make_patient)
    refused = api.call("DELETE", f"/patients/{patient['id']}", clinic.tenant.staff)
    assert refused.status_code == 409 and error_code(refused) == "patient_has_appointments"
    api.call("POST", f"/appointments/{doc['id']}/cancel", token)
    assert api.call("DELETE", f"/patients/{patient['id']}", clinic.tenant.staff).status_code == 204


def test_a_reused_key_after_its_record_expired_books_nothing_else(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    token, _ = patient_token(runtime, clinic, make_patient)
    first, second = free_slots(api, token)[:2]
    key = {"Idempotency-Key": "expired-key-0001"}
    booked = api.call(
        "POST", "/appointments", token, {"slot": slot_ref(first), "type": "check_up"}, headers=key
    )
    assert booked.status_code == 201, booked.body
    # The replay record expires after a day (TTL); remove it as DynamoDB would.
    table = runtime.client("dynamodb")
    found = table.scan(
        TableName="careloop-local",
        FilterExpression="contains(PK, :k)",
        ExpressionAttributeValues={":k": {"S": "expired-key-0001"}},
    )["Items"]
    assert found, "the replay record to expire"
    for item in found:
        table.delete_item(TableName="careloop-local", Key={"PK": item["PK"], "SK": item["SK"]})
    reused = api.call(
        "POST", "/appointments", token, {"slot": slot_ref(second), "type": "check_up"}, headers=key
    )
    assert reused.status_code == 409 and error_code(reused) == "idempotency_key_reused"
    again = api.call(
        "POST", "/appointments", token, {"slot": slot_ref(first), "type": "check_up"}, headers=key
    )
    assert again.status_code == 201, "the same booking under the same key is still the same"


def local_eight(days_ahead: int) -> str:
    """08:00 in Shanghai (a slot of every clinic's schedule) `days_ahead` days from today."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from chalicelib import clock
    from chalicelib.domain.common import utc_iso

    zone = ZoneInfo("Asia/Shanghai")
    day = clock.now().astimezone(zone).date() + timedelta(days=days_ahead)
    return utc_iso(datetime.combine(day, time(8), tzinfo=zone))


def test_nothing_is_offered_or_booked_past_the_booking_horizon(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic(booking={"horizon_days": 2})
    token, _ = patient_token(runtime, clinic, make_patient)
    offered = free_slots(api, token, days_ahead=1, days=5)
    last_day = local_eight(2)[:10]
    assert offered and max(s["local_start"][:10] for s in offered) == last_day, (
        "the horizon's last day is offered whole, nothing after it"
    )
    assert len([s for s in offered if s["local_start"][:10] == last_day]) == 16
    beyond = {"schedule_id": clinic.schedule_id, "start": local_eight(3)}
    refused = api.call("POST", "/appointments", token, {"slot": beyond, "type": "check_up"})
    assert refused.status_code == 400, refused.body
    assert (error_code(refused), error_paths(refused)) == (
        "beyond_booking_horizon",
        ["$.slot.start"],
    )
    assert "2 days ahead" in payload(refused)["error"]["details"][0]["message"]
    within = {"schedule_id": clinic.schedule_id, "start": local_eight(2)}
    booked = api.call("POST", "/appointments", token, {"slot": within, "type": "check_up"})
    assert booked.status_code == 201, booked.body
    moved = api.call(
        "POST", f"/appointments/{payload(booked)['id']}/reschedule", token, {"slot": beyond}
    )
    assert moved.status_code == 400, moved.body
    assert error_code(moved) == "beyond_booking_horizon"
    kept = payload(api.call("GET", f"/appointments/{payload(booked)['id']}", token))
    assert (kept["start"], kept["journey_version"]) == (within["start"], 1)


def test_the_default_horizon_is_180_days(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    staff = clinic.tenant.staff
    assert free_slots(api, staff, days_ahead=178, days=2), "within the horizon"
    assert free_slots(api, staff, days_ahead=181, days=3) == []
    patient = make_patient(clinic.tenant)
    for days_ahead, status in ((181, 400), (180, 201)):
        response = api.call(
            "POST",
            "/appointments",
            staff,
            {
                "slot": {"schedule_id": clinic.schedule_id, "start": local_eight(days_ahead)},
                "type": "check_up",
                "patient_id": patient["id"],
            },
        )
        assert response.status_code == status, (days_ahead, response.body)
