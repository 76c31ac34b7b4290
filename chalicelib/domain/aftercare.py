"""The aftercare journey record: its status and its steps', where each may go next, and how each
record is built. Pure: no I/O. (The care plan's rules, the agenda and its timers, are in
`care_plans`.)

A journey runs until its timers are spent, then completes with an outcome; it also completes,
early, when its patient is gone. Its steps move only forward, through `NEXT_STEP_STATUSES`: a
replayed task, or one that lost a race with the patient's answer, finds its step moved on and
leaves it as it is.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import NotRequired, TypedDict

from chalicelib.domain.common import Document
from chalicelib.domain.errors import NotFound
from chalicelib.domain.step_results import AftercareStepSent

KIND = "aftercare"  # the record's `kind` beside recalls in the patient's care records


class JourneyStatus(StrEnum):
    RUNNING = "running"  # its state machine waits for the next timer or serves one
    COMPLETED = "completed"  # its timers spent, or its patient gone: `outcome` says which


NEXT_JOURNEY_STATUSES: dict[JourneyStatus, frozenset[JourneyStatus]] = {
    JourneyStatus.RUNNING: frozenset({JourneyStatus.COMPLETED}),
    JourneyStatus.COMPLETED: frozenset(),
}


def journey_can_become(current: str, new: JourneyStatus) -> bool:
    return new in NEXT_JOURNEY_STATUSES[JourneyStatus(current)]


class Outcome(StrEnum):
    """How a completed journey went: the re-check loop decides it when the plan has one."""

    COMPLETED = "completed"  # no re-check in the plan
    REBOOKED = "rebooked"
    NOT_REBOOKED = "not_rebooked"
    PATIENT_GONE = "patient_gone"  # deleted while the journey ran: nothing more was sent


class StepKind(StrEnum):
    CHECKIN = "checkin"  # a questionnaire, answered through its link
    EDUCATION = "education"  # a page to read
    RECHECK = "recheck"  # an invitation to book a re-check within a window


class StepStatus(StrEnum):
    PLANNED = "planned"  # not sent yet
    AWAITING_ANSWER = "awaiting_answer"  # a check-in sent; its reminder and hand-over pending
    ANSWERED = "answered"  # within the check-in's window
    ANSWERED_LATE = "answered_late"  # after staff took over: recorded, no branch
    UNANSWERED = "unanswered"  # handed over to staff
    AWAITING_BOOKING = "awaiting_booking"  # a re-check invitation sent; its window open
    BOOKED = "booked"
    NOT_BOOKED = "not_booked"
    DONE = "done"  # education sent
    FAILED = "failed"  # its task kept failing (staff were told)


S = StepStatus
# A check-in's link may be answered even after its task failed; an answer may come before the
# check-in goes out (the same questionnaire through the general route).
NEXT_STEP_STATUSES: dict[StepStatus, frozenset[StepStatus]] = {
    S.PLANNED: frozenset({S.AWAITING_ANSWER, S.AWAITING_BOOKING, S.DONE, S.ANSWERED, S.FAILED}),
    S.AWAITING_ANSWER: frozenset({S.ANSWERED, S.UNANSWERED, S.FAILED}),
    S.UNANSWERED: frozenset({S.ANSWERED_LATE}),
    S.FAILED: frozenset({S.ANSWERED}),
    S.AWAITING_BOOKING: frozenset({S.BOOKED, S.NOT_BOOKED, S.FAILED}),
    S.ANSWERED: frozenset(),
    S.ANSWERED_LATE: frozenset(),
    S.BOOKED: frozenset(),
    S.NOT_BOOKED: frozenset(),
    S.DONE: frozenset(),
}
# What a step becomes once sent, by its kind.
SENT_STATUS = {
    StepKind.CHECKIN: S.AWAITING_ANSWER,
    StepKind.EDUCATION: S.DONE,
    StepKind.RECHECK: S.AWAITING_BOOKING,
}


def step_can_become(current: str, new: StepStatus) -> bool:
    return new in NEXT_STEP_STATUSES[StepStatus(current)]


def answered_status(current: str) -> StepStatus | None:
    """What an answer to the step's own questionnaire response makes of it, None if nothing."""
    if current == S.UNANSWERED:
        return S.ANSWERED_LATE
    return S.ANSWERED if step_can_become(current, S.ANSWERED) else None


# --- the records ---


class AftercareRef(TypedDict):
    """Which journey a task or an answer concerns: the aftercare state machine's input."""

    tenant_id: str
    patient_id: str
    journey_id: str


class AftercareStep(TypedDict):
    id: str  # checkin-d1, education-d2-1, recheck-d30, checkin-extra-1
    kind: str  # a StepKind
    at: str  # when it is due (UTC)
    status: str  # a StepStatus
    questionnaire: NotRequired[str]  # a check-in's
    because: NotRequired[str]  # an extra check-in: the urgent answer it follows
    title: NotRequired[dict[str, str]]  # education: by language
    url: NotRequired[str]  # education
    book_within_days: NotRequired[int]  # a re-check
    # What its tasks and the patient did:
    not_before: NotRequired[str]  # a send deferred by quiet hours
    response_id: NotRequired[str]  # the questionnaire response a check-in's link opens
    sent: NotRequired[str]  # the send's status
    remind_at: NotRequired[str]
    escalate_at: NotRequired[str]
    closes_at: NotRequired[str]  # a re-check's booking window
    reminder: NotRequired[str]  # the reminder's send status, or none
    escalated_at: NotRequired[str]
    risk: NotRequired[str]  # the answer's
    answered_at: NotRequired[str]
    answered_by: NotRequired[str]  # a response other than the check-in's own
    branched: NotRequired[str]  # the extra check-in an urgent answer added, or none
    appointment_id: NotRequired[str]  # what a re-check invitation was answered with
    booked_at: NotRequired[str]


