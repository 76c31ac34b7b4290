"""A year of one hospital's activity, generated (seeded) on the virtual clock of a runtime of its
own: patients book, confirm in the app, cancel, reschedule, come or miss their visits; a chronic
recall invites diabetic patients every 60 days; a campaign with a control group goes out. The
test keeps its own log of what it did and what reached the patients' phones, computes every
measure from that log alone, and compares with what the API reports (and with a rebuild)."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ALL_WEEK, START, Api, payload, tenant_body
from tests.journeys.support import iso

pytestmark = pytest.mark.journey

TENANT = "t-year000001"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PATIENTS = 14
WEEKS = 52
RETURN_WINDOW = 90
RECALL = {
    "name": "Diabetes review every 60 days",
    "match": {"condition": "diabetes"},
    "after_days": 60,
    "book": {"department": "cardiology", "appointment_type": "follow_up"},
}
CAMPAIGN_WEEK = 20
CAMPAIGN_GOAL_DAYS = 14


@pytest.fixture
def hospital(own_runtime: Any, api: Api) -> Iterator[Any]:
    import app
    from local.schedules import ScheduleRunner

    operator = own_runtime.token("operator")
    body = tenant_body(
        TENANT,
        journey={"enabled": False},
        departments=[
            {"id": "cardiology", "name": "心内科"},
            {"id": "dermatology", "name": "皮肤科"},
        ],
        campaigns={"rate_per_minute": 100},
    )
    assert api.call("POST", "/tenants", operator, body).status_code == 201
    admin = own_runtime.token("admin", TENANT)
    for clinician, department, schedule in (
        ("dr-li", "cardiology", "cardio"),
        ("dr-wang", "dermatology", "derma"),
    ):
        saved = api.call(
            "PUT", f"/clinicians/{clinician}", admin, {"name": clinician, "department": department}
        )
        assert saved.status_code == 200, saved.body
        saved = api.call(
            "PUT",
            f"/schedules/{schedule}",
            admin,
            {
                "department": department,
                "clinician": clinician,
                "location": "Building 2",
                "weekly_hours": ALL_WEEK,
                "slot_minutes": 30,
                "capacity": 4,
            },
        )
        assert saved.status_code == 200, saved.body
    assert api.call("PUT", "/recall-rules/diabetes", admin, RECALL).status_code == 200
    runner = ScheduleRunner(app, own_runtime.clock, only=("recall_sweep",)).start()
    yield own_runtime
    runner.stop()


@dataclass
class Booking:
    id: str
    patient: str
    department: str
    type: str
    booked_at: datetime
    start: datetime
    changes: list[tuple[str, datetime]] = field(default_factory=list)  # (what, when)
    outcome: str = "booked"  # cancelled_by_patient | cancelled_by_clinic | attended | noshow


@dataclass
class Year:
    """What the test did, in its own words: the raw events every measure is computed from."""

    bookings: list[Booking] = field(default_factory=list)


def day(moment: datetime) -> date:
    """The hospital's day of a moment."""
    return moment.astimezone(SHANGHAI).date()


def month_of(d: date) -> str:
    return f"{d.year}-{d.month:02d}"


def month(moment: datetime) -> str:
    """The hospital's month of a moment."""
    return month_of(day(moment))


