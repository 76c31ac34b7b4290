"""Analytics a hospital can act on: what each stored record counts for, as a tally, and how a
change of a record moves the counters. Pure: no I/O.

A record's tally is a function of the record alone (its current image): the booking counts on
the day it was made, a visit's outcome on the visit's day, a message's outcome on the day it was
claimed, each in the tenant's time zone. A change moves the counters by `tally(new) - tally(old)`,
so the counters kept from a table's stream always equal the sum of the tallies of the records as
they stand (what a rebuild computes), however the records got there. A removed record (erasure,
TTL) is not subtracted: the counters are identity-free and keep what happened.

Counters are kept per tenant x measure x grain (day, ISO week, month) x group (one dimension, or
none) x period, one item per period and group value, so a year by month reads 12 items per group
value whatever the data size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from chalicelib.domain.campaigns import MESSAGED
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.message_prices import estimated_cost_usd
from chalicelib.domain.stream_filters import passes


class Measure(StrEnum):
    APPOINTMENTS = "appointments"
    MESSAGES = "messages"
    SLOTS = "slots"
    AFTERCARE = "aftercare"
    RETURN_VISITS = "return_visits"
    FOLLOW_UPS = "follow_ups"
    SATISFACTION = "satisfaction"
    COMPLAINTS = "complaints"
    LOYALTY = "loyalty"


class Grain(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


EVERYTHING = "all"  # the group of a tenant's whole figures
# The dimensions each measure may be grouped by (besides EVERYTHING), as the OpenAPI lists them.
GROUP_BYS: dict[Measure, tuple[str, ...]] = {
    Measure.APPOINTMENTS: ("department", "clinician", "type"),
    Measure.MESSAGES: ("channel", "step"),
    Measure.SLOTS: ("department",),
    Measure.AFTERCARE: ("department", "care_plan", "task_kind"),
    Measure.RETURN_VISITS: ("member_class",),
    Measure.FOLLOW_UPS: ("kind", "plan"),
    Measure.SATISFACTION: ("department", "clinician"),
    Measure.COMPLAINTS: ("category", "department", "source"),
    Measure.LOYALTY: ("event",),
}
NO_MEMBER_CLASS = "none"  # return visits of patients without a member class

# Histogram buckets (upper edges, in days) of the lead time between booking and visit: a median
# is read as the upper edge of the bucket that holds the middle booking.
LEAD_DAY_EDGES = (0, 1, 2, 3, 7, 14, 30, 60, 90)

# Histogram buckets (upper edges, in hours) of the time from a staff task's opening to its closing.
ACTION_HOUR_EDGES = (1, 4, 8, 24, 48, 72, 168)

# Histogram buckets (upper edges, in hours) of the time from a message about an appointment to
# the patient's answer (a confirmation, cancellation or reschedule in the app or by text).
ANSWER_HOUR_EDGES = (1, 4, 8, 24, 48, 72, 168)
# Counter key: (measure, field, local date of the period, dimensions of the record).
Dimensions = tuple[tuple[str, str], ...]
CounterKey = tuple[str, str, str, Dimensions]
Tally = Counter[CounterKey]


def _local_date(moment: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(moment).astimezone(zone).date().isoformat()


def bucket(value: float, edges: tuple[int, ...]) -> int:
    """The histogram bucket of a value: the first edge it does not exceed (the last: more)."""
    for index, edge in enumerate(edges):
        if value <= edge:
            return index
    return len(edges)


def lead_bucket(days: float) -> int:
    return bucket(days, LEAD_DAY_EDGES)


# --- what a record counts for ---


def appointment_tally(appointment: Document, zone: ZoneInfo) -> Tally:
    """Booked (on the booking's day, with its lead time), confirmed by app or by SMS, cancelled
    by the patient or the clinic, rescheduled (on each change's day), attended or missed (on the
    visit's day); and for the busy-slot heat map, the place it holds (weekday x hour of a visit
    not cancelled, on the visit's day)."""
    tally: Tally = Counter()
    dims: Dimensions = (
        ("department", str(appointment.get("department", ""))),
        ("clinician", str(appointment.get("clinician", ""))),
        ("type", str(appointment.get("type", ""))),
    )
    booked_on = _local_date(appointment["created_at"], zone)
    visit = datetime.fromisoformat(appointment["start"]).astimezone(zone)
    visit_day = visit.date().isoformat()
    measure = Measure.APPOINTMENTS
    tally[(measure, "booked", booked_on, dims)] += 1
    lead = (visit - datetime.fromisoformat(appointment["created_at"])).total_seconds() / 86400
    tally[(measure, f"lead_days_b{lead_bucket(lead)}", booked_on, dims)] += 1
    for change in appointment.get("history") or []:
        day = _local_date(change["at"], zone)
        if change["change"] == "confirmed":
            via = change.get("via") or "staff"
            tally[(measure, f"confirmed_{via}", day, dims)] += 1
            if via == "sms" and change.get("keyword"):
                tally[(measure, f"sms_keyword_{change['keyword']}", day, dims)] += 1
        elif change["change"] == "rescheduled":
            tally[(measure, "rescheduled", day, dims)] += 1
        if change.get("asked_at"):  # a patient's answer to a message: how long it took
            hours = (
                datetime.fromisoformat(change["at"]) - datetime.fromisoformat(change["asked_at"])
            ).total_seconds() / 3600
            tally[(measure, f"answer_hours_b{bucket(hours, ANSWER_HOUR_EDGES)}", day, dims)] += 1
    status = appointment["status"]
    if status == "cancelled":
        by = "patient" if appointment.get("cancelled_by") == "patient" else "clinic"
        # On the day it was cancelled (its history says; a later write must not move it).
        cancels = [c["at"] for c in appointment.get("history") or [] if c["change"] == "cancelled"]
        cancelled_on = _local_date(cancels[-1] if cancels else appointment["updated_at"], zone)
        tally[(measure, f"cancelled_by_{by}", cancelled_on, dims)] += 1
    elif status in ("arrived", "fulfilled"):
        tally[(measure, "attended", visit_day, dims)] += 1
    elif status == "noshow":
        tally[(measure, "noshow", visit_day, dims)] += 1
    if status != "cancelled":
        place = (("department", dims[0][1]),)
        hour = f"booked_{visit.isoweekday()}_{visit.hour:02d}"
        tally[(Measure.SLOTS, hour, visit_day, place)] += 1
    return tally


# Suppression reasons as the delivery log words them (services/deliveries.py), by code.
REASON_CODES = (
    ("opted out", "opted_out"),
    ("consent", "no_consent"),
    ("suppressed", "address_suppressed"),
    ("no device", "no_contact"),
    ("no email", "no_contact"),
    ("no phone", "no_contact"),
    ("no usable", "no_contact"),
)


def reason_code(reason: str) -> str:
    text = reason.lower()
    return next((code for words, code in REASON_CODES if words in text), "other")


def delivery_tally(delivery: Document, zone: ZoneInfo) -> Tally:
    """A message's outcome on the day it was claimed, by channel and step: sent (delivered and
    bounced were sent first), delivered, bounced, suppressed (and why: the first channel's
    reason), failed, skipped; and the SMS segments it took."""
    tally: Tally = Counter()
    status = delivery.get("status", "")
    if status in ("sending", "unknown", ""):
        return tally  # not settled yet: counted once it is
    dims: Dimensions = (
        ("channel", str(delivery.get("channel") or "none")),
        ("step", str(delivery.get("step", ""))),
    )
    day = _local_date(delivery["created_at"], zone)
    measure = Measure.MESSAGES
    if status in ("sent", "delivered", "bounced"):
        tally[(measure, "sent", day, dims)] += 1
        # By channel in every grouping too: what the message cost is read from.
        tally[(measure, f"sent_{delivery.get('channel') or 'none'}", day, dims)] += 1
        if status != "sent":
            tally[(measure, status, day, dims)] += 1
        if delivery.get("channel") == "sms":
            tally[(measure, "sms_segments", day, dims)] += int(delivery.get("sms_segments") or 1)
    elif status == "suppressed":
        tally[(measure, "suppressed", day, dims)] += 1
        reasons = delivery.get("reasons") or ["other"]
        tally[(measure, f"suppressed_{reason_code(str(reasons[0]))}", day, dims)] += 1
    elif status in ("failed", "skipped"):
        tally[(measure, status, day, dims)] += 1
    return tally


RECHECK_DUE = frozenset({"awaiting_booking", "booked", "not_booked"})
CHECKIN_SENT = frozenset({"awaiting_answer", "answered", "answered_late", "unanswered"})


def aftercare_tally(journey: Document, zone: ZoneInfo) -> Tally:
    """An aftercare journey's check-ins, each on the day it was due: sent, answered within its
    window, answered late, unanswered (handed to staff), and urgent answers."""
    tally: Tally = Counter()
    dims: Dimensions = (
        ("department", str(journey.get("department", ""))),
        ("care_plan", str(journey.get("care_plan", ""))),
    )
    measure = Measure.AFTERCARE
    follow_up: Dimensions = (("kind", "recheck"), ("plan", plan_group("recheck", journey)))
    for step in journey.get("steps") or []:
        if step.get("kind") == "recheck" and step.get("status") in RECHECK_DUE:
            due = _local_date(step["at"], zone)
            tally[(Measure.FOLLOW_UPS, "followups_due", due, follow_up)] += 1
            if step["status"] == "booked":
                tally[(Measure.FOLLOW_UPS, "followups_converted", due, follow_up)] += 1
        if step.get("kind") != "checkin" or step.get("status") not in CHECKIN_SENT:
            continue
        day = _local_date(step["at"], zone)
        tally[(measure, "checkins_sent", day, dims)] += 1
        if step["status"] != "awaiting_answer":
            tally[(measure, f"checkins_{step['status']}", day, dims)] += 1
        if step.get("risk") == "urgent":
            tally[(measure, "checkins_urgent", day, dims)] += 1
    return tally


# Recall cycles that fell due (the open one once invited); a cancelled one did not (the rule
# stopped applying).
DUE_OUTCOMES = frozenset({"converted", "unconverted", "visited"})


class FollowUpLink(TypedDict):
    """What a booking converted: the follow-up it answers (its due day and dimensions)."""

    appointment_id: str
    due_date: str
    kind: str  # recall | recheck
    plan: str  # the recall rule or the care plan


def recall_tally(recall: Document, zone: ZoneInfo) -> Tally:
    """A patient's recall under one rule: each cycle that fell due, on its due day, and whether
    it was booked (converted) or the patient came anyway (visited)."""
    tally: Tally = Counter()
    dims: Dimensions = (("kind", "recall"), ("plan", plan_group("recall", recall)))
    for due_date, outcome in _recall_cycles(recall).items():
        tally[(Measure.FOLLOW_UPS, "followups_due", due_date, dims)] += 1
        if outcome in ("converted", "visited"):
            tally[(Measure.FOLLOW_UPS, f"followups_{outcome}", due_date, dims)] += 1
    return tally


def _recall_cycles(recall: Document) -> dict[str, str]:
    """Due day → outcome of each cycle that fell due (the open invited one: `invited`)."""
    cycles = {
        c["due_date"]: c["outcome"]
        for c in recall.get("cycles") or []
        if c.get("outcome") in DUE_OUTCOMES
    }
    if recall.get("status") == "invited":
        cycles.setdefault(recall["due_date"], "invited")
    return cycles


def follow_up_links(kind: str, record: Document, zone: ZoneInfo) -> list[FollowUpLink]:
    """The bookings a recall's cycles or an aftercare journey's re-checks converted to."""
    if kind == "recall":
        return [
            {
                "appointment_id": c["appointment_id"],
                "due_date": c["due_date"],
                "kind": "recall",
                "plan": str(record.get("rule_id", "")),
            }
            for c in record.get("cycles") or []
            if c.get("outcome") == "converted" and c.get("appointment_id")
        ]
    if kind == "aftercare":
        return [
            {
                "appointment_id": step["appointment_id"],
                "due_date": _local_date(step["at"], zone),
                "kind": "recheck",
                "plan": str(record.get("care_plan", "")),
            }
            for step in record.get("steps") or []
            if step.get("kind") == "recheck"
            and step.get("status") == "booked"
            and step.get("appointment_id")
        ]
    return []


def plan_group(kind: str, record: Document) -> str:
    """The `plan` group of a follow-up: its kind and the recall rule or care plan it follows
    (`recall:diabetes-90d`, `recheck:knee-surgery`: the hospital names both, and may name a
    rule and a plan alike)."""
    plan = record.get("rule_id" if kind == "recall" else "care_plan", "")
    return f"{kind}:{plan}"


def follow_up_attended_key(link: FollowUpLink) -> CounterKey:
    """The counter a converted follow-up's attended booking adds 1 to (on the due day)."""
    dims: Dimensions = (("kind", link["kind"]), ("plan", f"{link['kind']}:{link['plan']}"))
    return (Measure.FOLLOW_UPS, "followups_attended", link["due_date"], dims)


def task_tally(task: Document, zone: ZoneInfo) -> Tally:
    """A staff task: opened (on its day), and once closed, how long staff took to act on it
    (a histogram in hours: median per kind, such as urgent_answer, no_answer)."""
    tally: Tally = Counter()
    dims: Dimensions = (
        ("department", str(task.get("department") or "")),
        ("task_kind", str(task.get("kind", ""))),
    )
    opened_on = _local_date(task["created_at"], zone)
    measure = Measure.AFTERCARE
    tally[(measure, "tasks_opened", opened_on, dims)] += 1
    if task.get("closed_at"):
        hours = (
            datetime.fromisoformat(task["closed_at"]) - datetime.fromisoformat(task["created_at"])
        ).total_seconds() / 3600
        tally[(measure, "tasks_closed", opened_on, dims)] += 1
        tally[(measure, f"action_hours_b{bucket(hours, ACTION_HOUR_EDGES)}", opened_on, dims)] += 1
    return tally


def response_tally(response: Document, zone: ZoneInfo) -> Tally:
    """A submitted satisfaction survey, on the day it was answered: counted as a promoter (9-10),
    passive (7-8) or detractor (0-6) of the visit's department and clinician (NPS = promoters'
    share minus detractors' share, in points). Its score is kept unsealed beside the sealed
    answers (`nps_score`); any other questionnaire counts for nothing here."""
    tally: Tally = Counter()
    score = response.get("nps_score")
    if response.get("status") != "completed" or not isinstance(score, int | float):
        return tally
    visit = response.get("visit") or {}
    dims: Dimensions = (
        ("department", str(visit.get("department") or "")),
        ("clinician", str(visit.get("clinician") or "")),
    )
    day = _local_date(response["authored_at"], zone)
    group = "promoters" if score >= 9 else "passives" if score >= 7 else "detractors"
    tally[(Measure.SATISFACTION, "responses", day, dims)] += 1
    tally[(Measure.SATISFACTION, group, day, dims)] += 1
    tally[(Measure.SATISFACTION, "score_total", day, dims)] += int(score)
    return tally


# Histogram buckets (upper edges, in hours) of a complaint's time from filing to resolution.
RESOLUTION_HOUR_EDGES = (4, 8, 24, 48, 72, 168, 336)


def complaint_tally(complaint: Document, zone: ZoneInfo) -> Tally:
    """A complaint: filed (on its day, by category, department and source: a patient, staff,
    or a low satisfaction score), and once resolved, whether by its deadline and how long it
    took (a histogram in hours, on the day it was filed); escalated to the department's leads."""
    tally: Tally = Counter()
    dims: Dimensions = (
        ("category", str(complaint.get("category") or "")),
        ("department", str(complaint.get("department") or "")),
        ("source", str(complaint.get("source") or "")),
    )
    measure = Measure.COMPLAINTS
    filed_on = _local_date(complaint["created_at"], zone)
    tally[(measure, "filed", filed_on, dims)] += 1
    if complaint.get("escalated_at"):
        tally[(measure, "escalated", filed_on, dims)] += 1
    resolved = complaint.get("resolved_at")
    if resolved:
        hours = (
            datetime.fromisoformat(resolved) - datetime.fromisoformat(complaint["created_at"])
        ).total_seconds() / 3600
        tally[(measure, "resolved", filed_on, dims)] += 1
        if resolved <= complaint["deadline"]:
            tally[(measure, "resolved_in_time", filed_on, dims)] += 1
        tally[
            (measure, f"resolution_hours_b{bucket(hours, RESOLUTION_HOUR_EDGES)}", filed_on, dims)
        ] += 1
    elif complaint.get("closed_at"):
        tally[(measure, "closed_unresolved", filed_on, dims)] += 1
    return tally


def ledger_entry_tally(entry: Document, zone: ZoneInfo) -> Tally:
    """A loyalty ledger entry (written once, never changed), on its day: points earned (made
    spendable: an earn confirmed at once, a visit's confirmation, a staff credit), pending
    (earned for a visit not yet attended), reversed, redeemed (with the redemptions' count),
    expired and adjusted away; by the event that earned them."""
    tally: Tally = Counter()
    kind, points = entry.get("kind"), int(entry.get("points") or 0)
    day = _local_date(entry["at"], zone)
    dims: Dimensions = (("event", str(entry.get("event") or "")),)
    measure = Measure.LOYALTY
    if kind == "earn":
        field = "points_pending" if entry.get("status") == "pending" else "points_earned"
        tally[(measure, field, day, dims)] += points
    elif kind == "confirm":
        tally[(measure, "points_earned", day, (("event", str(entry.get("event") or "")),))] += (
            points
        )
    elif kind == "reverse":
        tally[(measure, "points_reversed", day, dims)] += points
    elif kind == "redeem":
        tally[(measure, "points_redeemed", day, dims)] += points
        tally[(measure, "redemptions", day, dims)] += 1
    elif kind == "expire":
        tally[(measure, "points_expired", day, dims)] += points
    elif kind == "adjust":
        field = "points_adjusted_in" if "expires_at" in entry else "points_adjusted_out"
        tally[(measure, field, day, (("event", "adjustment"),))] += points
    return tally


# Which kind of record a table key is, among those counted: (sort key or its prefix, a part the
# partition key holds, kind).
_KINDS = (
    ("APPT", "#A#", "appointment"),
    ("DELIVERY", "#SEND#", "delivery"),
    ("TASK", "#TASK#", "task"),
    ("CARE#AC#", "", "aftercare"),
    ("CARE#RC#", "", "recall"),
    ("P#", "#CAMPAIGN#", "campaign_recipient"),
    ("OPTOUT#", "SMS#", "opt_out"),
    ("QR#", "#P#", "response"),
    ("COMPLAINT", "#COMPLAINT#", "complaint"),
    ("LEDGER#E#", "#P#", "ledger_entry"),
)


def record_kind(pk: str, sk: str) -> str | None:
    """Which kind of record a table key is, among those counted."""
    for sort_key, in_partition, kind in _KINDS:
        exact = not sort_key.endswith("#")
        if (sk == sort_key if exact else sk.startswith(sort_key)) and in_partition in pk:
            return kind
    return None


# What the stream handler is given (the event source mapping's filters on AWS, the local
# poller's own check): changes of the records counted, never a removal; and a campaign's patient
# reached by the driver (assigned to a group: their conversions are counted from then) or sent
# its message.
STREAM_FILTERS: list[Document] = [
    {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {
            "Keys": {
                "SK": {
                    "S": [
                        "APPT",
                        "DELIVERY",
                        "TASK",
                        "COMPLAINT",
                        {"prefix": "CARE#"},
                        {"prefix": "OPTOUT#"},
                        {"prefix": "QR#"},
                        {"prefix": "LEDGER#E#"},
                    ]
                }
            }
        },
    },
    {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {"NewImage": {"entity": {"S": ["campaign_recipient"]}}},
    },
]


def passes_stream_filter(record: Mapping[str, Any]) -> bool:
    """Whether any of STREAM_FILTERS lets a stream record through (the filters are or-ed)."""
    return passes(STREAM_FILTERS, record)


class Exposure(TypedDict):
    """A campaign's patient assigned to a group (`arm`: a wording, or control) when the driver
    reached them, at `at`; they convert if they book what the campaign asks for by `until`.
    Every patient counts in their group whatever became of the message (intention to treat):
    leaving out the messaged patients a message could not reach, and not the control patients
    it would not have reached, would make the groups unlike."""

    campaign_id: str
    patient_id: str
    arm: str
    at: str
    until: str
    type: str  # the appointment type asked for ("": any)
    department: str  # the department asked for ("": any)


def exposure_of(pk: str, sk: str, recipient: Document, goal: Document) -> Exposure:
    """The exposure a campaign recipient's item records."""
    at = str(recipient["started_at"])
    until = datetime.fromisoformat(at) + timedelta(days=int(goal["within_days"]))
    return {
        "campaign_id": pk.split("#CAMPAIGN#", 1)[1],
        "patient_id": sk.removeprefix("P#"),
        "arm": str(recipient.get("arm") or MESSAGED),
        "at": at,
        "until": utc_iso(until),
        "type": str(goal.get("appointment_type", "")),
        "department": str(goal.get("department", "")),
    }


def newly_reached(old: Document | None, new: Document | None) -> bool:
    """Whether a recipient's change is their message leaving."""
    return (new or {}).get("outcome") == "sent" and (old or {}).get("outcome") != "sent"


def converts(exposure: Mapping[str, Any], appointment: Document) -> bool:
    """Whether a booking is what an outreach asked for: made within its window after it, for
    a visit after it too (a visit entered late for an earlier day answers nothing)."""
    at = datetime.fromisoformat(exposure["at"])
    booked = datetime.fromisoformat(appointment["created_at"])
    if not at <= booked <= datetime.fromisoformat(exposure["until"]):
        return False
    if datetime.fromisoformat(appointment["start"]) < at:
        return False
    return all(
        not exposure[field] or appointment.get(field) == exposure[field]
        for field in ("type", "department")
    )


def tenant_of_key(pk: str, sk: str = "") -> str:
    """The tenant a counted record belongs to: its partition's, or for a phone's STOP to one
    hospital (keyed by the phone), the hospital its sort key names."""
    if sk.startswith("OPTOUT#"):
        return sk.removeprefix("OPTOUT#")
    return pk.split("#", 2)[1]


# Fields a rebuild cannot recount from the tenant's records and keeps as the stream counted
# them: a STOP is keyed by the phone's hash (no per-tenant Query finds it) and a START deletes it.
KEPT_THROUGH_REBUILD = frozenset({"opted_out"})


def opt_out_tally(stop: Document, zone: ZoneInfo) -> Tally:
    """A STOP to the hospital's number: an opt-out of its texts, on the day it came. (A STOP
    whose hospital could not be told belongs to no hospital's figures; an email address's
    complaint is its message's `bounced`-like outcome in the delivery log, not counted here.)"""
    tally: Tally = Counter()
    tally[
        (Measure.MESSAGES, "opted_out", _local_date(stop["at"], zone), (("channel", "sms"),))
    ] += 1
    return tally


def tally_of(kind: str, image: Document | None, zone: ZoneInfo) -> Tally:
    if image is None:
        return Counter()
    doc = image.get("doc") or {}
    if kind == "delivery":
        # The delivery's status is kept beside its doc (a claim's conditions read it).
        doc = {**doc, "status": image.get("status") or doc.get("status", "")}
    tally: Callable[[Document, ZoneInfo], Tally] = {
        "appointment": appointment_tally,
        "task": task_tally,
        "aftercare": aftercare_tally,
        "recall": recall_tally,
        "opt_out": opt_out_tally,
        "delivery": delivery_tally,
        "response": response_tally,
        "complaint": complaint_tally,
        "ledger_entry": ledger_entry_tally,
    }[kind]
    return tally(doc, zone)


def change(old: Tally, new: Tally) -> dict[CounterKey, int]:
    """How a change of a record moves the counters: new - old, nonzero only."""
    moved = {key: new.get(key, 0) - old.get(key, 0) for key in set(old) | set(new)}
    return {key: n for key, n in moved.items() if n}


# --- where counters are kept ---


def period(day: date, grain: Grain) -> str:
    if grain is Grain.DAY:
        return day.isoformat()
    if grain is Grain.WEEK:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def period_days(text: str, grain: Grain) -> tuple[date, date]:
    """The first and last day of a period (`period`'s inverse)."""
    if grain is Grain.DAY:
        day = date.fromisoformat(text)
        return day, day
    if grain is Grain.WEEK:
        iso_year, week = (int(part) for part in text.split("-W"))
        return date.fromisocalendar(iso_year, week, 1), date.fromisocalendar(iso_year, week, 7)
    year_text, month_text = text.split("-")
    year, month = int(year_text), int(month_text)
    following = date(year + month // 12, month % 12 + 1, 1)
    return date(year, month, 1), date.fromordinal(following.toordinal() - 1)


def with_slot_shares(values: Mapping[str, float], capacity: Mapping[str, int]) -> dict[str, float]:
    """The heat map: for each weekday x hour the places taken, the places offered (the
    department's schedules over the period's days) and the share taken."""
    shown = dict(values)
    for cell, offered in capacity.items():
        shown[f"capacity_{cell}"] = float(offered)
        if offered:
            shown[f"share_{cell}"] = round(values.get(f"booked_{cell}", 0.0) / offered, 4)
    return shown


class CounterItem(TypedDict):
    measure: str
    grain: str
    group_by: str
    period: str
    group: str


def counter_moves(moved: Mapping[CounterKey, int]) -> dict[tuple[str, ...], dict[str, int]]:
    """The counter items a change moves, and by how much each field: every grain, the tenant's
    whole figures and each dimension the measure is grouped by. Keyed by (measure, grain,
    group_by, period, group)."""
    items: dict[tuple[str, ...], dict[str, int]] = {}
    for (measure, field, day_text, dims), n in moved.items():
        day = date.fromisoformat(day_text)
        groups = [(EVERYTHING, "-")] + [
            (name, value) for name, value in dims if name in GROUP_BYS[Measure(measure)]
        ]
        for grain in Grain:
            for group_by, value in groups:
                key = (measure, grain.value, group_by, period(day, grain), value)
                fields = items.setdefault(key, {})
                fields[field] = fields.get(field, 0) + n
    return {key: fields for key, fields in items.items() if any(fields.values())}


def tallies(records: Iterable[tuple[str, Document]], zone: ZoneInfo) -> Tally:
    """The sum of the tallies of records as they stand (a rebuild)."""
    total: Tally = Counter()
    for kind, image in records:
        total.update(tally_of(kind, image, zone))
    return total


# --- what a read shows ---


def median_edge(values: Mapping[str, float], prefix: str, edges: tuple[int, ...]) -> float | None:
    """The upper edge of the histogram bucket holding the middle value (None: no values; the
    last, open bucket reads as its lower edge)."""
    counts = [values.get(f"{prefix}{i}", 0.0) for i in range(len(edges) + 1)]
    total = sum(counts)
    if total <= 0:
        return None
    seen = 0.0
    for index, n in enumerate(counts):
        seen += n
        if seen >= total / 2:
            return float(edges[min(index, len(edges) - 1)])
    return float(edges[-1])


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def derived(measure: Measure, values: Mapping[str, float], country: str = "") -> dict[str, float]:
    """A counter item's fields with the figures read from them: rates, medians, and the
    messages' estimated cost (texts priced for the hospital's `country`)."""
    shown = {
        k: v
        for k, v in values.items()
        if not k.startswith(
            ("lead_days_b", "action_hours_b", "answer_hours_b", "resolution_hours_b", "score_total")
        )
    }
    extra: dict[str, float | None] = {}
    if measure is Measure.APPOINTMENTS:
        confirmed = sum(v for k, v in values.items() if k.startswith("confirmed_"))
        kept = values.get("attended", 0.0)
        missed = values.get("noshow", 0.0)
        extra = {
            "confirmed": confirmed,
            "cancelled": values.get("cancelled_by_patient", 0.0)
            + values.get("cancelled_by_clinic", 0.0),
            "noshow_rate": _share(missed, kept + missed),
            "median_lead_days": median_edge(values, "lead_days_b", LEAD_DAY_EDGES),
            "median_hours_to_answer": median_edge(values, "answer_hours_b", ANSWER_HOUR_EDGES),
        }
    elif measure is Measure.MESSAGES:
        sent = values.get("sent", 0.0)
        extra = {
            "delivery_rate": _share(values.get("delivered", 0.0), sent),
            "suppressed_rate": _share(
                values.get("suppressed", 0.0), sent + values.get("suppressed", 0.0)
            ),
            "estimated_cost_usd": estimated_cost_usd(
                country,
                values.get("sms_segments", 0.0),
                values.get("sent_email", 0.0),
                values.get("sent_push", 0.0),
            ),
        }
    elif measure is Measure.RETURN_VISITS:
        extra = {
            "return_rate": _share(
                values.get("patients_returned", 0.0), values.get("patients_seen", 0.0)
            )
        }
    elif measure is Measure.FOLLOW_UPS:
        due = values.get("followups_due", 0.0)
        extra = {
            "booked_share": _share(values.get("followups_converted", 0.0), due),
            "adherence": _share(
                values.get("followups_attended", 0.0) + values.get("followups_visited", 0.0), due
            ),
        }
    elif measure is Measure.AFTERCARE:
        sent = values.get("checkins_sent", 0.0)
        answered = values.get("checkins_answered", 0.0) + values.get("checkins_answered_late", 0.0)
        extra = {
            "response_rate": _share(values.get("checkins_answered", 0.0), sent),
            "urgent_share": _share(values.get("checkins_urgent", 0.0), answered),
            "median_hours_to_staff_action": median_edge(
                values, "action_hours_b", ACTION_HOUR_EDGES
            ),
        }
    elif measure is Measure.SATISFACTION:
        answered = values.get("responses", 0.0)
        extra = {
            "nps": round(
                100 * (values.get("promoters", 0.0) - values.get("detractors", 0.0)) / answered, 1
            )
            if answered
            else None,
            "average_score": round(values.get("score_total", 0.0) / answered, 2)
            if answered
            else None,
        }
    elif measure is Measure.COMPLAINTS:
        extra = {
            "resolved_in_time_share": _share(
                values.get("resolved_in_time", 0.0), values.get("filed", 0.0)
            ),
            "median_hours_to_resolution": median_edge(
                values, "resolution_hours_b", RESOLUTION_HOUR_EDGES
            ),
        }
    shown.update({k: v for k, v in extra.items() if v is not None})
    return shown


# The overview's figures by measure; counts read as 0 when nothing happened, rates as unknown.
HEADLINES: dict[Measure, tuple[str, ...]] = {
    Measure.APPOINTMENTS: (
        "booked",
        "confirmed",
        "cancelled",
        "rescheduled",
        "attended",
        "noshow",
        "noshow_rate",
        "median_lead_days",
        "median_hours_to_answer",
    ),
    Measure.MESSAGES: (
        "sent",
        "suppressed",
        "failed",
        "opted_out",
        "sms_segments",
        "delivery_rate",
        "estimated_cost_usd",
    ),
    Measure.AFTERCARE: ("checkins_sent", "response_rate", "urgent_share", "tasks_opened"),
    Measure.SATISFACTION: ("responses", "nps"),
    Measure.COMPLAINTS: ("filed", "resolved", "resolved_in_time_share"),
    Measure.LOYALTY: ("points_earned", "points_redeemed", "points_expired"),
}
# The headlines that are rates or medians (read as unknown when nothing was counted); the rest
# are counts (read as 0).
RATES = frozenset(
    {
        "noshow_rate",
        "median_lead_days",
        "median_hours_to_answer",
        "delivery_rate",
        "response_rate",
        "urgent_share",
        "nps",
        "resolved_in_time_share",
    }
)
COUNTS = frozenset(name for names in HEADLINES.values() for name in names) - RATES


# --- return visits: patients seen in a period, and those who came back within N days ---

RETURN_WINDOW_DAYS = 90  # a tenant's `analytics.return_window_days` replaces it
ATTENDED = frozenset({"arrived", "fulfilled"})


def return_window(tenant: Document | None) -> int:
    return int(
        ((tenant or {}).get("analytics") or {}).get("return_window_days", RETURN_WINDOW_DAYS)
    )


def visit_day(appointment: Document | None, zone: ZoneInfo) -> date | None:
    """The local day of an attended visit (None: not attended)."""
    if not appointment or appointment.get("status") not in ATTENDED:
        return None
    return datetime.fromisoformat(appointment["start"]).astimezone(zone).date()


def came_back(earlier: date, later: date, window: int) -> bool:
    """Another visit after `earlier`, within the window (a second visit the same day is not)."""
    return 0 < (later - earlier).days <= window


def member_group(patient: Mapping[str, Any] | None) -> str:
    """The return-visit group of a patient: their member class, or `none` (members of a
    loyalty or membership class against everyone else)."""
    return str((patient or {}).get("member_class") or NO_MEMBER_CLASS)


def return_visit_counters(
    visits: Mapping[str, Iterable[date]], window: int, classes: Mapping[str, str] | None = None
) -> dict[tuple[str, ...], dict[str, int]]:
    """For each period: patients seen (at least one visit in it) and of those, patients who came
    back within `window` days of a visit in it, in all and by member class (`classes`: each
    patient's group). `visits`: each patient's visit days. What the stream keeps with a marker
    per patient and period, computed at once (a rebuild)."""
    items: dict[tuple[str, ...], dict[str, int]] = {}
    for patient, days in visits.items():
        ordered = sorted(set(days))
        returned = {d for d in ordered if any(came_back(d, later, window) for later in ordered)}
        groups = [
            (EVERYTHING, "-"),
            ("member_class", (classes or {}).get(patient, NO_MEMBER_CLASS)),
        ]
        for grain in Grain:
            for field, which in (("patients_seen", ordered), ("patients_returned", returned)):
                for text in {period(d, grain) for d in which}:
                    for group, value in groups:
                        key = (Measure.RETURN_VISITS.value, grain.value, group, text, value)
                        fields = items.setdefault(key, {})
                        fields[field] = fields.get(field, 0) + 1
    return items
