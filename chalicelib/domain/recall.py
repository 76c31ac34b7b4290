"""Recall rules: when a patient is due to come back, and what is said until they book. Pure.

A rule matches a patient by a condition tag (diabetes every 90 days), by the type of a visit
(a re-check 30 days after a procedure) or by any visit (an annual check-up 12 months after the
last one). A fulfilled visit restarts the count; gaining a condition tag starts it from that day;
losing the tag cancels a recall not yet under way. Once due, the patient gets an invitation, a
reminder, a last call, then staff get a task; booking what the rule asks for converts the recall.

A cycle that ends without a booking is followed by the next one, due `after_days` after the
last due date (a chronic patient who never answers is asked again every interval), until the
rule's `repeat.max_cycles` cycles in a row went unanswered: then, as `repeat.then` says, staff
are handed the patient for a phone call, or the recall stops. A visit that counts starts the
count again.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Problems
from chalicelib.domain.segments import CONDITION_PREFIX, VISITED_ANY, VISITED_PREFIX
from chalicelib.domain.step_results import RecallStep
from chalicelib.domain.tenants import out_of_quiet_hours

KIND = "recall"  # the record's `kind` beside aftercare journeys in the patient's care records
SEQUENCE_DEFAULTS = {
    "reminder_after_days": 7,
    "last_call_after_days": 14,
    "staff_task_after_days": 21,
}
INVITE_TIME = time(10, 0)  # local time of day recall messages go out
BACKFILLED = "rule saved"  # a recall's `why` when a rule's backfill made it due
# The cycles a recall keeps for its view: a 30-day rule's for decades, in well under DynamoDB's
# 400 KB per item.
CYCLES_KEPT = 500


class RecallStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its due date (in the due index)
    INVITED = "invited"  # its cycle's journey is under way
    CONVERTED = "converted"  # the patient booked what the rule asks for
    # A cycle's outcome when it ended without a booking; the recall itself moves on in the
    # same write (the next cycle, handed over or stopped), so it is never left in this status.
    UNCONVERTED = "unconverted"
    CANCELLED = "cancelled"  # the rule no longer applies to the patient, or was switched off
    HANDED_OVER = "handed_over"  # max_cycles unanswered: staff call the patient
    STOPPED = "stopped"  # max_cycles unanswered, and the rule says to stop


R = RecallStatus
# A visit that counts, a tag gained or a rule saved may start a new cycle from any status.
NEXT_STATUSES: dict[RecallStatus, frozenset[RecallStatus]] = {
    R.SCHEDULED: frozenset({R.SCHEDULED, R.INVITED, R.CANCELLED, R.CONVERTED}),
    R.INVITED: frozenset({R.SCHEDULED, R.CONVERTED, R.UNCONVERTED, R.CANCELLED}),
    R.UNCONVERTED: frozenset({R.SCHEDULED, R.HANDED_OVER, R.STOPPED}),
    R.CONVERTED: frozenset({R.SCHEDULED}),
    R.CANCELLED: frozenset({R.SCHEDULED}),
    R.HANDED_OVER: frozenset({R.SCHEDULED}),
    R.STOPPED: frozenset({R.SCHEDULED}),
}
OPEN = frozenset({R.SCHEDULED, R.INVITED})
# An appointment in one of these statuses is a booking that can convert a recall.
BOOKING_STATUSES = frozenset({"booked", "confirmed", "arrived", "fulfilled"})


def can_become(current: str, new: RecallStatus) -> bool:
    return new in NEXT_STATUSES[RecallStatus(current)]


def after_unconverted(
    rule: Document, due: date, unanswered: int, today: date
) -> tuple[RecallStatus, date | None]:
    """What follows a cycle (due on `due`) that ended without a booking, `unanswered` cycles in
    a row now: the next cycle's due date, or the end the rule names once its cap is reached."""
    repeat = rule.get("repeat", {})
    cap = repeat.get("max_cycles")
    if cap is not None and unanswered >= cap:
        ending = R.STOPPED if repeat.get("then") == "stop" else R.HANDED_OVER
        return ending, None
    return R.SCHEDULED, max(due + timedelta(days=rule["after_days"]), today + timedelta(days=1))