class Player:
    """Plays generated actions in time order on the virtual clock."""

    def __init__(self, runtime: Any, api: Api, seed: int) -> None:
        self.runtime, self.api, self.rng = runtime, api, random.Random(seed)
        self.queue: list[tuple[datetime, int, Callable[[], None]]] = []
        self.order = itertools.count()
        self.staff = runtime.token("staff", TENANT)
        self.year = Year()
        self.taken: Counter[tuple[str, datetime]] = Counter()

    def at(self, moment: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self.queue, (moment, next(self.order), action))

    def run_until(self, end: datetime) -> None:
        while self.queue and self.queue[0][0] <= end:
            moment, _, action = heapq.heappop(self.queue)
            self.runtime.clock.set(max(moment, self.runtime.clock.now()))
            self.runtime.settle()
            action()
        self.runtime.clock.set(max(end, self.runtime.clock.now()))
        self.runtime.settle()

    def free_slot(self, schedule: str, after: datetime) -> datetime:
        """A free half-hour slot in opening hours (09:00-11:30, 13:00-16:30) days ahead."""
        while True:
            local = after.astimezone(SHANGHAI) + timedelta(days=self.rng.randint(2, 20))
            start = local.replace(
                hour=self.rng.choice((9, 10, 11, 13, 14, 15, 16)),
                minute=self.rng.choice((0, 30)),
                second=0,
                microsecond=0,
            )
            if self.taken[(schedule, start)] < 4:
                self.taken[(schedule, start)] += 1
                return start

    def book(self, patient: dict[str, Any], department: str, kind: str) -> None:
        now = self.runtime.clock.now()
        schedule = "cardio" if department == "cardiology" else "derma"
        start = self.free_slot(schedule, now)
        token = self.runtime.token("patient", TENANT, patient["id"])
        response = self.api.call(
            "POST",
            "/appointments",
            token,
            {"slot": {"schedule_id": schedule, "start": iso(start)}, "type": kind},
        )
        assert response.status_code == 201, response.body
        created = payload(response)
        booking = Booking(created["id"], patient["id"], department, kind, now, start)
        self.year.bookings.append(booking)
        roll = self.rng.random()
        if roll < 0.45:
            self.at(now + timedelta(hours=2), lambda: self.act(booking, "confirm", token))
        if 0.45 <= roll < 0.55:
            self.at(now + timedelta(hours=3), lambda: self.act(booking, "cancel", token))
        elif 0.55 <= roll < 0.6:
            self.at(now + timedelta(hours=3), lambda: self.act(booking, "cancel", self.staff))
        elif 0.6 <= roll < 0.7:
            self.at(now + timedelta(hours=4), lambda: self.reschedule(booking, token))
        self.at(start + timedelta(minutes=10), lambda: self.visit(booking))

    def act(self, booking: Booking, action: str, token: str, body: Any = None) -> None:
        if booking.outcome != "booked":
            return
        response = self.api.call("POST", f"/appointments/{booking.id}/{action}", token, body)
        assert response.status_code == 200, (action, response.body)
        now = self.runtime.clock.now()
        if action == "confirm":
            booking.changes.append(("confirmed_app", now))
        elif action == "cancel":
            who = "patient" if token != self.staff else "clinic"
            booking.outcome = f"cancelled_by_{who}"
            booking.changes.append((booking.outcome, now))

    def reschedule(self, booking: Booking, token: str) -> None:
        if booking.outcome != "booked":
            return
        schedule = "cardio" if booking.department == "cardiology" else "derma"
        start = self.free_slot(schedule, self.runtime.clock.now())
        body = {"slot": {"schedule_id": schedule, "start": iso(start)}}
        response = self.api.call("POST", f"/appointments/{booking.id}/reschedule", token, body)
        assert response.status_code == 200, response.body
        booking.changes.append(("rescheduled", self.runtime.clock.now()))
        booking.start = start
        self.at(start + timedelta(minutes=10), lambda: self.visit(booking))

    def visit(self, booking: Booking) -> None:
        now = self.runtime.clock.now()
        if booking.outcome != "booked" or now < booking.start:
            return  # cancelled, or this was the time before a reschedule
        if now - booking.start > timedelta(hours=1):
            return  # an earlier time's visit, rescheduled since
        if self.rng.random() < 0.8:
            for step in ("check-in", "fulfil"):
                path = f"/appointments/{booking.id}/{step}"
                assert self.api.call("POST", path, self.staff).status_code == 200
            booking.outcome = "attended"
        else:
            path = f"/appointments/{booking.id}/no-show"
            response = self.api.call("POST", path, self.staff)
            assert response.status_code == 200, response.body
            booking.outcome = "noshow"


def expected_appointments(year: Year) -> dict[str, Counter[str]]:
    by_month: dict[str, Counter[str]] = defaultdict(Counter)
    for b in year.bookings:
        by_month[month(b.booked_at)]["booked"] += 1
        for what, when in b.changes:
            by_month[month(when)][what] += 1
        if b.outcome in ("attended", "noshow"):
            by_month[month(b.start)][b.outcome] += 1
    return by_month


def expected_return_visits(year: Year) -> dict[str, Counter[str]]:
    visits: dict[str, list[date]] = defaultdict(list)
    for b in year.bookings:
        if b.outcome == "attended":
            visits[b.patient].append(day(b.start))
    by_month: dict[str, Counter[str]] = defaultdict(Counter)
    for days in visits.values():
        seen = {month_of(d) for d in days}
        returned = {
            month_of(d) for d in days if any(0 < (e - d).days <= RETURN_WINDOW for e in days)
        }
        for m in seen:
            by_month[m]["patients_seen"] += 1
        for m in returned:
            by_month[m]["patients_returned"] += 1
    return by_month