class CareEvent(TypedDict):
    """A discharge or surgery staff recorded (a fulfilled visit comes as its event instead)."""

    id: str
    type: str
    tenant_id: str
    patient_id: str
    department: str
    occurred_at: str
    recorded_by: str


class AftercareJourney(TypedDict):
    id: str
    kind: str  # KIND
    patient_id: str
    care_plan: str
    plan: Document  # the plan as it was when the journey started
    event: Document  # what started it, without the tenant
    department: str
    status: str  # a JourneyStatus
    steps: list[AftercareStep]
    started_at: str
    updated_at: str
    completed_at: NotRequired[str]
    outcome: NotRequired[str]  # an Outcome, once completed
    version: NotRequired[int]


def journey_id_for(event_key: str, plan_id: str) -> str:
    """The same event under the same plan is one journey, however often it is reported."""
    return "ac-" + hashlib.sha256(f"{event_key}|{plan_id}".encode()).hexdigest()[:16]


def new_care_event(
    body: Document,
    *,
    event_id: str,
    tenant_id: str,
    patient_id: str,
    occurred_at: str,
    by: str,
) -> CareEvent:
    """The event from a schema-valid `care-event-create` body."""
    return CareEvent(
        id=event_id,
        type=body["type"],
        tenant_id=tenant_id,
        patient_id=patient_id,
        department=body["department"],
        occurred_at=occurred_at,
        recorded_by=by,
    )


def new_journey(
    journey_id: str,
    *,
    plan: Document,
    event: Document,
    patient: Document,
    steps: list[AftercareStep],
    now: str,
) -> AftercareJourney:
    """A running journey with its agenda. It keeps a copy of the plan, so that editing a plan
    changes only journeys started after the edit."""
    return AftercareJourney(
        id=journey_id,
        kind=KIND,
        patient_id=patient["id"],
        care_plan=plan["id"],
        plan={k: v for k, v in plan.items() if k != "version"},
        event={k: v for k, v in event.items() if k != "tenant_id"},
        # A visit's event names its department; otherwise the patient's first, if any.
        department=event.get("department") or (patient.get("departments") or [""])[0],
        status=JourneyStatus.RUNNING,
        steps=steps,
        started_at=now,
        updated_at=now,
    )


def check_in(step_id: str, questionnaire: str, at: str, because: str = "") -> AftercareStep:
    step = AftercareStep(
        id=step_id, kind=StepKind.CHECKIN, questionnaire=questionnaire, at=at, status=S.PLANNED
    )
    if because:
        step["because"] = because
    return step


def education(step_id: str, title: dict[str, str], url: str, at: str) -> AftercareStep:
    return AftercareStep(
        id=step_id, kind=StepKind.EDUCATION, title=title, url=url, at=at, status=S.PLANNED
    )


def recheck(step_id: str, at: str, book_within_days: int) -> AftercareStep:
    return AftercareStep(
        id=step_id,
        kind=StepKind.RECHECK,
        at=at,
        book_within_days=book_within_days,
        status=S.PLANNED,
    )


def step_of(journey: Document, step_id: str) -> Document:
    """The journey's step by id (the record as stored, to read or change in place)."""
    for step in journey["steps"]:
        if step["id"] == step_id:
            found: Document = step
            return found
    raise NotFound(f"no step {step_id} in journey {journey['id']}")


def outcome(steps: list[Document]) -> Outcome:
    """How the journey ended: the re-check loop decides it when the plan has one."""
    rechecks = [step["status"] for step in steps if step["kind"] == StepKind.RECHECK]
    if S.BOOKED in rechecks:
        return Outcome.REBOOKED
    if rechecks:
        return Outcome.NOT_REBOOKED
    return Outcome.COMPLETED


def completed(journey: Document, ending: Outcome | None, now: str) -> Document | None:
    """The journey ended with `ending` (None: as its steps went); None if it had ended already."""
    if not journey_can_become(journey["status"], JourneyStatus.COMPLETED):
        return None
    return {
        **journey,
        "status": JourneyStatus.COMPLETED,
        "completed_at": now,
        "outcome": ending or outcome(journey["steps"]),
        "updated_at": now,
    }


def sent_before(step: Document) -> AftercareStepSent:
    """A step's send result as its first run gave it (kept in the step): what a replay returns."""
    again = AftercareStepSent(status=step.get("sent", "skipped"))
    if "remind_at" in step:
        again["remind_at"] = step["remind_at"]
    if "escalate_at" in step:
        again["escalate_at"] = step["escalate_at"]
    if "closes_at" in step:
        again["closes_at"] = step["closes_at"]
    return again
