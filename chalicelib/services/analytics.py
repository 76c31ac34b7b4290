"""Analytics: counters kept from the table's stream (each change counted once, whatever the
number of deliveries), read back by period and group, and rebuilt from the records themselves.
What each record counts for is `domain/analytics.py`'s."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import analytics as rules
from chalicelib.domain import campaigns as campaign_rules
from chalicelib.domain import drifting
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, check_year
from chalicelib.domain.errors import Forbidden, NotFound, invalid
from chalicelib.domain.scheduling import slots_between
from chalicelib.observability import count
from chalicelib.services.brief_cache import BriefCache
from chalicelib.services.patients import parse_limit
from chalicelib.store.analytics import AnalyticsRepository
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.campaigns import CampaignRepository, campaign_pk
from chalicelib.store.care import CareRepository
from chalicelib.store.complaints import ComplaintRepository
from chalicelib.store.config import ConfigRepository
from chalicelib.store.loyalty import LedgerRepository
from chalicelib.store.messages import DeliveryRepository, StaffTaskRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.responses import ResponseRepository
from chalicelib.store.staff import StaffRepository
from chalicelib.store.tenants import TenantRepository

MONTH = re.compile(r"\d{4}-\d{2}")
# How many periods one read may span, by grain: two years by month or by week, 400 days by day.
MOST_PERIODS = {rules.Grain.DAY: 400, rules.Grain.WEEK: 106, rules.Grain.MONTH: 24}


class ChangedRecord(TypedDict):
    """One stream record: which item changed, and how (images as plain values)."""

    event_id: str
    event_name: str  # INSERT | MODIFY | REMOVE
    pk: str
    sk: str
    old: Document | None
    new: Document | None


@dataclass(frozen=True)
class Recount:
    """What a tenant's records add up to."""

    counters: dict[tuple[str, ...], dict[str, int]]
    signals: dict[str, set[str]]  # patient -> drifting-away signals
    # campaign -> group -> patients, reached, converted
    campaigns: dict[str, dict[str, dict[str, int]]]
    # campaign -> each recipient's exposure, the booking that converted it, whether reached
    exposures: dict[str, list[tuple[rules.Exposure, str | None, bool]]]


class RebuildReport(TypedDict):
    counters: int  # counter items (and patients with drifting-away signals) the records make
    differing: int  # of those (and of the kept ones), how many the stream had kept otherwise
    written: int  # counter items written by the rebuild (0: checked only)


class Overview(TypedDict):
    month: str
    previous_month: str
    same_month_last_year: str
    # "appointments.booked": {"month": 120, "previous_month": 110, ...}; a rate with nothing to
    # count is null.
    figures: dict[str, dict[str, float | None]]


class MeasureRow(TypedDict):
    period: str
    values: dict[str, float]
    group: NotRequired[str]


MeasureReport = TypedDict(
    "MeasureReport",
    {
        "measure": str,
        "granularity": str,
        "group_by": str,
        "from": str,
        "to": str,
        "rows": list[MeasureRow],
    },
)