def api_months(api: Api, token: str, query: str) -> dict[str, dict[str, float]]:
    response = api.call("GET", f"/analytics/{query}", token)
    assert response.status_code == 200, response.body
    return {row["period"]: row["values"] for row in payload(response)["rows"]}


def make_patients(api: Api, staff: str) -> list[dict[str, Any]]:
    """Half of them diabetic (the recall rule's and the campaign's segment)."""
    patients = []
    for n in range(PATIENTS):
        body: dict[str, Any] = {
            "name": {"given": f"Year{n}", "family": "Zhang"},
            "phone": f"1390004{n:04d}",
            "preferred_channels": ["sms"],
        }
        if n % 2 == 0:
            body["medical"] = {"conditions": ["diabetes"]}
        created = api.call("POST", "/patients", staff, body)
        assert created.status_code == 201, created.body
        patients.append(payload(created))
    return patients


def play_year(
    hospital: Any, api: Api, player: Player, patients: list[dict[str, Any]]
) -> dict[str, Any]:
    """Two bookings a week by random patients, and the campaign in its week; returns it."""
    campaign: dict[str, Any] = {}

    def start_campaign() -> None:
        response = api.call(
            "POST",
            "/campaigns",
            player.staff,
            {
                "segment": "chronic",
                "message": {
                    "text": {"zh-CN": "{{clinic}}：{{first_name}}您好，请预约复查 {{link}}"}
                },
                "control_group": {"percent": 40},
                "goal": {
                    "appointment_type": "follow_up",
                    "department": "cardiology",
                    "within_days": CAMPAIGN_GOAL_DAYS,
                },
            },
            headers={"Idempotency-Key": "year-campaign"},
        )
        assert response.status_code == 201, response.body
        campaign.update(payload(response), started_at=hospital.clock.now())

    def booking(patient: dict[str, Any], department: str, kind: str) -> Callable[[], None]:
        return lambda: player.book(patient, department, kind)

    for week in range(WEEKS):
        monday = START + timedelta(weeks=week, hours=1)  # 10:00 in Shanghai
        for _ in range(2):
            patient = player.rng.choice(patients)
            department = player.rng.choice(("cardiology", "cardiology", "dermatology"))
            kind = player.rng.choice(("follow_up", "follow_up", "check_up", "first_visit"))
            moment = monday + timedelta(
                days=player.rng.randint(0, 6), hours=player.rng.randint(0, 6)
            )
            player.at(moment, booking(patient, department, kind))
        if week == CAMPAIGN_WEEK:
            player.at(monday + timedelta(hours=5), start_campaign)
        player.run_until(monday + timedelta(weeks=1) - timedelta(hours=2))
    player.run_until(hospital.clock.now() + timedelta(days=25))  # the last visits
    assert campaign, "the campaign started"
    return campaign


def check_appointments(api: Api, admin: str, year: Year, span: str) -> None:
    expected = expected_appointments(year)
    reported = api_months(api, admin, f"appointments?granularity=month&{span}")
    fields = (
        "booked",
        "confirmed_app",
        "cancelled_by_patient",
        "cancelled_by_clinic",
        "rescheduled",
        "attended",
        "noshow",
    )
    for period in sorted(set(expected) | set(reported)):
        got = {f: int(reported.get(period, {}).get(f, 0)) for f in fields}
        assert got == {f: expected[period][f] for f in fields}, period
        kept, missed = expected[period]["attended"], expected[period]["noshow"]
        if kept + missed:
            assert reported[period]["noshow_rate"] == round(missed / (kept + missed), 4)
    assert sum(c["booked"] for c in expected.values()) == len(year.bookings) > 80


def check_return_visits(api: Api, admin: str, year: Year, span: str) -> None:
    expected = expected_return_visits(year)
    reported = api_months(api, admin, f"return_visits?granularity=month&{span}")
    for period in sorted(set(expected) | set(reported)):
        for f in ("patients_seen", "patients_returned"):
            assert int(reported.get(period, {}).get(f, 0)) == expected[period][f], (period, f)


