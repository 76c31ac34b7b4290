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


CARE_PLAN = {
    "name": "Cardiac procedure recovery",
    "trigger": {"event": "surgery", "departments": ["cardiology"]},
    "check_ins": [{"day": 1, "questionnaire": "post-operative"}],
    "education": [
        {"day": 2, "title": {"en": "Caring for your wound"}, "url": "https://example.org/wound"}
    ],
    "recheck": {"day": 30, "book_within_days": 14, "appointment_type": "follow_up"},
}


def test_a_care_plan_previewed_after_an_event(api: Api, tenant: TenantCtx) -> None:
    saved = api.call("PUT", "/care-plans/recovery", tenant.admin, CARE_PLAN)
    assert saved.status_code in (200, 201), saved.body
    asked = {
        "event_at": "2027-03-01T06:00:00Z",  # 14:00 in Shanghai
        "patient": {"time_zone": SHANGHAI, "language": "en", "channels": ["sms"]},
    }
    response = api.call("POST", "/care-plans/recovery/preview", tenant.staff, asked)
    assert response.status_code == 200, response.body
    found = payload(response)
    assert [(s["step"], s["action"]) for s in found["steps"]] == [
        ("checkin-d1", "message"),
        ("checkin-d1#reminder", "reminder_if_unanswered"),  # a day later (the default)
        ("education-d2-1", "message"),
        ("checkin-d1#escalation", "staff_task_if_unanswered"),  # two days later
        ("recheck-d30", "message"),
    ]
    check_in = found["steps"][0]
    assert check_in["channel"] == "sms" and "Test Hospital" in check_in["text"]
    education = found["steps"][2]
    assert "https://example.org/wound" in education["text"] and education["local_time"].startswith(
        "2027-03-03"
    )
    assert found["event_at"] == "2027-03-01T06:00:00Z" and found["left_out"] == []
    missing = api.call("POST", "/care-plans/no-such-plan/preview", tenant.staff, asked)
    assert missing.status_code == 404


def test_a_recall_rules_cycle_previewed_from_a_visit(api: Api, tenant: TenantCtx) -> None:
    rule = {
        "name": "Cardiology review after 90 days",
        "match": {"appointment_type": "follow_up"},
        "after_days": 90,
        "book": {"department": "cardiology", "appointment_type": "follow_up"},
    }
    saved = api.call("PUT", "/recall-rules/review-90d", tenant.admin, rule)
    assert saved.status_code in (200, 201), saved.body
    asked = {
        "from_date": "2027-03-01",
        "patient": {"time_zone": SHANGHAI, "language": "en", "channels": ["email", "sms"]},
    }
    response = api.call("POST", "/recall-rules/review-90d/preview", tenant.staff, asked)
    assert response.status_code == 200, response.body
    found = payload(response)
    assert found["due_date"] == "2027-05-30"  # 90 days after the visit
    assert [(s["step"], s["action"]) for s in found["steps"]] == [
        ("recall_invitation", "message"),
        ("recall_reminder", "message"),
        ("recall_last_call", "message"),
        ("staff_task", "staff_task_if_unbooked"),
    ]
    invitation = found["steps"][0]
    assert invitation["local_time"].startswith("2027-05-30") and invitation["channel"] == "email"
    assert "Test Hospital" in invitation["subject"] and "/book?ref=" in invitation["text"]
    missing = api.call("POST", "/recall-rules/no-such-rule/preview", tenant.staff, asked)
    assert missing.status_code == 404
