"""The aftercare state machine's tasks: the journey's next timer, and each timer served.

The state machine asks for the earliest timer (`care_plans.due`), waits for it, serves it and
asks again, so every step goes out on its own date whatever earlier steps still wait for. Every
task is safe to replay: sends are claimed by key, staff tasks are opened once by id, and a step
that has moved on (`domain.aftercare.NEXT_STEP_STATUSES`) is not moved again.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from datetime import datetime, timedelta

from chalicelib import clock
from chalicelib.domain import care_plans as rules
from chalicelib.domain.aftercare import (
    SENT_STATUS,
    AftercareRef,
    JourneyStatus,
    Outcome,
    StepKind,
    StepStatus,
    completed,
    sent_before,
    step_of,
)
from chalicelib.domain.care_plans import StepAction
from chalicelib.domain.common import Document, parse_timestamp, utc_iso
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.satisfaction import QUESTIONNAIRE as SATISFACTION
from chalicelib.domain.step_results import (
    AftercareFinished,
    AftercareStepSent,
    CheckInEscalated,
    CheckInReminded,
    Looked,
    NextAftercareStep,
    RecheckChecked,
    StepSkipped,
)
from chalicelib.domain.tenants import department_names
from chalicelib.observability import count, logger
from chalicelib.services.aftercare.records import JourneyRecords, zone_of
from chalicelib.services.aftercare.views import booking_link
from chalicelib.services.deliveries import Deliveries, Message, patient_fields
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.settings import get_settings
from chalicelib.store.responses import ResponseRepository

S = StepStatus


def questionnaire_link(response_id: str) -> str:
    return f"{get_settings().app_link_base}/q/{response_id}"


def step_message(
    tenant: Document,
    patient: Document,
    department: str,
    step: Document,
    response_id: str,
    journey_id: str,
) -> tuple[str, Document]:
    """A step's template and the fields it is filled with: a check-in links to its
    questionnaire response, an education step to its material, a re-check to the booking."""
    kind = StepKind(step["kind"])
    template = "recheck_invite" if kind == StepKind.RECHECK else kind.value
    if kind == StepKind.CHECKIN and step["questionnaire"] == SATISFACTION:
        template = "satisfaction_survey"  # a survey of the visit, not a recovery check-in
    fields: Document = {
        **patient_fields(tenant, patient),
        "department": department_names(tenant).get(department, ""),
    }
    if kind == StepKind.CHECKIN:
        fields["link"] = questionnaire_link(response_id)
    elif kind == StepKind.EDUCATION:
        fields["link"] = step["url"]
        fields["title"] = step["title"].get(patient["language"]) or next(
            iter(step["title"].values())
        )
    else:
        fields["link"] = booking_link(journey_id)
    return template, fields


class AftercareSteps:
    def __init__(
        self,
        journeys: JourneyRecords,
        responses: ResponseRepository,
        deliveries: Deliveries,
        queue: StaffQueue,
    ) -> None:
        self._journeys = journeys
        self._responses = responses
        self._deliveries = deliveries
        self._queue = queue

    def next(self, ref: AftercareRef) -> NextAftercareStep:
        """The journey's earliest timer: a step to send, a reminder, a hand-over, a booking
        window closing, or a look for a check-in an urgent answer may add."""
        loaded = self._journeys.load(ref)
        if loaded is None or loaded[2]["status"] != JourneyStatus.RUNNING:
            return {"done": True}
        tenant, patient, journey = loaded
        zone = zone_of(tenant, patient)
        due = rules.due(journey["plan"], journey["steps"], clock.now(), zone, tenant["quiet_hours"])
        return {"done": True} if due is None else {"done": False, "due": due}

    def look(self, ref: AftercareRef) -> Looked:
        """Nothing to do at this wake: the next `next` sees any check-in added meanwhile."""
        return {"looked": True}

    def send(self, ref: AftercareRef, step_id: str) -> AftercareStepSent:
        """Send the step's message. For a check-in, open the questionnaire response it links
        to first (once), and say when to remind and when to escalate."""
        loaded = self._journeys.load(ref)
        if loaded is None:
            self._close(ref, Outcome.PATIENT_GONE)  # deleted: the journey ends, nothing is sent
            return {"status": "skipped", "why": "journey over"}
        if loaded[2]["status"] != JourneyStatus.RUNNING:
            return {"status": "skipped", "why": "journey over"}
        tenant, patient, journey = loaded
        step = step_of(journey, step_id)
        if step["status"] != S.PLANNED:
            # A re-run after the step went out, or a check-in answered before it was sent:
            # what the first run gave (the timers are in the step already).
            return sent_before(step)
        now = clock.now()
        kind = StepKind(step["kind"])
        response_id = ""
        if kind == StepKind.CHECKIN:
            response_id = step.get("response_id") or self._open_response(
                tenant["id"], journey, step, now
            )
            if "response_id" not in step:
                self._journeys.mark(ref, step_id, response_id=response_id)
        template, fields = step_message(
            tenant, patient, journey["department"], step, response_id, journey["id"]
        )
        result = self._deliveries.deliver(
            tenant,
            patient,
            Message(template, f"{journey['id']}#{step_id}", fields, {"journey_id": journey["id"]}),
            now,
        )
        if result["status"] == "deferred":
            # The step keeps its planned time; the next `next` waits until quiet hours end.
            self._journeys.note_while(ref, step_id, S.PLANNED, not_before=result["retry_at"])
            return {"status": "deferred", "retry_at": result["retry_at"]}
        sent_at = parse_timestamp("$.sent_at", result.get("sent_at") or utc_iso(now))
        outcome = AftercareStepSent(status=result["status"])
        if kind == StepKind.CHECKIN:
            zone = zone_of(tenant, patient)
            timers = rules.answer_timers(journey["plan"], sent_at, zone, tenant["quiet_hours"])
            outcome["remind_at"] = timers["remind_at"]
            outcome["escalate_at"] = timers["escalate_at"]
        elif kind == StepKind.RECHECK:
            outcome["closes_at"] = utc_iso(sent_at + timedelta(days=step["book_within_days"]))
        # Only a step still planned moves on: an answer may have come in meanwhile (the
        # patient can open the response from their list), and it must not be overwritten.
        self._journeys.move_step(
            ref,
            step_id,
            SENT_STATUS[kind],
            sent=result["status"],
            **{k: v for k, v in outcome.items() if k != "status"},
        )
        return outcome

    def _open_response(
        self, tenant_id: str, journey: Document, step: Document, now: datetime
    ) -> str:
        """The questionnaire response the check-in's link opens, tied to this journey step."""
        response_id = (
            "qr-" + hashlib.sha256(f"{journey['id']}|{step['id']}".encode()).hexdigest()[:16]
        )
        if self._responses.get(tenant_id, journey["patient_id"], response_id) is None:
            opened: Document = {
                "id": response_id,
                "questionnaire": step["questionnaire"],
                "patient_id": journey["patient_id"],
                "status": "in-progress",
                "answers": {},
                "journey": {"id": journey["id"], "step": step["id"]},
                "created_at": utc_iso(now),
                "updated_at": utc_iso(now),
            }
            event = journey.get("event") or {}
            if event.get("appointment_id"):  # what a survey after a visit is counted under
                opened["visit"] = {
                    "department": str(journey.get("department") or ""),
                    "clinician": str(event.get("clinician") or ""),
                    "appointment_id": event["appointment_id"],
                }
            with suppress(Conflict):  # a replayed task opened it already
                self._responses.put(tenant_id, opened, None)
        return response_id

    def remind(self, ref: AftercareRef, step_id: str) -> CheckInReminded:
        """Remind the patient of a check-in still waiting for its answer, if there is time
        before staff take over."""
        loaded = self._journeys.load(ref)
        if loaded is None or step_of(loaded[2], step_id)["status"] != S.AWAITING_ANSWER:
            return {"answered": True}
        tenant, patient, journey = loaded
        step = step_of(journey, step_id)
        if step["remind_at"] >= step["escalate_at"]:
            self._journeys.mark(ref, step_id, reminder="none")  # no time before staff
            return {"answered": False, "reminder": "none"}
        fields = {
            **patient_fields(tenant, patient),
            "department": department_names(tenant).get(journey["department"], ""),
            "link": questionnaire_link(step["response_id"]),
        }
        result = self._deliveries.deliver(
            tenant,
            patient,
            Message(
                "checkin_reminder",
                f"{journey['id']}#{step_id}#reminder",
                fields,
                {"journey_id": journey["id"]},
            ),
            clock.now(),
        )
        if result["status"] == "deferred":
            # Quiet hours changed since the timer was set: later, if still before the hand-over.
            if result["retry_at"] < step["escalate_at"]:
                self._journeys.mark(ref, step_id, remind_at=result["retry_at"])
                return {"answered": False, "reminder": "deferred"}
            self._journeys.mark(ref, step_id, reminder="none")
            return {"answered": False, "reminder": "none"}
        self._journeys.mark(ref, step_id, reminder=result["status"])
        return {"answered": False, "reminder": result["status"]}

    def escalate(self, ref: AftercareRef, step_id: str) -> CheckInEscalated:
        """Still no answer: staff take over (a task, the department's topic); the wait ends."""
        loaded = self._journeys.load(ref)
        if loaded is None:
            return {"answered": True}
        tenant, _, journey = loaded
        step = step_of(journey, step_id)
        # Move to unanswered first: if the answer wins the race, staff get no task. A re-run
        # after that move (the task below failed) opens the same task again, once by id.
        if step["status"] != S.UNANSWERED and not self._journeys.move_step(
            ref, step_id, S.UNANSWERED, escalated_at=utc_iso(clock.now())
        ):
            return {"answered": True}
        if journey["plan"].get("hand_over", True) is False:
            return {"answered": False}  # a survey nobody answered is nobody's task
        self._queue.open_task(
            tenant["id"],
            f"{journey['id']}-{step_id}-unanswered",
            "checkin_unanswered",
            {
                "patient_id": journey["patient_id"],
                "department": journey["department"],
                "journey_id": journey["id"],
                "response_id": step.get("response_id", ""),
                "questionnaire": step["questionnaire"],
            },
            tenant=tenant,
        )
        count("CheckInUnanswered")
        return {"answered": False}

    def recheck_outcome(self, ref: AftercareRef, step_id: str) -> RecheckChecked:
        """At the end of the booking window: did the patient book?"""
        if self._journeys.move_step(ref, step_id, S.NOT_BOOKED):
            count("RecheckNotBooked")
            return {"rebooked": False}
        journey = self._journeys.get(ref)
        booked = journey is not None and step_of(journey, step_id)["status"] == S.BOOKED
        return {"rebooked": booked}

    def skip(self, ref: AftercareRef, step_id: str, action: str) -> StepSkipped:
        """A timer whose task kept failing (staff were told) is put aside, so the journey
        moves on: a reminder is dropped, a send, hand-over or booking check marks its step
        failed, and a look needs nothing (the next one is later)."""
        if action == StepAction.REMIND:
            self._journeys.note_while(ref, step_id, S.AWAITING_ANSWER, reminder="failed")
        elif action != StepAction.LOOK and self._journeys.move_step(ref, step_id, S.FAILED):
            logger.warning("aftercare step failed", extra={"step": step_id, "action": action})
        return {"skipped": True}

    def finish(self, ref: AftercareRef) -> AftercareFinished:
        journey = self._close(ref, None)
        if journey is None:
            return {"outcome": "gone"}
        count("AftercareCompleted")
        return {"outcome": journey.get("outcome")}

    def _close(self, ref: AftercareRef, ending: Outcome | None) -> Document | None:
        """End a running journey with `ending` (None: as its steps went). None if gone."""
        try:
            return self._journeys.update(ref, lambda j: completed(j, ending, utc_iso(clock.now())))
        except NotFound:
            return None