class CycleOutcome(StrEnum):
    """How a cycle ended, as the recall's history lists it."""

    CONVERTED = "converted"  # the patient booked what the rule asks for
    UNCONVERTED = "unconverted"  # the sequence ran out without a booking
    CANCELLED = "cancelled"  # the rule was switched off or no longer applies
    VISITED = "visited"  # a visit that counts came first and started the count again


class RecallRef(TypedDict):
    """One cycle of one recall: the recall state machine's input."""

    tenant_id: str
    patient_id: str
    rule_id: str
    due_date: str


class RecallCycle(TypedDict):
    due_date: str
    outcome: str  # a CycleOutcome
    settled_at: str
    appointment_id: NotRequired[str]  # the booking that converted it


class RecallRecord(TypedDict):
    """A patient's recall under one rule: the open cycle, and the history of those before."""

    id: str  # the rule's id: one recall per patient and rule
    kind: str  # KIND
    rule_id: str
    patient_id: str
    status: str  # a RecallStatus
    due_date: str  # the open cycle's
    ref: str  # the open cycle's booking-link reference (`cycle_ref`)
    why: str  # what started the cycle: visit, condition, unconverted, BACKFILLED
    unanswered_cycles: int  # in a row
    cycles: list[RecallCycle]  # ended ones, oldest first, the last CYCLES_KEPT
    created_at: str
    updated_at: str
    invited_at: NotRequired[str]
    execution: NotRequired[str]  # the cycle's journey
    settled_at: NotRequired[str]
    appointment_id: NotRequired[str]
    version: NotRequired[int]


def cycle_ref(patient_id: str, rule_id: str, due: str) -> str:
    """An opaque name for one recall cycle: its booking link and its execution carry it."""
    return "rc-" + hashlib.sha256(f"{patient_id}|{rule_id}|{due}".encode()).hexdigest()[:16]


def execution_name(tenant_id: str, patient_id: str, rule_id: str, due: str) -> str:
    """A cycle's journey: one per (patient, rule, due date), so a repeated start is a no-op."""
    return f"{tenant_id}-{cycle_ref(patient_id, rule_id, due)}"


def backfill_name(tenant_id: str, rule_id: str, version: int, part: int) -> str:
    """One execution per (rule version, part): a repeated start is a no-op."""
    digest = hashlib.sha256(f"{rule_id}|{version}".encode()).hexdigest()[:16]
    return f"{tenant_id}-bf-{digest}-{part}"


def cycle_record(
    due: str, outcome: CycleOutcome, at: str, appointment_id: str | None = None
) -> RecallCycle:
    """One ended cycle as the care-journey view lists it."""
    cycle = RecallCycle(due_date=due, outcome=outcome, settled_at=at)
    if appointment_id:
        cycle["appointment_id"] = appointment_id
    return cycle


def _with_cycle(recall: Document, cycle: RecallCycle) -> list[RecallCycle]:
    return [*recall.get("cycles", []), cycle][-CYCLES_KEPT:]


def new_cycle(
    current: Document | None, *, patient_id: str, rule_id: str, due: date, why: str, now: str
) -> RecallRecord:
    """The recall with a new cycle due on `due`, written over `current` (None: the first). A
    cycle under way ends as visited (the patient came), and the unanswered count starts again."""
    cycles: list[RecallCycle] = list((current or {}).get("cycles", []))
    if current is not None and current["status"] == R.INVITED:
        cycles = _with_cycle(current, cycle_record(current["due_date"], CycleOutcome.VISITED, now))
    return RecallRecord(
        id=rule_id,
        kind=KIND,
        rule_id=rule_id,
        patient_id=patient_id,
        status=R.SCHEDULED,
        due_date=due.isoformat(),
        ref=cycle_ref(patient_id, rule_id, due.isoformat()),
        why=why,
        unanswered_cycles=0,
        cycles=cycles[-CYCLES_KEPT:],
        created_at=(current or {}).get("created_at", now),
        updated_at=now,
    )


