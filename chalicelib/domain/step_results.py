"""What each Step Functions step handler returns to its state machine (a Task state's result):
the keys its Choices, Waits and Maps read (`$.<result path>.result.<key>`). A key a handler does
not always return is NotRequired,
and a Choice that reads one checks `IsPresent` first. `tests/infra/test_state_machine_policy.py`
holds every ASL file to these shapes. (A send's result is `deliveries.SendResult`.)"""

from __future__ import annotations

from typing import NotRequired, TypedDict

# --- the appointment journey (statemachines/appointment.asl.json) ---


class PlannedReminder(TypedDict):
    step: str
    at: str


class Timetable(TypedDict):
    """The appointment journey's plan (`domain.appointment_journey.plan`)."""

    confirmation_at: str
    reminders: list[PlannedReminder]
    await_answer: bool
    answer_deadline: str
    visit_check_at: str
    noshow_retry_seconds: int


class NextStep(TypedDict):
    """The step an appointment journey takes next, and when (`$.journey.next`)."""

    step: str  # domain.appointment_journey.Step, or a reminder's `reminder_<n><d|h|m>`
    at: str


class JourneyState(TypedDict):
    """`$.journey`: the plan (empty until the start step made it) and the next step. What the
    appointment journey's step task returns, and reads back as its input: ids and times only."""

    plan: Timetable | dict[str, object]
    next: NextStep


class StepFailedReported(TypedDict):
    task_id: str  # every journey's last resort: the staff task naming the step


# --- campaigns (campaign.asl.json, outreach.asl.json) ---


class CampaignBatch(TypedDict):
    done: bool
    next_at: NotRequired[str]  # when not done: the next rate window, or the end of quiet hours


class DriverContinued(TypedDict):
    part: int
    started: bool  # False: that part had been started already (a retried task)


class OutreachSent(TypedDict):
    status: str  # sent | suppressed | failed | deferred | paced | skipped
    retry_at: NotRequired[str]  # when deferred (quiet hours) or paced (the rate's next window)


# --- aftercare (aftercare.asl.json) ---


class DueStep(TypedDict):
    step_id: str  # for a look: the open check-in it watches
    action: str  # care_plans.StepAction: the aftercare task's action that serves the timer
    at: str


class NextAftercareStep(TypedDict):
    done: bool
    due: NotRequired[DueStep]  # when not done


class AftercareStepSent(TypedDict):
    status: str
    why: NotRequired[str]  # when skipped
    retry_at: NotRequired[str]  # when deferred
    remind_at: NotRequired[str]  # a check-in's reminder
    escalate_at: NotRequired[str]  # a check-in's hand-over to staff
    closes_at: NotRequired[str]  # a re-check invitation's booking window


class AnswerTimers(TypedDict):
    remind_at: str
    escalate_at: str


class CheckInReminded(TypedDict):
    answered: bool
    reminder: NotRequired[str]  # the reminder's send status when not answered


class CheckInEscalated(TypedDict):
    answered: bool


class Looked(TypedDict):
    looked: bool  # a wake with nothing to do: the next `next` sees any check-in added meanwhile


class RecheckChecked(TypedDict):
    rebooked: bool


class StepSkipped(TypedDict):
    skipped: bool


class AftercareFinished(TypedDict):
    outcome: str | None


# --- recall (recall.asl.json) ---


class RecallStep(TypedDict):
    step: str
    at: str


class RecallPlan(TypedDict):
    proceed: bool
    steps: NotRequired[list[RecallStep]]  # when proceeding


class RecallStepDone(TypedDict):
    status: str  # sent | suppressed | ... | deferred | staff_task | over
    retry_at: NotRequired[str]  # when deferred


class RecallBackfillPage(TypedDict):
    done: bool
    cursor: str | None  # where the next page starts
    pages: int  # pages done in this execution
    scheduled: int  # patients made due by this backfill so far


class RecallFinished(TypedDict):
    status: str


# --- a bulk FHIR import (statemachines/fhir-import.asl.json) ---


class FhirImportPage(TypedDict):
    """`$.page.result`: one page read and imported (or none: the import had ended)."""

    done: bool  # nothing more for this execution: the import ended, or the next part carries on
    pages: int  # pages run by this execution


class FhirImportFailed(TypedDict):
    failed: bool  # False: the import had ended already (completed, or failed before)
