"""Analytics kept from the table's stream (polled, delivered at least once, with seeded duplicate
deliveries): the figures the API reads equal what happened, counted once; a rebuild from the
records agrees exactly; CSV; department-restricted staff; another hospital sees nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Api, payload
from tests.integration.test_audit_api import _member
from tests.journeys.support import SHANGHAI, Journey, iso, local_moment, move_to, unique_phone
from tests.journeys.test_aftercare_journey import URGENT, Aftercare

pytestmark = pytest.mark.journey


def figures(api: Api, token: str, query: str) -> dict[str, Any]:
    response = api.call("GET", f"/analytics/{query}", token)
    assert response.status_code == 200, response.body
    found: dict[str, Any] = payload(response)
    return found


def whole(report: dict[str, Any]) -> dict[str, float]:
    """The figures of every row added up (a month's rows, or a week's spanning two months)."""
    total: dict[str, float] = {}
    for row in report["rows"]:
        for name, value in row["values"].items():
            total[name] = total.get(name, 0) + value
    return total


def assert_kept_counters_are_the_records_totals(tenant_id: str) -> None:
    from chalicelib.services.registry import services

    report = services().analytics.rebuild(tenant_id, check_only=True)
    assert report["differing"] == 0 and report["counters"] > 0, report
    totals = services().analytics.totals(tenant_id)
    assert services().analytics.kept(tenant_id) == {
        key: {f: n for f, n in fields.items() if n}
        for key, fields in totals.items()
        if any(fields.values())
    }


def test_a_clinics_week_counted_once_and_a_rebuild_agrees(
    runtime: Any, api: Api, journey: Any, make_patient: Any
) -> None:
    runtime.streams.seed_duplicates(0.5, seed=12)  # half the batches come twice
    try:
        first: Journey = journey()
        clinic, admin = first.clinic, first.clinic.tenant.admin
        second = Journey(runtime, api, clinic, make_patient)
        third = Journey(runtime, api, clinic, make_patient)
        visit = local_moment(days=2, hour=10)
        kept = first.book(visit)
        first.act(kept, "confirm")
        missed = second.book(visit + timedelta(minutes=30))
        cancelled = third.book(visit + timedelta(hours=1))
        third.act(cancelled, "cancel")
        move_to(runtime, visit + timedelta(minutes=5))
        first.act(kept, "check-in", clinic.tenant.staff)
        first.act(kept, "fulfil", clinic.tenant.staff)
        move_to(runtime, visit + timedelta(days=1))  # the missed visit is marked by its journey
        assert second.appointment(missed)["status"] == "noshow"
    finally:
        runtime.streams.seed_duplicates(0.0, seed=0)
    assert runtime.streams.delivered > 0

    appointments = whole(figures(api, admin, "appointments?granularity=day"))
    assert appointments["booked"] == 3
    assert appointments["confirmed_app"] == 1
    assert appointments["cancelled_by_patient"] == 1
    assert (appointments["attended"], appointments["noshow"]) == (1, 1)
    # Confirmed in the app within the hour of the confirmation text: the first bucket (<= 1 h).
    assert appointments["median_hours_to_answer"] == 1
    by_type = figures(api, admin, "appointments?group_by=type")
    assert {row["group"] for row in by_type["rows"]} == {"follow_up"}
    messages = figures(api, admin, "messages?group_by=step")
    sent = {row["group"]: row["values"]["sent"] for row in messages["rows"]}
    assert sent["confirmation"] == 3
    by_channel = whole(figures(api, admin, "messages?group_by=channel"))
    assert by_channel["sms_segments"] >= by_channel["sent"]
    every = whole(figures(api, admin, "messages"))
    # Texts only, to China (the hospital's country): priced per segment. Each day's cost is
    # rounded to the micro-dollar, so the days' sum matches to within that.
    assert every["sent_sms"] == every["sent"]
    assert every["estimated_cost_usd"] == pytest.approx(every["sms_segments"] * 0.0197, abs=1e-5)

    # The counters kept from the stream are what the records add up to, exactly.
    assert_kept_counters_are_the_records_totals(clinic.tenant.id)
    from chalicelib.services.registry import services

    tenant_id = clinic.tenant.id
    before = figures(api, admin, "appointments?granularity=week&group_by=department")
    services().analytics.rebuild(tenant_id)
    assert figures(api, admin, "appointments?granularity=week&group_by=department") == before


def test_csv_and_what_each_reader_may_see(
    runtime: Any, api: Api, journey: Any, make_clinic: Any
) -> None:
    j: Journey = journey()
    j.book(local_moment(days=3, hour=11))
    runtime.settle()
    admin = j.clinic.tenant.admin
    response = api.call(
        "GET", "/analytics/appointments?group_by=department", admin, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"].startswith("text/csv")
    lines = response.body.decode().splitlines()
    header = lines[0].split(",")
    assert header[:2] == ["period", "group"] and "booked" in header
    assert lines[1].split(",")[1] == "cardiology"

    # Another hospital's admin sees its own (empty) figures, never these.
    other = make_clinic()
    assert figures(api, other.tenant.admin, "appointments")["rows"] == []
    # A patient may not read analytics.
    assert api.call("GET", "/analytics/appointments", j.token).status_code == 403

    # Staff assigned to departments read by department, theirs only.
    _, nurse = _member(runtime, api, j.clinic.tenant, departments=["dermatology"])
    refused = api.call("GET", "/analytics/appointments", nurse)
    assert refused.status_code == 403
    assert payload(refused)["error"]["code"] == "departments_only"
    assert figures(api, nurse, "appointments?group_by=department")["rows"] == []

    for query, field in (
        ("appointments?granularity=hour", "granularity"),
        ("appointments?group_by=colour", "group_by"),
        ("appointments?from=2026-13-01", "from"),
        ("appointments?from=2026-06-01&to=2026-01-01", "to"),
        ("appointments?granularity=day&from=2020-01-01&to=2026-01-01", "to"),
        ("appointments?from=0001-01-01", "from"),
        ("overview?month=0001-01", "month"),
    ):
        bad = api.call("GET", f"/analytics/{query}", admin)
        assert bad.status_code == 400, (query, bad.body)
        assert payload(bad)["error"]["details"][0]["path"] == field
    assert api.call("GET", "/analytics/happiness", admin).status_code == 404


def test_aftercare_check_ins_staff_action_and_the_busy_slot_heat_map(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    a = Aftercare(runtime, api, make_clinic(capacity=5), make_patient)
    start = local_moment(days=0, hour=10, minute=1)
    a.surgery()
    move_to(runtime, start + timedelta(days=1))
    a.answer(a.sms()[-1], URGENT)
    [task] = a.tasks()
    move_to(runtime, start + timedelta(days=1, hours=2))
    closed = api.call("POST", f"/tasks/{task['id']}/close", a.clinic.tenant.staff)
    assert closed.status_code == 200, closed.body
    visit = local_moment(days=3, hour=10)
    a.book_recheck(days=3)
    runtime.settle()
    admin = a.clinic.tenant.admin
    aftercare = whole(figures(api, admin, "aftercare"))
    assert aftercare["checkins_sent"] == 1 and aftercare["checkins_answered"] == 1
    assert aftercare["checkins_urgent"] == 1 and aftercare["response_rate"] == 1
    assert (aftercare["tasks_opened"], aftercare["tasks_closed"]) == (1, 1)
    urgent = figures(api, admin, "aftercare?group_by=task_kind")["rows"]
    assert [(r["group"], r["values"]["median_hours_to_staff_action"]) for r in urgent] == [
        ("urgent_answer", 4.0)
    ]
    day = visit.date().isoformat()
    [slots] = figures(api, admin, f"slots?granularity=day&from={day}&to={day}&group_by=department")[
        "rows"
    ]
    cell = f"{visit.isoweekday()}_10"
    # Dr Li's schedule: two 30-minute slots an hour, five places each.
    assert slots["group"] == "cardiology"
    assert (slots["values"][f"booked_{cell}"], slots["values"][f"capacity_{cell}"]) == (1, 10)
    assert slots["values"][f"share_{cell}"] == 0.1
    assert_kept_counters_are_the_records_totals(a.clinic.tenant.id)


def test_the_overview_sets_the_month_beside_the_last_and_a_year_before(
    runtime: Any, api: Api, journey: Any
) -> None:
    from chalicelib import clock

    j: Journey = journey()
    j.book(local_moment(days=2, hour=9))
    runtime.settle()
    month = clock.now().astimezone(SHANGHAI).strftime("%Y-%m")
    response = api.call("GET", f"/analytics/overview?month={month}", j.clinic.tenant.admin)
    assert response.status_code == 200, response.body
    overview = payload(response)
    assert overview["month"] == month
    booked = overview["figures"]["appointments.booked"]
    assert booked == {"month": 1, "previous_month": 0, "same_month_last_year": 0}
    assert overview["figures"]["appointments.noshow_rate"]["previous_month"] is None
    assert overview["figures"]["messages.sent"]["month"] >= 1
    bad = api.call("GET", "/analytics/overview?month=2027-13", j.clinic.tenant.admin)
    assert bad.status_code == 400 and payload(bad)["error"]["details"][0]["path"] == "month"


def test_return_visits_counted_once_per_patient_and_period(
    runtime: Any, api: Api, journey: Any, make_patient: Any
) -> None:
    back: Journey = journey(member_class="vip")  # a member; `once` is not
    once = Journey(runtime, api, back.clinic, make_patient)
    staff, admin = back.clinic.tenant.staff, back.clinic.tenant.admin
    first_visit = local_moment(days=2, hour=9)
    first = back.book(first_visit)
    only = once.book(first_visit + timedelta(minutes=30))
    move_to(runtime, first_visit + timedelta(minutes=35))
    for j, appointment in ((back, first), (once, only)):
        j.act(appointment, "check-in", staff)
        j.act(appointment, "fulfil", staff)
    second = back.book(first_visit + timedelta(days=7))
    move_to(runtime, first_visit + timedelta(days=7, minutes=5))
    back.act(second, "check-in", staff)
    back.act(second, "fulfil", staff)  # fulfilled after arrived: the same visit, counted once

    days = whole(figures(api, admin, "return_visits?granularity=day"))
    assert days["patients_seen"] == 3, "two patients on the first day, one a week later"
    assert days["patients_returned"] == 1, "the first day's returning patient"
    [first_day] = [
        row
        for row in figures(api, admin, "return_visits?granularity=day")["rows"]
        if row["period"] == first_visit.date().isoformat()
    ]
    assert first_day["values"]["return_rate"] == 0.5
    # Members against everyone else: the member came back, the other patient did not.
    by_class: dict[str, dict[str, float]] = {}
    report = figures(api, admin, "return_visits?granularity=month&group_by=member_class")
    for row in report["rows"]:
        group = by_class.setdefault(row["group"], {})
        for name in ("patients_seen", "patients_returned"):
            group[name] = group.get(name, 0) + row["values"].get(name, 0)
    assert by_class["vip"]["patients_returned"] == 1 and by_class["vip"]["patients_seen"] >= 1
    assert by_class["none"] == {"patients_seen": 1, "patients_returned": 0}
    assert_kept_counters_are_the_records_totals(back.clinic.tenant.id)
    # Erasing the returning patient removes their visits and markers; the counts (no one's) stay.
    reason = {"reason": "The patient asked to be forgotten; identity checked"}
    erased = api.call("POST", f"/patients/{back.patient['id']}/erasure", admin, reason)
    assert erased.status_code == 200, erased.body
    runtime.settle()
    from chalicelib.settings import get_settings

    scanned = runtime.client("dynamodb").scan(TableName=get_settings().analytics_table_name)
    assert back.patient["id"] not in json.dumps(scanned["Items"])  # tests only: never scanned
    assert whole(figures(api, admin, "return_visits?granularity=day"))["patients_returned"] == 1


def test_a_recall_that_fell_due_booked_and_attended_is_adherence(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    from tests.journeys.test_recall_journey import RULE, sweep

    clinic = make_clinic(capacity=5)
    saved = api.call(
        "PUT", "/recall-rules/review-30d", clinic.tenant.admin, {**RULE, "after_days": 30}
    )
    assert saved.status_code == 200, saved.body
    patient = make_patient(
        clinic.tenant, phone=unique_phone(), medical={"conditions": ["diabetes"]}
    )
    move_to(runtime, local_moment(days=30, hour=9, minute=30))
    sweep(runtime)
    move_to(runtime, local_moment(days=0, hour=10, minute=1))  # the invitation goes out
    token = runtime.token("patient", clinic.tenant.id, patient["id"])
    visit = local_moment(days=3, hour=10)
    slot = {"schedule_id": clinic.schedule_id, "start": iso(visit)}
    booked = api.call("POST", "/appointments", token, {"slot": slot, "type": "follow_up"})
    assert booked.status_code == 201, booked.body
    move_to(runtime, visit + timedelta(minutes=5))
    for action in ("check-in", "fulfil"):
        path = f"/appointments/{payload(booked)['id']}/{action}"
        assert api.call("POST", path, clinic.tenant.staff).status_code == 200
    runtime.settle()
    follow_ups = whole(figures(api, clinic.tenant.admin, "follow_ups?group_by=kind"))
    assert (follow_ups["followups_due"], follow_ups["followups_converted"]) == (1, 1)
    assert follow_ups["followups_attended"] == 1 and follow_ups["adherence"] == 1
    [row] = figures(api, clinic.tenant.admin, "follow_ups?group_by=plan")["rows"]
    assert row["group"] == "recall:review-30d"
    assert_kept_counters_are_the_records_totals(clinic.tenant.id)
    # The rule carries its own effect.
    rule = payload(api.call("GET", "/recall-rules/review-30d", clinic.tenant.staff))
    assert rule["conversion"] == {
        "due": 1,
        "converted": 1,
        "attended": 1,
        "conversion": 1.0,
        "adherence": 1.0,
    }


def test_confirmations_by_keyword_and_a_stop_as_an_opt_out_of_texts(
    runtime: Any, api: Api, journey: Any
) -> None:
    from chalicelib.services.registry import services

    j: Journey = journey()
    j.book(local_moment(days=3, hour=11))  # the confirmation comes from the hospital's number
    assert j.sms(), "the confirmation was texted"
    answer = api.call("POST", "/local/sms-reply", None, {"from": f"+86{j.phone}", "text": "确认"})
    assert answer.status_code == 202, answer.body
    runtime.settle()
    appointments = whole(figures(api, j.clinic.tenant.admin, "appointments?granularity=day"))
    assert appointments["confirmed_sms"] == appointments["sms_keyword_确认"] == 1
    assert appointments["confirmed"] == 1  # the keyword is a detail of confirmed_sms
    stop = api.call("POST", "/local/sms-reply", None, {"from": f"+86{j.phone}", "text": "STOP"})
    assert stop.status_code == 202, stop.body
    runtime.settle()
    admin = j.clinic.tenant.admin
    by_channel = figures(api, admin, "messages?group_by=channel")["rows"]
    assert sum(row["values"].get("opted_out", 0) for row in by_channel) == 1
    assert {row["group"] for row in by_channel if row["values"].get("opted_out")} == {"sms"}
    overview = payload(api.call("GET", "/analytics/overview", admin))
    assert overview["figures"]["messages.opted_out"]["month"] == 1
    # A STOP is keyed by the phone, not the hospital: a rebuild keeps the count as kept.
    assert services().analytics.rebuild(j.clinic.tenant.id, check_only=True)["differing"] == 0


def test_a_missed_visit_puts_the_patient_on_the_drifting_away_list_until_they_come(
    runtime: Any, api: Api, journey: Any, make_patient: Any
) -> None:
    runtime.streams.seed_duplicates(0.5, seed=5)
    try:
        lost: Journey = journey()
        clinic, admin = lost.clinic, lost.clinic.tenant.admin
        kept = Journey(runtime, api, clinic, make_patient)
        visit = local_moment(days=2, hour=10)
        missed = lost.book(visit)
        attended = kept.book(visit + timedelta(minutes=30))
        kept.act(attended, "confirm")
        move_to(runtime, visit + timedelta(minutes=35))
        kept.act(attended, "check-in", clinic.tenant.staff)
        kept.act(attended, "fulfil", clinic.tenant.staff)
        move_to(runtime, visit + timedelta(days=1))  # the journey marks the missed visit
        assert lost.appointment(missed)["status"] == "noshow"
    finally:
        runtime.streams.seed_duplicates(0.0, seed=0)

    # Computed from what the patient's records say, independently of the analytics.
    unanswered = [t for t in lost.tasks() if t["kind"] in ("no_answer", "checkin_unanswered")]
    expected_parts: list[dict[str, Any]] = [
        {"part": "recent_no_shows", "count": 1, "points": 3, "latest": visit.date().isoformat()}
    ]
    if unanswered:
        expected_parts.append(
            {
                "part": "unanswered_outreach",
                "count": len(unanswered),
                "points": 2 * len(unanswered),
                "latest": max(
                    datetime.fromisoformat(t["created_at"]).astimezone(SHANGHAI).date()
                    for t in unanswered
                ).isoformat(),
            }
        )
    listed = payload(api.call("GET", "/analytics/drifting-away", admin))
    assert [p["patient_id"] for p in listed["items"]] == [lost.patient["id"]]
    [patient] = listed["items"]
    assert patient["parts"] == expected_parts
    assert patient["score"] == sum(part["points"] for part in expected_parts)
    assert_kept_counters_are_the_records_totals(clinic.tenant.id)  # signals too

    # They book again and come: the visit answers the missed one.
    comeback = lost.book(local_moment(days=1, hour=10))
    move_to(runtime, local_moment(days=1, hour=10, minute=5))
    lost.act(comeback, "check-in", clinic.tenant.staff)
    lost.act(comeback, "fulfil", clinic.tenant.staff)
    runtime.settle()
    assert payload(api.call("GET", "/analytics/drifting-away", admin))["items"] == []
    assert_kept_counters_are_the_records_totals(clinic.tenant.id)
    # Another hospital's list is its own; a patient may not read it; a bad limit is named.
    other = journey().clinic.tenant.admin
    assert payload(api.call("GET", "/analytics/drifting-away", other))["items"] == []
    assert api.call("GET", "/analytics/drifting-away", lost.token).status_code == 403
    bad = api.call("GET", "/analytics/drifting-away?limit=0", admin)
    assert bad.status_code == 400 and payload(bad)["error"]["details"][0]["path"] == "limit"


def test_a_deleted_patient_still_counts_and_a_rebuild_agrees(
    runtime: Any, api: Api, journey: Any
) -> None:
    """A soft-deleted patient's records are still there: what they did counts in the figures
    and in a rebuild alike, even when the stream brings a visit after the deletion; the
    drifting-away list leaves them out. (An erased patient's records are gone: see the return
    visits test.)"""
    gone: Journey = journey()
    clinic, admin, staff = gone.clinic, gone.clinic.tenant.admin, gone.clinic.tenant.staff
    missed_at = local_moment(days=2, hour=10)
    missed = gone.book(missed_at)
    move_to(runtime, missed_at + timedelta(days=1))  # the journey marks the missed visit
    assert gone.appointment(missed)["status"] == "noshow"
    assert [p["patient_id"] for p in figures(api, admin, "drifting-away")["items"]] == [
        gone.patient["id"]
    ]
    came_at = local_moment(days=1, hour=10)
    came = gone.book(came_at)
    move_to(runtime, came_at + timedelta(minutes=5))
    gone.act(came, "check-in", staff)
    gone.act(came, "fulfil", staff)
    # Deleted before the stream brings the visit (nothing has settled since the fulfilment).
    deleted = api.call("DELETE", f"/patients/{gone.patient['id']}", staff)
    assert deleted.status_code == 204, deleted.body
    runtime.settle()

    assert whole(figures(api, admin, "return_visits?granularity=month"))["patients_seen"] >= 1
    appointments = whole(figures(api, admin, "appointments?granularity=month"))
    assert (appointments["attended"], appointments["noshow"]) == (1, 1)
    assert figures(api, admin, "drifting-away")["items"] == []
    assert_kept_counters_are_the_records_totals(clinic.tenant.id)


def test_once_an_erasure_has_begun_the_stream_keeps_nothing_that_names_the_patient(
    runtime: Any, api: Api, journey: Any
) -> None:
    """Erasure marks the profile first, then forgets the analytics rows that name the patient,
    then deletes their records: a visit the stream brings in between moves the counters (no
    one's) but writes no visit, marker or signal beside the patient's id."""
    from chalicelib.settings import get_settings
    from chalicelib.store.analytics import AnalyticsRepository
    from chalicelib.store.patients import PatientRepository
    from chalicelib.tenant_scope import acting_for

    gone: Journey = journey()
    clinic, admin, staff = gone.clinic, gone.clinic.tenant.admin, gone.clinic.tenant.staff
    came_at = local_moment(days=2, hour=10)
    came = gone.book(came_at)
    move_to(runtime, came_at + timedelta(minutes=5))
    for action in ("check-in", "fulfil"):  # not settled: the stream still holds the visit
        done = api.call("POST", f"/appointments/{came['id']}/{action}", staff)
        assert done.status_code == 200, done.body
    tenant_id, patient_id = clinic.tenant.id, gone.patient["id"]
    # The erasure's first steps, as ErasureService.erase takes them: the profile marked, then
    # the analytics rows that name the patient forgotten; then the stream brings the visit.
    with acting_for(tenant_id):
        patients = PatientRepository()
        profile = patients.get_including_deleted(tenant_id, patient_id)
        assert profile is not None
        marked = {**profile, "deleted_at": iso(came_at), "erasing_at": iso(came_at)}
        patients.replace(tenant_id, profile, marked)
        AnalyticsRepository().forget_patient(tenant_id, patient_id)
    runtime.settle()

    scanned = runtime.client("dynamodb").scan(TableName=get_settings().analytics_table_name)
    assert patient_id not in json.dumps(scanned["Items"])  # tests only: never scanned
    assert whole(figures(api, admin, "appointments?granularity=month"))["attended"] == 1