def invited(recall: Document, now: str, execution: str | None = None) -> Document | None:
    """The cycle's journey is under way (out of the due index); None unless it was scheduled."""
    if not can_become(recall["status"], R.INVITED):
        return None
    changed = {**recall, "status": R.INVITED, "invited_at": now, "updated_at": now}
    if execution:
        changed["execution"] = execution
    return changed


def cancelled(recall: Document, now: str) -> Document | None:
    """The rule no longer applies before the cycle began: no cycle to record."""
    if not can_become(recall["status"], R.CANCELLED):
        return None
    return {**recall, "status": R.CANCELLED, "updated_at": now}


def settled(
    recall: Document, status: RecallStatus, now: str, appointment_id: str | None = None
) -> Document | None:
    """The open cycle ends as converted or cancelled, recorded in the history; None if the
    recall cannot end so (it ended already)."""
    if status not in (R.CONVERTED, R.CANCELLED) or not can_become(recall["status"], status):
        return None
    cycle = cycle_record(recall["due_date"], CycleOutcome(status), now, appointment_id)
    changed = {
        **recall,
        "status": status,
        "settled_at": now,
        "cycles": _with_cycle(recall, cycle),
        "updated_at": now,
    }
    if status == R.CONVERTED:
        changed["unanswered_cycles"] = 0
    if appointment_id:
        changed["appointment_id"] = appointment_id
    return changed


def unconverted(recall: Document, rule: Document, now: datetime) -> Document | None:
    """The open cycle ended without a booking: in the same record, the next cycle falls due or,
    the rule's cap reached, the recall is handed over or stops. None unless it was invited."""
    if not can_become(recall["status"], R.UNCONVERTED):
        return None
    at = utc_iso(now)
    unanswered = int(recall.get("unanswered_cycles", 0)) + 1
    status, next_due = after_unconverted(
        rule, date.fromisoformat(recall["due_date"]), unanswered, now.date()
    )
    cycle = cycle_record(recall["due_date"], CycleOutcome.UNCONVERTED, at)
    changed = {
        **recall,
        "status": status,
        "settled_at": at,
        "unanswered_cycles": unanswered,
        "cycles": _with_cycle(recall, cycle),
        "updated_at": at,
    }
    if next_due is not None:
        changed.update(
            due_date=next_due.isoformat(),
            ref=cycle_ref(recall["patient_id"], recall["rule_id"], next_due.isoformat()),
            why="unconverted",
        )
    return changed


def check_rule(rule: Document, department_ids: set[str]) -> None:
    problems = Problems()
    if rule["book"]["department"] not in department_ids:
        problems.add("$.book.department", f"no department {rule['book']['department']!r}")
    sequence = {**SEQUENCE_DEFAULTS, **rule.get("sequence", {})}
    if not (
        sequence["reminder_after_days"]
        < sequence["last_call_after_days"]
        < sequence["staff_task_after_days"]
    ):
        problems.add(
            "$.sequence",
            "reminder_after_days < last_call_after_days < staff_task_after_days, please",
        )
    problems.raise_if_any()


def conditions_of(patient: Document) -> set[str]:
    return set(patient.get("medical", {}).get("conditions", []))


def applies_to(rule: Document, patient: Document) -> bool:
    """Whether a condition rule still concerns this patient (other kinds always may)."""
    condition = rule["match"].get("condition")
    return condition is None or condition in conditions_of(patient)


def due_after_visit(rule: Document, patient: Document, visit: Document) -> date | None:
    """The new due date a fulfilled visit gives under this rule, or None if it does not count."""
    if rule.get("enabled", True) is False:
        return None
    match = rule["match"]
    counts = (
        # A condition's review is a visit to where the rule sends the patient, not any visit.
        (
            "condition" in match
            and match["condition"] in conditions_of(patient)
            and converts(
                rule, {"department": visit["department"], "type": visit["appointment_type"]}
            )
        )
        or match.get("appointment_type") == visit["appointment_type"]
        or match.get("any_visit") is True
    )
    if not counts:
        return None
    return date.fromisoformat(visit["date"]) + timedelta(days=rule["after_days"])


