"""`POST /journeys/preview`: what the tenant's current settings would send a hypothetical
patient, and when, by the same rules the journeys run; nothing is stored or sent."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, TenantCtx, error_paths, payload

SHANGHAI = "Asia/Shanghai"
# Booked on 20 February 2027 at 23:30 in Shanghai, for 10 March at 10:00.
BOOKED_AT = "2027-02-20T15:30:00Z"
START = "2027-03-10T02:00:00Z"


def body(**changes: Any) -> dict[str, Any]:
    preview: dict[str, Any] = {
        "appointment": {"type": "follow_up", "department": "cardiology", "start": START},
        "patient": {"time_zone": SHANGHAI, "language": "en", "channels": ["sms", "email"]},
        "booked_at": BOOKED_AT,
    }
    for key, value in changes.items():
        preview[key] = {**preview[key], **value} if isinstance(value, dict) else value
    return preview


def preview(api: Api, tenant: TenantCtx, **changes: Any) -> dict[str, Any]:
    response = api.call("POST", "/journeys/preview", tenant.staff, body(**changes))
    assert response.status_code == 200, response.body
    found: dict[str, Any] = payload(response)
    return found


def test_every_step_with_its_moment_channel_and_text(api: Api, tenant: TenantCtx) -> None:
    found = preview(api, tenant)
    steps = {s["step"]: s for s in found["steps"]}
    assert list(steps) == [
        "confirmation",
        "reminder_7d",
        "reminder_1d",
        "answer_deadline",
        "reminder_2h",
        "visit_check",
    ]
    confirmation = steps["confirmation"]
    # 23:30 is inside the default quiet hours (21:00-08:00): the next morning at 08:00.
    assert confirmation["local_time"] == "2027-02-21 08:00"
    assert confirmation["moved_by_quiet_hours"] is True
    assert confirmation["channel"] == "sms" and confirmation["sms_segments"] >= 1
    assert "Test Hospital" in confirmation["text"] and "Reply C" in confirmation["text"]
    assert steps["reminder_2h"]["local_time"] == "2027-03-10 08:00"
    assert "moved_by_quiet_hours" not in steps["reminder_1d"]
    assert steps["answer_deadline"]["action"] == "staff_task_if_unanswered"
    assert steps["visit_check"] == {
        "step": "visit_check",
        "at": "2027-03-10T04:00:00Z",
        "local_time": "2027-03-10 12:00",
        "action": "visit_check",
    }
    assert found["left_out"] == []
    assert found["booked_at"] == BOOKED_AT


def test_what_a_late_booking_leaves_out_and_why(api: Api, tenant: TenantCtx) -> None:
    found = preview(api, tenant, booked_at="2027-03-09T06:00:00Z")  # 14:00 the day before
    assert [s["step"] for s in found["steps"]] == ["confirmation", "reminder_2h", "visit_check"]
    left_out = {s["step"]: s["why"] for s in found["left_out"]}
    assert left_out == {
        "reminder_7d": "its moment had passed when the appointment was booked",
        "reminder_1d": "its moment had passed when the appointment was booked",
    }


def test_consent_and_the_tenants_own_wording_decide_the_message(
    api: Api, tenant: TenantCtx
) -> None:
    wording = {"subject": "Your visit", "body": "{{first_name}}: {{date}} {{time}}, {{location}}."}
    saved = api.call("PUT", "/templates/reminder/email/en", tenant.admin, wording)
    assert saved.status_code == 200, saved.body
    found = preview(
        api,
        tenant,
        appointment={"location": "Building 2"},
        patient={"consent": {"sms": False}},
    )
    reminder = next(s for s in found["steps"] if s["step"] == "reminder_7d")
    assert reminder["channel"] == "email" and reminder["subject"] == "Your visit"
    assert reminder["text"].endswith("2027-03-10 10:00, Building 2.")
    assert "sms_segments" not in reminder
    nowhere = preview(api, tenant, patient={"channels": ["sms"], "consent": {"sms": False}})
    assert [s["step"] for s in nowhere["steps"]] == ["answer_deadline", "visit_check"]
    assert {s["why"] for s in nowhere["left_out"]} == {
        "no channel: consent withdrawn on every channel the patient has"
    }


def test_bad_input_is_named_and_patients_may_not_preview(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    def refused(token: str, preview_body: dict[str, Any]) -> Any:
        return api.call("POST", "/journeys/preview", token, preview_body)

    early = refused(tenant.staff, body(appointment={"start": "2027-02-01T02:00:00Z"}))
    assert early.status_code == 400 and error_paths(early) == ["$.appointment.start"]
    elsewhere = refused(tenant.staff, body(appointment={"department": "dermatology"}))
    assert elsewhere.status_code == 400 and error_paths(elsewhere) == ["$.appointment.department"]
    no_zone = refused(tenant.staff, body(patient={"time_zone": "Mars/Olympus"}))
    assert no_zone.status_code == 400 and error_paths(no_zone) == ["$.patient.time_zone"]
    patient = runtime.token("patient", tenant.id, "p-0123456789abcdef")
    assert refused(patient, body()).status_code == 403