def check_messages(
    hospital: Any, api: Api, admin: str, patients: list[dict[str, Any]], span: str
) -> None:
    """What reached the phones (recall invitations, the campaign), by the month it was sent."""
    sent: Counter[str] = Counter()
    for patient in patients:
        for message in hospital.outbox.messages(to=patient["phone"], channel="sms"):
            sent[month(datetime.fromisoformat(message.sent_at))] += 1
    reported = api_months(api, admin, f"messages?granularity=month&{span}")
    assert {p: int(v["sent_sms"]) for p, v in reported.items() if v.get("sent_sms")} == {
        p: n for p, n in sent.items() if n
    }
    assert sum(sent.values()) > 0


def check_follow_ups(
    api: Api, admin: str, staff: str, patients: list[dict[str, Any]], span: str
) -> None:
    """Each diabetic patient's recall cycles as the care-journeys record them."""
    due: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    for patient in patients:
        items = payload(api.call("GET", f"/patients/{patient['id']}/care-journeys", staff))["items"]
        for recall in (i for i in items if i["kind"] == "recall"):
            cycles = {c["due_date"]: c["outcome"] for c in recall.get("cycles", [])}
            if recall["status"] == "invited":
                cycles.setdefault(recall["due_date"], "invited")
            for due_date, outcome in cycles.items():
                if outcome in ("converted", "unconverted", "visited", "invited"):
                    due[due_date[:7]] += 1
                    converted[due_date[:7]] += outcome == "converted"
    reported = api_months(api, admin, f"follow_ups?granularity=month&{span}")
    for name, counted in (("followups_due", due), ("followups_converted", converted)):
        got = {p: int(v[name]) for p, v in reported.items() if v.get(name)}
        assert got == {p: n for p, n in counted.items() if n}, name
    rule = payload(api.call("GET", "/recall-rules/diabetes", staff))
    assert rule["conversion"]["due"] == sum(due.values()) > 0


def check_campaign(
    hospital: Any,
    api: Api,
    staff: str,
    year: Year,
    patients: list[dict[str, Any]],
    campaign: dict[str, Any],
) -> None:
    """Who was held out is who got no campaign text; conversions counted from the log, from the
    moment the campaign reached the segment (the minute it started: all at once)."""
    from chalicelib.domain import outreach_effect

    groups: dict[str, dict[str, datetime]] = {"control": {}, "messaged": {}}
    for patient in patients[::2]:  # the diabetic: the chronic segment
        texts = [
            m
            for m in hospital.outbox.messages(to=patient["phone"], channel="sms")
            if "请预约复查" in m.body
        ]
        group = "messaged" if texts else "control"
        groups[group][patient["id"]] = campaign["started_at"]
    conversions = {
        name: sum(
            any(
                b.patient == patient_id
                and b.type == "follow_up"
                and b.department == "cardiology"
                and at <= b.booked_at <= at + timedelta(days=CAMPAIGN_GOAL_DAYS)
                for b in year.bookings
            )
            for patient_id, at in members.items()
        )
        for name, members in groups.items()
    }
    effect = payload(api.call("GET", f"/campaigns/{campaign['id']}", staff))["effect"]
    assert effect["groups"] == [
        outreach_effect.group_conversion(
            name,
            len(groups[name]),
            conversions[name],
            None if name == "control" else len(groups[name]),
        )
        for name in ("control", "messaged")
    ]


def test_a_generated_year_counted_from_its_own_log_agrees_with_the_api(
    hospital: Any, api: Api
) -> None:
    from chalicelib.services.registry import services

    player = Player(hospital, api, seed=2026)
    staff, admin = player.staff, hospital.token("admin", TENANT)
    patients = make_patients(api, staff)
    hospital.streams.seed_duplicates(0.3, seed=11)  # a third of the stream's batches twice
    try:
        campaign = play_year(hospital, api, player, patients)
    finally:
        hospital.streams.seed_duplicates(0.0, seed=0)

    span = f"from={START.date()}&to={day(hospital.clock.now())}"
    check_appointments(api, admin, player.year, span)
    check_return_visits(api, admin, player.year, span)
    check_messages(hospital, api, admin, patients, span)
    check_follow_ups(api, admin, staff, patients, span)
    check_campaign(hospital, api, staff, player.year, patients, campaign)
    # A rebuild from the records agrees with what the stream kept.
    report = services().analytics.rebuild(TENANT, check_only=True)
    assert report["differing"] == 0, report
