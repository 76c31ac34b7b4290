"""The satisfaction survey and complaint recovery on the virtual clock: a fulfilled visit brings
the survey the next day out of quiet hours; a low score opens a recovery complaint with its
deadline, which escalates to the department's lead when overdue (and not before, and once); a
high score never opens one and is thanked with the review link; a second visit within the
tenant's window, a no-show and an opted-out patient get no survey."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Api, payload, unique
from tests.journeys.support import SHANGHAI, Journey, local_moment, move_to, run_schedule

pytestmark = pytest.mark.journey

REVIEW_URL = "https://reviews.example.com/test-hospital"
SETTINGS = {
    "enabled": True,
    "send_time": "07:30",  # inside quiet hours (21:00-08:00): the survey waits for 08:00
    "recovery_hours": 24,
    "flag_keywords": ["rude", "投诉"],
    "thank_you": {"enabled": True, "review_url": REVIEW_URL},
}


def survey_link(message: Any) -> str | None:
    match = re.search(r"/q/(qr-[0-9a-f]{16})", message.body)
    return match.group(1) if match else None


def surveys(j: Journey) -> list[Any]:
    sent = [*j.sms(), *j.runtime.outbox.messages(to=j.patient.get("email"), channel="email")]
    return [m for m in sent if survey_link(m)]


def visit(runtime: Any, j: Journey, days: int, hour: int = 10) -> tuple[dict[str, Any], datetime]:
    """A visit `days` from now that takes place: checked in, fulfilled, the visit check passed."""
    start = local_moment(days=days, hour=hour)
    appointment = j.book(start)
    move_to(runtime, start - timedelta(minutes=30))
    j.act(appointment, "check-in", j.clinic.tenant.staff)
    j.act(appointment, "fulfil", j.clinic.tenant.staff)
    move_to(runtime, start + timedelta(hours=2, minutes=1))
    return appointment, start


def answer(j: Journey, message: Any, answers: dict[str, Any]) -> dict[str, Any]:
    path = f"/me/questionnaire-responses/{survey_link(message)}"
    opened = j.api.call("GET", path, j.token)
    assert opened.status_code == 200, opened.body
    assert payload(opened)["questionnaire"] == "satisfaction"
    saved = j.api.call("PATCH", path, j.token, {"answers": answers})
    assert saved.status_code == 200, saved.body
    submitted = j.api.call("POST", f"{path}/submit", j.token)
    assert submitted.status_code == 200, submitted.body
    j.runtime.settle()
    done: dict[str, Any] = payload(submitted)
    return done


def complaints(j: Journey) -> list[dict[str, Any]]:
    listed = j.api.call("GET", "/complaints", j.clinic.tenant.staff)
    assert listed.status_code == 200, listed.body
    return [c for c in payload(listed)["items"] if c["patient_id"] == j.patient["id"]]


@pytest.fixture
def clinic(runtime: Any, api: Api, make_clinic: Any) -> Any:
    made = make_clinic(capacity=5, journeys=True, satisfaction=SETTINGS)
    lead = api.call(
        "POST",
        "/staff",
        made.tenant.admin,
        {
            "email": f"{unique('lead')}@hospital.example.com",
            "name": "Lead",
            "departments": ["cardiology"],
            "leads": ["cardiology"],
        },
    )
    assert lead.status_code == 201, lead.body
    made.lead_id = payload(lead)["id"]
    return made


def test_a_detractor_opens_a_recovery_complaint_that_escalates_when_overdue(
    runtime: Any, api: Api, clinic: Any, make_patient: Any
) -> None:
    j = Journey(runtime, api, clinic, make_patient)
    appointment, start = visit(runtime, j, days=2)
    next_day = start + timedelta(days=1)
    move_to(runtime, next_day.replace(hour=7, minute=59))
    assert surveys(j) == [], "07:30 is inside quiet hours"
    move_to(runtime, next_day.replace(hour=8, minute=1))
    [survey] = surveys(j)
    sent_at = datetime.fromisoformat(survey.sent_at).astimezone(SHANGHAI)
    assert (sent_at.date(), sent_at.hour, sent_at.minute) == (next_day.date(), 8, 0)
    assert "感谢您的就诊" in survey.body, "the survey's own wording, not a recovery check-in's"

    move_to(runtime, next_day.replace(hour=9))
    response = answer(j, survey, {"score": 3, "comment": "等了两个小时", "waiting_time": 1})
    assert response["risk"] == "watch", "the starter's rule: NPS detractors are looked at"
    [complaint] = complaints(j)
    answered_at = next_day.replace(hour=9)
    assert complaint["source"] == "satisfaction" and complaint["status"] == "open"
    assert complaint["category"] == "waiting_time" and complaint["department"] == "cardiology"
    assert complaint["appointment_id"] == appointment["id"] and complaint["score"] == 3
    assert complaint["clinician"] == "dr-li" and complaint["flagged_by"] == ["score"]
    assert complaint["response_id"] == response["id"]
    assert re.fullmatch(r"C-\d{4}-\d{6}", complaint["reference"])
    deadline = datetime.fromisoformat(complaint["deadline"])
    assert deadline == answered_at + timedelta(hours=24)
    [task] = [t for t in j.tasks() if t["kind"] == "complaint_recovery"]
    assert task["complaint_id"] == complaint["id"] and task["department"] == "cardiology"
    assert REVIEW_URL not in "".join(m.body for m in j.sms()), "never a review link for a low score"

    move_to(runtime, deadline - timedelta(minutes=15))
    assert run_schedule(runtime, "complaint_sweep")["escalated"] == 0, "not before its deadline"
    assert "escalated_at" not in complaints(j)[0]

    move_to(runtime, deadline + timedelta(minutes=1))
    assert run_schedule(runtime, "complaint_sweep")["escalated"] == 1
    [escalated] = complaints(j)
    assert escalated["escalated_to"] == [clinic.lead_id]
    [overdue] = [t for t in j.tasks() if t["kind"] == "complaint_overdue"]
    assert overdue["priority"] == "urgent" and overdue["leads"] == [clinic.lead_id]
    alerts = [
        json.loads(m.body)
        for m in runtime.outbox.messages(channel="topic")
        if "staff-alerts" in m.to and overdue["id"] in m.body
    ]
    assert [a["staff_ids"] for a in alerts] == [[clinic.lead_id]], "the lead, once"
    assert "Wei" not in json.dumps(alerts) and "等了" not in json.dumps(alerts), "ids only"
    assert run_schedule(runtime, "complaint_sweep")["escalated"] == 0, "once"

    # Staff work on it and resolve it; its tasks close, and the patient hears once.
    path = f"/complaints/{escalated['id']}/status"
    staff = clinic.tenant.staff
    moved = api.call("POST", path, staff, {"status": "in_progress", "note": "called back"})
    assert moved.status_code == 200, moved.body
    resolved = api.call(
        "POST", path, staff, {"status": "resolved", "closing_message": "我们已改进复诊流程。"}
    )
    assert resolved.status_code == 200, resolved.body
    runtime.settle()
    assert [t for t in j.tasks() if t["kind"].startswith("complaint")] == []
    closing = [m for m in j.sms() if payload(resolved)["reference"] in m.body]
    assert len(closing) == 1 and "我们已改进" not in closing[0].body, "the answer: email only"


def test_a_promoter_is_thanked_and_a_second_visit_in_the_window_is_not_asked(
    runtime: Any, api: Api, clinic: Any, make_patient: Any
) -> None:
    j = Journey(runtime, api, clinic, make_patient)
    _, start = visit(runtime, j, days=2)
    next_day = start + timedelta(days=1)
    move_to(runtime, next_day.replace(hour=8, minute=1))
    [survey] = surveys(j)
    # Answered late in the evening: the thank-you waits for quiet hours to end (the sweep).
    move_to(runtime, next_day.replace(hour=22, minute=30))
    answer(j, survey, {"score": 10, "comment": "很好", "staff": 5})
    assert complaints(j) == [] and not [t for t in j.tasks() if "complaint" in t["kind"]]
    assert not [m for m in j.sms() if REVIEW_URL in m.body], "not in quiet hours"
    move_to(runtime, (next_day + timedelta(days=1)).replace(hour=8, minute=15))
    assert run_schedule(runtime, "complaint_sweep")["sent"] == 1
    thanks = [m for m in j.sms() if REVIEW_URL in m.body]
    assert len(thanks) == 1
    assert run_schedule(runtime, "complaint_sweep")["sent"] == 0, "once per response"

    # Another visit 5 days later: within the 90 days, no second survey.
    visit(runtime, j, days=3)
    move_to(runtime, local_moment(days=3, hour=12))
    assert len(surveys(j)) == 1


def test_a_flagged_comment_opens_a_complaint_whatever_the_score(
    runtime: Any, api: Api, clinic: Any, make_patient: Any
) -> None:
    j = Journey(runtime, api, clinic, make_patient)
    _, start = visit(runtime, j, days=2)
    move_to(runtime, (start + timedelta(days=1)).replace(hour=10))
    [survey] = surveys(j)
    answer(j, survey, {"score": 9, "comment": "The nurse was RUDE to my mother"})
    [complaint] = complaints(j)
    assert complaint["flagged_by"] == ["keyword"] and complaint["score"] == 9
    assert not [m for m in j.sms() if REVIEW_URL in m.body], "no review link for a complaint"


def test_a_no_show_gets_no_survey(runtime: Any, api: Api, clinic: Any, make_patient: Any) -> None:
    j = Journey(runtime, api, clinic, make_patient)
    start = local_moment(days=2, hour=10)
    appointment = j.book(start)
    move_to(runtime, start + timedelta(days=3))
    assert j.appointment(appointment)["status"] == "noshow"
    assert surveys(j) == []
    assert "satisfaction_survey" not in [d["step"] for d in j.deliveries()]


def test_an_opted_out_patient_gets_no_survey(
    runtime: Any, api: Api, clinic: Any, make_patient: Any
) -> None:
    withdrawn = {"email": {"status": "withdrawn", "method": "app"}}
    j = Journey(runtime, api, clinic, make_patient, consent=withdrawn)
    start = local_moment(days=2, hour=10)
    appointment = j.book(start)
    stop = api.call("POST", "/local/sms-reply", None, {"from": f"+86{j.phone}", "text": "STOP"})
    assert stop.status_code == 202, stop.body
    runtime.settle()
    move_to(runtime, start - timedelta(minutes=30))
    j.act(appointment, "check-in", clinic.tenant.staff)
    j.act(appointment, "fulfil", clinic.tenant.staff)
    move_to(runtime, (start + timedelta(days=1)).replace(hour=12))
    assert surveys(j) == []
    [logged] = [d for d in j.deliveries() if d["step"] == "satisfaction_survey"]
    assert logged["status"] == "suppressed", logged
    assert any("STOP" in reason for reason in logged["reasons"]), logged


def test_nps_and_complaint_figures_by_department_and_clinician_and_a_rebuild_agrees(
    runtime: Any, api: Api, clinic: Any, make_patient: Any
) -> None:
    """Three surveys (a promoter, a passive, a detractor) and the detractor's complaint
    resolved in time: NPS (1 - 1) / 3 = 0 for cardiology and Dr Li; one complaint filed and
    resolved in time; counted once whatever the stream's redeliveries, as a rebuild says."""
    from chalicelib.services.registry import services

    runtime.streams.seed_duplicates(0.5, seed=21)
    try:
        scores = (10, 8, 2)
        for score in scores:
            j = Journey(runtime, api, clinic, make_patient)
            _, start = visit(runtime, j, days=2)
            move_to(runtime, (start + timedelta(days=1)).replace(hour=10))
            [survey] = surveys(j)
            answer(j, survey, {"score": score})
        [complaint] = complaints(j)
        path = f"/complaints/{complaint['id']}/status"
        resolved = api.call("POST", path, clinic.tenant.staff, {"status": "resolved"})
        assert resolved.status_code == 200, resolved.body
        runtime.settle()
    finally:
        runtime.streams.seed_duplicates(0.0, seed=0)
    admin = clinic.tenant.admin

    def figures(measure: str, group_by: str) -> dict[str, dict[str, float]]:
        """Each group's counts over the test's days (its visits may span two months)."""
        report = api.call(
            "GET", f"/analytics/{measure}?granularity=month&group_by={group_by}", admin
        )
        assert report.status_code == 200, report.body
        summed: dict[str, dict[str, float]] = {}
        for row in payload(report)["rows"]:
            group = summed.setdefault(row.get("group", "all"), {})
            for name, value in row["values"].items():
                group[name] = group.get(name, 0) + value
        return summed

    by_clinician = figures("satisfaction", "clinician")["dr-li"]
    assert (by_clinician["responses"], by_clinician["promoters"], by_clinician["detractors"]) == (
        3,
        1,
        1,
    )
    assert figures("satisfaction", "department")["cardiology"]["passives"] == 1
    [row] = payload(api.call("GET", "/analytics/complaints?granularity=month", admin))["rows"]
    assert (row["values"]["filed"], row["values"]["resolved_in_time"]) == (1, 1)
    assert row["values"]["resolved_in_time_share"] == 1.0
    assert row["values"]["median_hours_to_resolution"] == 4
    assert figures("complaints", "source")["satisfaction"]["filed"] == 1
    assert services().analytics.rebuild(clinic.tenant.id, check_only=True)["differing"] == 0