class AnalyticsService:
    def __init__(
        self,
        counters: AnalyticsRepository,
        tenants: TenantRepository,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        deliveries: DeliveryRepository,
        staff: StaffRepository,
        care: CareRepository,
        tasks: StaffTaskRepository,
        config: ConfigRepository,
        campaigns: CampaignRepository,
        responses: ResponseRepository,
        complaints: ComplaintRepository,
        ledger: LedgerRepository,
    ) -> None:
        self._responses = responses
        self._complaints = complaints
        self._ledger = ledger
        self._campaigns = campaigns
        # What a campaign asks patients to book never changes once it started.
        self._goals: BriefCache[Document] = BriefCache(timedelta(minutes=30))
        self._config = config
        self._care = care
        self._tasks = tasks
        self._counters = counters
        self._staff = staff
        self._tenants = tenants
        self._patients = patients
        self._appointments = appointments
        self._deliveries = deliveries
        # A tenant's zone places each count on its local day, and its return window says what a
        # return visit is; they change (almost) never.
        # Its country prices its texts.
        self._settings: BriefCache[tuple[str, int, str]] = BriefCache(timedelta(minutes=5))

    def _tenant_settings(self, tenant_id: str) -> tuple[ZoneInfo, int, str]:
        def load() -> tuple[str, int, str]:
            tenant = self._tenants.get(tenant_id) or {}
            zone = str(tenant.get("time_zone") or "UTC")
            return zone, rules.return_window(tenant), str(tenant.get("country", ""))

        found = self._settings.get(tenant_id, load) or ("UTC", rules.RETURN_WINDOW_DAYS, "")
        return ZoneInfo(found[0]), found[1], found[2]

    def _zone(self, tenant_id: str) -> ZoneInfo:
        return self._tenant_settings(tenant_id)[0]

    # -- keeping the counters ----------------------------------------------------------------

    def count_changes(self, records: Iterable[ChangedRecord]) -> int:
        """Move the counters for each changed record of a counted kind, once per record (a
        redelivered record finds its marker and moves nothing). Returns the records counted."""
        counted = 0
        for record in records:
            kind = rules.record_kind(record["pk"], record["sk"])
            if kind is None or record["event_name"] == "REMOVE":
                continue  # not counted; a removal keeps what happened (identity-free counters)
            tenant_id = rules.tenant_of_key(record["pk"], record["sk"])
            if kind == "campaign_recipient":
                counted += self._expose(tenant_id, record)
                continue
            zone = self._zone(tenant_id)
            moved = rules.change(
                rules.tally_of(kind, record["old"], zone), rules.tally_of(kind, record["new"], zone)
            )
            if moved and self._counters.apply_once(
                record["event_id"], tenant_id, rules.counter_moves(moved)
            ):
                counted += 1
            if kind in ("appointment", "recall", "task"):
                self._move_signals(tenant_id, kind, record["old"], record["new"])
            if kind == "appointment":
                if record["old"] is None and record["new"] is not None:
                    self._convert(tenant_id, record["new"].get("doc") or {})
                self._count_visit(tenant_id, record["old"], record["new"])
                self._count_follow_up_visit(tenant_id, record["old"], record["new"])
            elif kind in ("recall", "aftercare"):
                self._link_follow_ups(tenant_id, kind, record["old"], record["new"])
        count("AnalyticsRecordsCounted", counted)
        return counted

    def _move_signals(
        self, tenant_id: str, kind: str, old: Document | None, new: Document | None
    ) -> None:
        """What the change says about the patient drifting away: signals added or gone; a
        visit newly attended answers the no-shows and unanswered outreach of earlier days."""
        zone = self._zone(tenant_id)
        before, after = ((image or {}).get("doc") for image in (old, new))
        patient = drifting.patient_of(kind, after)
        if patient is None:
            return
        was, now = drifting.signals(kind, before, zone), drifting.signals(kind, after, zone)
        added, gone = now - was, was - now
        if added:
            # One arriving after a later visit (its shard was slower) was answered already.
            days = sorted(s.split("#", 2)[1] for s in added)
            later = self._counters.visits(tenant_id, patient, days[0], "9999-12-31")
            latest = max((entry.split("#", 1)[0] for entry in later), default="")
            added = {s for s in added if not drifting.answered_by_visit(s, latest)}
        if kind == "appointment":
            day = rules.visit_day(after, zone)
            if day is not None and rules.visit_day(before, zone) is None:
                gone |= {
                    s
                    for s in self._counters.signals(tenant_id, patient)
                    if drifting.answered_by_visit(s, day.isoformat())
                }
        if added and self._counted_profile(tenant_id, patient) is None:
            added = set()  # erased meanwhile: nothing new that names them
        self._counters.change_signals(tenant_id, patient, added, gone)

    def _expose(self, tenant_id: str, record: ChangedRecord) -> int:
        """A campaign's patient assigned to a group when the driver reached them: remembered
        beside the patient (their bookings may convert it) and counted in the group, once; and
        once their message leaves, counted as reached."""
        campaign_id = record["pk"].split("#CAMPAIGN#", 1)[1]
        new = record["new"] or {}
        patient = record["sk"].removeprefix("P#")
        if not new.get("started_at") or self._counted_profile(tenant_id, patient) is None:
            return 0  # erased meanwhile: nothing more is kept that names them

        def load() -> Document:
            campaign = self._campaigns.get(tenant_id, campaign_id)
            return campaign_rules.goal(campaign) if campaign else {}

        goal = self._goals.get(f"{tenant_id}#{campaign_id}", load) or {}
        if not goal:
            return 0  # the campaign is gone
        exposure = rules.exposure_of(record["pk"], record["sk"], new, goal)
        counted = 0
        if self._counters.expose_once(tenant_id, exposure):
            counted = 1
            # A booking the stream brought before this one converts it now.
            for booking in self._appointments.for_patient(
                tenant_id, patient, after=exposure["at"], limit=500
            ):
                if rules.converts(exposure, booking):
                    self._counters.convert_once(tenant_id, patient, exposure, booking["id"])
                    break
        if rules.newly_reached(record["old"], new):
            counted += int(self._counters.reach_once(tenant_id, patient, exposure))
        return counted

    def _convert(self, tenant_id: str, appointment: Document) -> None:
        """A new booking: each campaign that reached (or held out) the patient and asked for
        this within its window converts, once."""
        if not appointment.get("patient_id"):
            return
        patient = appointment["patient_id"]
        for exposure in self._counters.exposures(tenant_id, patient):
            if "converted_by" not in exposure and rules.converts(exposure, appointment):
                self._counters.convert_once(tenant_id, patient, exposure, appointment["id"])

    def _counted_profile(self, tenant_id: str, patient: str) -> Document | None:
        """The patient's profile while what they do is kept beside their id: live or
        soft-deleted (their records are there, and a rebuild counts them too); None once their
        erasure has begun (it forgets these rows, and nothing may name them again)."""
        profile = self._patients.get_including_deleted(tenant_id, patient)
        return None if profile is None or profile.get("erasing_at") else profile

    def _count_visit(self, tenant_id: str, old: Document | None, new: Document | None) -> None:
        """A visit newly attended: the patient is seen in its periods, and came back, for this
        visit's periods if another follows within the window, and for an earlier visit's
        periods if this one follows it within the window. Each patient and period counts once
        (a marker beside the patient's visits), in whatever order the visits arrive."""
        zone, window, _ = self._tenant_settings(tenant_id)
        before = rules.visit_day((old or {}).get("doc"), zone)
        appointment = (new or {}).get("doc")
        day = rules.visit_day(appointment, zone)
        if day is None or before is not None or appointment is None:
            return
        patient = appointment["patient_id"]
        profile = self._counted_profile(tenant_id, patient)
        if profile is None:
            return  # erased meanwhile: nothing more is kept that names them
        self._counters.add_visit(tenant_id, patient, day.isoformat(), appointment["id"])
        span = timedelta(days=window)
        others = {
            date.fromisoformat(entry.split("#", 1)[0])
            for entry in self._counters.visits(
                tenant_id, patient, (day - span).isoformat(), (day + span).isoformat()
            )
        }
        returned = [d for d in others if rules.came_back(d, day, window)]
        if any(rules.came_back(day, later, window) for later in others):
            returned.append(day)
        for grain in rules.Grain:
            marks = [("SEEN", "patients_seen", day)] + [
                ("RETURNED", "patients_returned", d) for d in returned
            ]
            for marker, field, which in marks:
                text = rules.period(which, grain)
                # In all, and by the patient's member class (members against everyone else).
                for group, value, suffix in (
                    (rules.EVERYTHING, "-", ""),
                    ("member_class", rules.member_group(profile), "#member_class"),
                ):
                    counter = (rules.Measure.RETURN_VISITS.value, grain.value, group, text, value)
                    self._counters.count_patient_once(
                        tenant_id, patient, f"{marker}#{grain.value}#{text}{suffix}", counter, field
                    )

    def _link_follow_ups(
        self, tenant_id: str, kind: str, old: Document | None, new: Document | None
    ) -> None:
        """A follow-up newly converted: remember which it was beside its booking, and count
        the booking if it was attended already (a history imported late)."""
        zone = self._zone(tenant_id)
        before = {
            link["appointment_id"]
            for link in rules.follow_up_links(kind, (old or {}).get("doc") or {}, zone)
        }
        for link in rules.follow_up_links(kind, (new or {}).get("doc") or {}, zone):
            if link["appointment_id"] in before:
                continue
            self._counters.put_follow_up(tenant_id, dict(link))
            booking = self._appointments.get(tenant_id, link["appointment_id"])
            if rules.visit_day(booking, zone) is not None:
                self._count_follow_up(tenant_id, link)  # attended before the link was seen

    def _count_follow_up_visit(
        self, tenant_id: str, old: Document | None, new: Document | None
    ) -> None:
        """A visit newly attended that a follow-up converted to: counted once, on its due day."""
        zone = self._zone(tenant_id)
        appointment = (new or {}).get("doc")
        if appointment is None or rules.visit_day(appointment, zone) is None:
            return
        if rules.visit_day((old or {}).get("doc"), zone) is not None:
            return
        for link in self._counters.follow_ups(tenant_id, appointment["id"]):
            self._count_follow_up(tenant_id, link)  # type: ignore[arg-type]

    def _count_follow_up(self, tenant_id: str, link: rules.FollowUpLink) -> None:
        moves = rules.counter_moves({rules.follow_up_attended_key(link): 1})
        self._counters.count_follow_up_once(tenant_id, link, moves)

    # -- reading -----------------------------------------------------------------------------

    def measure(
        self,
        principal: Principal,
        measure: str,
        since: str | None,
        until: str | None,
        granularity: str | None,
        group_by: str | None,
    ) -> MeasureReport:
        require_role(principal, CLINIC_ROLES)
        try:
            which = rules.Measure(measure)
        except ValueError:
            raise NotFound(f"no measure {measure!r}") from None
        grain = _choice("granularity", granularity or "month", [g.value for g in rules.Grain])
        grouping = _choice(
            "group_by", group_by or rules.EVERYTHING, [rules.EVERYTHING, *rules.GROUP_BYS[which]]
        )
        tenant_id = tenant_of(principal)
        country = self._tenant_settings(tenant_id)[2]
        departments = self._departments_of(principal, grouping)
        today = clock.now().astimezone(self._zone(tenant_id)).date()
        first_day, last_day = _days(since, until, today)
        first, last = (rules.period(d, rules.Grain(grain)) for d in (first_day, last_day))
        if (
            _periods_between(first_day, last_day, rules.Grain(grain))
            > MOST_PERIODS[rules.Grain(grain)]
        ):
            raise invalid("to", f"at most {MOST_PERIODS[rules.Grain(grain)]} {grain}s at once")
        rows: list[MeasureRow] = []
        for item in self._counters.read(tenant_id, which, grain, grouping, first, last):
            if departments is not None and item["group"] not in departments:
                continue
            values = {k: float(v) for k, v in item.items() if k not in ("period", "group")}
            shown = rules.derived(which, values, country)
            row: MeasureRow = {"period": item["period"], "values": shown}
            if grouping != rules.EVERYTHING:
                row["group"] = item["group"]
            rows.append(row)
        if which is rules.Measure.SLOTS:
            self._add_capacity(tenant_id, rows, rules.Grain(grain), first_day, last_day)
        return {
            "measure": which.value,
            "granularity": grain,
            "group_by": grouping,
            "from": first_day.isoformat(),
            "to": last_day.isoformat(),
            "rows": rows,
        }

    def overview(self, principal: Principal, month: str | None) -> Overview:
        """The month's headline figures beside the previous month and the same month a year
        before: one counter item per measure and month (nine items)."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        country = self._tenant_settings(tenant_id)[2]
        if self._departments_of(principal, "department") is not None:
            # The hospital's whole figures: not for staff fenced to some departments.
            raise Forbidden(
                "staff assigned to departments read figures by department",
                code="departments_only",
            )
        today = clock.now().astimezone(self._zone(tenant_id)).date()
        shown = month or rules.period(today, rules.Grain.MONTH)
        if not MONTH.fullmatch(shown):
            raise invalid("month", "must be a month, YYYY-MM")
        try:
            first_day, _ = rules.period_days(shown, rules.Grain.MONTH)
        except ValueError:
            raise invalid("month", "must be a month, YYYY-MM") from None
        check_year("month", first_day.year)
        previous = rules.period(first_day - timedelta(days=1), rules.Grain.MONTH)
        last_year = f"{first_day.year - 1}-{first_day.month:02d}"
        columns = {"month": shown, "previous_month": previous, "same_month_last_year": last_year}
        figures: dict[str, dict[str, float | None]] = {}
        for measure, names in rules.HEADLINES.items():
            for column, period in columns.items():
                [item] = self._counters.read(
                    tenant_id, measure, "month", rules.EVERYTHING, period, period
                ) or [{}]
                values = rules.derived(
                    measure,
                    {k: float(v) for k, v in item.items() if k not in ("period", "group")},
                    country,
                )
                for name in names:
                    figures.setdefault(f"{measure.value}.{name}", {})[column] = values.get(
                        name, 0.0 if name in rules.COUNTS else None
                    )
        return {
            "month": shown,
            "previous_month": previous,
            "same_month_last_year": last_year,
            "figures": figures,
        }

    def _add_capacity(
        self, tenant_id: str, rows: list[MeasureRow], grain: rules.Grain, first: date, last: date
    ) -> None:
        """Each row's places offered by weekday x hour: its department's schedules over the
        period's days within the range asked (computed from the schedules, as slots are)."""
        zone = self._zone(tenant_id)
        schedules = self._config.records(tenant_id, "SCHEDULE")
        for row in rows:
            # The whole period, as its places taken are counted.
            start, end = rules.period_days(row["period"], grain)
            offered: Counter[str] = Counter()
            for schedule in schedules:
                if row.get("group", schedule["department"]) != schedule["department"]:
                    continue
                begin = datetime.combine(start, time(), tzinfo=zone)
                for slot in slots_between(
                    schedule, zone, begin, begin + timedelta(days=(end - start).days + 1)
                ):
                    local = slot.start.astimezone(zone)
                    offered[f"{local.isoweekday()}_{local.hour:02d}"] += slot.capacity
            row["values"] = rules.with_slot_shares(row["values"], offered)

    def _departments_of(self, principal: Principal, grouping: str) -> set[str] | None:
        """The departments a staff member assigned to some may see (None: all); they read
        figures by department, theirs only."""
        if principal.role is not Role.STAFF:
            return None
        member = self._staff.get(tenant_of(principal), principal.subject)
        departments = set(member["departments"]) if member else set()
        if not departments:
            return None
        if grouping != "department":
            raise Forbidden(
                "staff assigned to departments read figures by department (group_by=department)",
                code="departments_only",
            )
        return departments

    def drifting_away(self, principal: Principal, limit: str | None) -> Document:
        """The patients most at risk of being lost, by score (domain/drifting.py): one Query of
        the tenant's patients with signals, then each listed patient looked up (a deleted one
        is left out)."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        if self._departments_of(principal, "department") is not None:
            raise Forbidden(
                "staff assigned to departments read figures by department",
                code="departments_only",
            )
        most = parse_limit(limit)
        today = clock.now().astimezone(self._zone(tenant_id)).date()
        ranked = drifting.most_at_risk(
            drifting.score(patient, signals, today)
            for patient, signals in self._counters.drifting(tenant_id)
        )
        listed: list[drifting.DriftingPatient] = []
        for candidate in ranked:  # a deleted patient's signals stay until erasure
            if len(listed) == most:
                break
            if self._patients.get(tenant_id, candidate["patient_id"]) is not None:
                listed.append(candidate)
        return {"as_of": today.isoformat(), "items": list(listed)}

    def recall_conversion(self, principal: Principal, rule_id: str) -> Document:
        """A recall rule's effect since it began: its cycles that fell due, how many booked what
        it asked for, and how many came (the follow_ups counters of the rule, by month)."""
        require_role(principal, CLINIC_ROLES)
        kept: Counter[str] = Counter()
        for item in self._counters.read(
            tenant_of(principal), rules.Measure.FOLLOW_UPS, "month", "plan", "0", "9"
        ):
            if item["group"] == f"recall:{rule_id}":
                kept.update({k: int(v) for k, v in item.items() if k not in ("period", "group")})
        due = kept["followups_due"]
        found: Document = {
            "due": due,
            "converted": kept["followups_converted"],
            "attended": kept["followups_attended"] + kept["followups_visited"],
        }
        if due:
            found["conversion"] = round(found["converted"] / due, 4)
            found["adherence"] = round(found["attended"] / due, 4)
        return found

    # -- rebuilding --------------------------------------------------------------------------

    def totals(self, tenant_id: str) -> dict[tuple[str, ...], dict[str, int]]:
        """Every counter of the tenant as its records stand (see `recount`)."""
        return self.recount(tenant_id).counters

    def recount(self, tenant_id: str) -> Recount:
        """Every counter of the tenant as its records stand, each patient's drifting-away
        signals and each campaign's groups, from per-tenant Queries: each patient (listed),
        their appointments, delivery log, aftercare journeys and staff tasks (a task about no
        patient is not in a rebuild), each campaign's recipients. No Scan."""
        zone, window, _ = self._tenant_settings(tenant_id)
        tally: rules.Tally = Counter()
        visits: dict[str, list[date]] = {}
        signals: dict[str, set[str]] = {}
        bookings: dict[str, list[Document]] = {}
        classes: dict[str, str] = {}
        for patient, profile in self._patient_docs(tenant_id):
            found: set[str] = set()
            classes[patient] = rules.member_group(profile)
            tally.update(self._recount_surveys_complaints_points(tenant_id, patient, zone))
            deliveries = self._deliveries.for_patient(tenant_id, patient, 100_000)
            appointments = self._appointments.for_patient(tenant_id, patient, limit=10_000)
            bookings[patient] = appointments
            for appointment in appointments:
                tally.update(rules.appointment_tally(appointment, zone))
                found |= drifting.signals("appointment", appointment, zone)
                day = rules.visit_day(appointment, zone)
                if day is not None:
                    visits.setdefault(patient, []).append(day)
            for delivery in deliveries:
                tally.update(rules.delivery_tally(delivery, zone))
            for record in self._care.for_patient(tenant_id, patient):
                kind = str(record.get("kind"))
                if kind == "aftercare":
                    tally.update(rules.aftercare_tally(record, zone))
                elif kind == "recall":
                    tally.update(rules.recall_tally(record, zone))
                    found |= drifting.signals("recall", record, zone)
                for link in rules.follow_up_links(kind, record, zone):
                    booking = self._appointments.get(tenant_id, link["appointment_id"])
                    if rules.visit_day(booking, zone) is not None:
                        tally[rules.follow_up_attended_key(link)] += 1
            for task in self._tasks.for_patient(tenant_id, patient, ("0", "~"), limit=100_000):
                tally.update(rules.task_tally(task, zone))
                found |= drifting.signals("task", task, zone)
            days = [d.isoformat() for d in visits.get(patient, [])]
            if kept := drifting.kept_signals(found, days):
                signals[patient] = kept
        totals = rules.counter_moves(dict(tally))
        totals.update(rules.return_visit_counters(visits, window, classes))
        campaigns, exposures = self._recount_campaigns(tenant_id, bookings)
        return Recount(totals, signals, campaigns, exposures)

    def _recount_surveys_complaints_points(
        self, tenant_id: str, patient: str, zone: ZoneInfo
    ) -> rules.Tally:
        """A patient's satisfaction surveys, complaints and loyalty ledger, as they stand."""
        tally: rules.Tally = Counter()
        for response in self._responses.for_patient(tenant_id, patient):
            tally.update(rules.response_tally(response, zone))
        for complaint in self._complaints.for_patient(tenant_id, patient):
            tally.update(rules.complaint_tally(dict(complaint), zone))
        for entry in self._ledger.ledger(tenant_id, patient).entries.values():
            tally.update(rules.ledger_entry_tally(dict(entry), zone))
        return tally

    def _recount_campaigns(
        self, tenant_id: str, bookings: Mapping[str, list[Document]]
    ) -> tuple[
        dict[str, dict[str, dict[str, int]]],
        dict[str, list[tuple[rules.Exposure, str | None, bool]]],
    ]:
        """Each campaign's groups: its recipients, those its message reached, and who booked
        what it asked for in time (patients no longer listed are left out, as above); and each
        recipient's exposure as the stream would have kept it."""
        found: dict[str, dict[str, dict[str, int]]] = {}
        exposures: dict[str, list[tuple[rules.Exposure, str | None, bool]]] = {}
        after = None
        while True:
            page, after = self._campaigns.page(tenant_id, 100, after)
            for campaign in page:
                goal = campaign_rules.goal(campaign)
                groups: dict[str, dict[str, int]] = {}
                pk = campaign_pk(tenant_id, campaign["id"])
                for patient, recipient in self._campaigns.recipients(tenant_id, campaign["id"]):
                    if patient not in bookings:
                        continue  # no longer listed (deleted or erased)
                    exposure = rules.exposure_of(pk, f"P#{patient}", recipient, goal)
                    group = groups.setdefault(
                        exposure["arm"], {"patients": 0, "reached": 0, "converted": 0}
                    )
                    converting = [b for b in bookings[patient] if rules.converts(exposure, b)]
                    reached = recipient.get("outcome") == "sent"
                    group["patients"] += 1
                    group["reached"] += reached
                    group["converted"] += bool(converting)
                    exposures.setdefault(campaign["id"], []).append(
                        (exposure, converting[0]["id"] if converting else None, reached)
                    )
                if groups:
                    found[campaign["id"]] = groups
            if after is None:
                return found, exposures

    def _patient_docs(self, tenant_id: str) -> Iterable[tuple[str, Document]]:
        """The tenant's patients with their profiles: those listed, then those soft-deleted and
        not yet erased (the stream counted what they did, and their records are still there;
        an erased patient's records are gone, and their counts with a rebuild)."""
        seen: set[str] = set()  # one deleted between the two listings' pages is in both
        for deleted in (False, True):
            after = None
            while True:
                page, after = self._patients.page(tenant_id, 200, after, deleted=deleted)
                for patient in page:
                    if patient["id"] not in seen:
                        seen.add(patient["id"])
                        yield patient["id"], patient
                if after is None:
                    break

    def kept(self, tenant_id: str) -> dict[tuple[str, ...], dict[str, int]]:
        """Every counter the stream has kept for the tenant (fields at zero left out)."""
        found: dict[tuple[str, ...], dict[str, int]] = {}
        for measure, grain, group_by in _partitions():
            for item in self._counters.read(tenant_id, measure, grain, group_by, "0", "9"):
                fields = {k: int(v) for k, v in item.items() if k not in ("period", "group") and v}
                if fields:
                    found[(measure, grain, group_by, item["period"], item["group"])] = fields
        return found

    def rebuild(self, tenant_id: str, *, check_only: bool = False) -> RebuildReport:
        """Compare the kept counters (and drifting-away signals) with what the records add up
        to, and unless `check_only` replace them with that (after a change of how a measure
        counts, or of the tenant's zone)."""
        recounted = self.recount(tenant_id)
        signals = recounted.signals
        totals = {k: v for k, v in recounted.counters.items() if any(v.values())}
        totals = {k: {f: n for f, n in v.items() if n} for k, v in totals.items()}
        kept = self.kept(tenant_id)
        for key, fields in kept.items():
            carried = {f: n for f, n in fields.items() if f in rules.KEPT_THROUGH_REBUILD}
            if carried:
                totals[key] = {**totals.get(key, {}), **carried}
        differing = sum(1 for key in set(totals) | set(kept) if totals.get(key) != kept.get(key))
        kept_signals = {p: set(s) for p, s in self._counters.drifting(tenant_id)}
        differing += sum(
            1
            for patient in set(signals) | set(kept_signals)
            if signals.get(patient) != kept_signals.get(patient)
        )
        campaigns = recounted.campaigns
        kept_campaigns = {c: self._counters.campaign_groups(tenant_id, c) for c in campaigns}
        differing += sum(1 for c in campaigns if campaigns[c] != kept_campaigns[c])
        report: RebuildReport = {
            "counters": len(totals) + len(signals) + len(campaigns),
            "differing": differing,
            "written": 0,
        }
        if not check_only:
            report["written"] = (
                self._counters.replace(tenant_id, _partitions(), totals)
                + self._counters.replace_signals(tenant_id, signals)
                + sum(
                    self._counters.replace_campaign(
                        tenant_id, c, groups, recounted.exposures.get(c, [])
                    )
                    for c, groups in campaigns.items()
                )
            )
        return report


def _partitions() -> list[tuple[str, str, str]]:
    return [
        (measure.value, grain.value, group_by)
        for measure in rules.Measure
        for grain in rules.Grain
        for group_by in (rules.EVERYTHING, *rules.GROUP_BYS[measure])
    ]


def _choice(name: str, value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise invalid(name, f"must be one of {', '.join(allowed)}")
    return value


def _day(name: str, raw: str) -> date:
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise invalid(name, "must be a date, YYYY-MM-DD") from None
    check_year(name, day.year)
    return day


def _days(since: str | None, until: str | None, today: date) -> tuple[date, date]:
    """The days asked for; by default the twelve months up to today."""
    last = _day("to", until) if until else today
    # Default: the twelve months up to this one (this one included).
    first = _day("from", since) if since else _months_before(last, 11)
    if first > last:
        raise invalid("to", "must not be before from")
    return first, last


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _periods_between(first: date, last: date, grain: rules.Grain) -> int:
    if grain is rules.Grain.DAY:
        return (last - first).days + 1
    if grain is rules.Grain.WEEK:
        monday = first - timedelta(days=first.weekday())
        return (last - monday).days // 7 + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1