def changes_for_patient(
    rules: list[Document],
    patient: Document,
    recalls: dict[str, Document],
    today: date,
    gained: set[str] | frozenset[str] = frozenset(),
) -> tuple[dict[str, date], list[str]]:
    """After a profile change: condition rules newly applying are scheduled from today; open
    recalls of rules that no longer apply are cancelled. Returns (to schedule, to cancel).

    A tag just `gained` also re-dates a recall a rule's backfill made due today (the backfill
    cannot tell a tag of long ago from one being added as it runs): the count starts from the
    tagging, whichever of the two came first."""
    schedule: dict[str, date] = {}
    cancel: list[str] = []
    for rule in rules:
        condition = rule["match"].get("condition")
        if condition is None:
            continue
        current = recalls.get(rule["id"])
        if rule.get("enabled", True) and condition in conditions_of(patient):
            # Only a first count (or one cancelled before): later cycles follow visits, and
            # editing an unrelated field must not restart them.
            backfilled = (
                current is not None
                and current["status"] == RecallStatus.SCHEDULED
                and current.get("why") == BACKFILLED
                and condition in gained
            )
            if current is None or current["status"] == RecallStatus.CANCELLED or backfilled:
                schedule[rule["id"]] = today + timedelta(days=rule["after_days"])
        elif current is not None and current["status"] == RecallStatus.SCHEDULED:
            cancel.append(rule["id"])
    return schedule, cancel


def sequence_plan(
    rule: Document, due: date, zone: ZoneInfo, quiet: Document, now: datetime
) -> list[RecallStep]:
    """The recall's steps and when each happens (UTC ISO), counted from the due day."""
    sequence = {**SEQUENCE_DEFAULTS, **rule.get("sequence", {})}

    def on(day: date) -> str:
        moment = max(datetime.combine(day, INVITE_TIME, tzinfo=zone), now)
        return utc_iso(out_of_quiet_hours(moment, zone, quiet))

    return [
        {"step": "recall_invitation", "at": on(due)},
        {
            "step": "recall_reminder",
            "at": on(due + timedelta(days=sequence["reminder_after_days"])),
        },
        {
            "step": "recall_last_call",
            "at": on(due + timedelta(days=sequence["last_call_after_days"])),
        },
        {
            "step": "staff_task",
            # Staff work any hour: no quiet-hours shift.
            "at": utc_iso(
                max(
                    datetime.combine(
                        due + timedelta(days=sequence["staff_task_after_days"]),
                        INVITE_TIME,
                        tzinfo=zone,
                    ),
                    now,
                )
            ),
        },
    ]


def backfill_segment(rule: Document) -> str:
    """The index whose members a rule concerns (`domain.segments`): for a rule saved after its
    patients already carry its tag or had its visits."""
    match = rule["match"]
    if "condition" in match:
        return CONDITION_PREFIX + str(match["condition"])
    if "appointment_type" in match:
        return VISITED_PREFIX + str(match["appointment_type"])
    return VISITED_ANY


def backfill_due(rule: Document, patient: Document, visits: list[Document], today: date) -> date:
    """When a patient found by a rule's backfill falls due: `after_days` after their last visit
    that counts, or today when that has passed or none is known (a tag imported without its
    history: the hospital asks now)."""
    dues = [d for v in visits if (d := due_after_visit(rule, patient, v)) is not None]
    return max([today, *dues])


def converts(rule: Document, appointment: Document) -> bool:
    """Does booking this appointment answer the recall?"""
    book = rule["book"]
    if appointment["department"] != book["department"]:
        return False
    return "appointment_type" not in book or appointment["type"] == book["appointment_type"]
