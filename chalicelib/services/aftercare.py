"""Aftercare journeys: what follows a discharge, a surgery or a fulfilled visit under a care plan.

One journey record per (event, care plan) in the patient's partition holds the agenda (its steps
and how each went); the state machine asks for the earliest timer (`care_plans.due`), waits for
it, does it, and asks again, so every step goes out on its own date whatever earlier steps are
still waiting for. A check-in opens a questionnaire response for the patient; its answer is
recorded in the step when submitted (through the check-in's link, or the same questionnaire
through the general route within the check-in's window), and its reminder and hand-over to staff
are timers that find the step answered and do nothing. An urgent answer alerts staff at once and,
if the plan says so, adds another check-in. A re-check invitation succeeds if the patient books
within the plan's window. Every task is safe to replay: sends are claimed by key, staff tasks are
opened once by id, and steps already done are not done again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.adapters.executions import Executions
from chalicelib.domain import care_plans as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.care_plans import StepAction, StepStatus
from chalicelib.domain.common import Document, is_valid_id, parse_timestamp, utc_iso
from chalicelib.domain.errors import Conflict, NotFound, invalid
from chalicelib.domain.task_results import (
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
from chalicelib.observability import count, logger, run_hooks
from chalicelib.services.care_config import CareConfigService
from chalicelib.services.deliveries import Deliveries, Message, patient_fields
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.settings import get_settings
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.care import AFTERCARE, CareRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.responses import ResponseRepository
from chalicelib.store.tenants import TenantRepository

S = StepStatus
ACTIVE_BOOKING = frozenset({"booked", "confirmed", "arrived", "fulfilled"})


def journey_id_for(event_key: str, plan_id: str) -> str:
    """The same event under the same plan is one journey, however often it is reported."""
    return "ac-" + hashlib.sha256(f"{event_key}|{plan_id}".encode()).hexdigest()[:16]


def _step(journey: Document, step_id: str) -> Document:
    for step in journey["steps"]:
        if step["id"] == step_id:
            found: Document = step
            return found
    raise NotFound(f"no step {step_id} in journey {journey['id']}")


def booking_link(ref: str) -> str:
    """An opaque link: which department the patient is asked back to (oncology, say) is health
    information and stays out of texts; the app resolves it (GET /me/booking-invitations/{ref})."""
    return f"{get_settings().app_link_base}/book?ref={ref}"


def sent_before(step: Document) -> AftercareStepSent:
    """A step's send result as its first run gave it (kept in the step)."""
    again = AftercareStepSent(status=step.get("sent", "skipped"))
    if "remind_at" in step:
        again["remind_at"] = step["remind_at"]
    if "escalate_at" in step:
        again["escalate_at"] = step["escalate_at"]
    if "closes_at" in step:
        again["closes_at"] = step["closes_at"]
    return again


class AftercareService:
    def __init__(
        self,
        journeys_store: CareRepository,
        tenants: TenantRepository,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        responses: ResponseRepository,
        config: CareConfigService,
        deliveries: Deliveries,
        queue: StaffQueue,
        executions: Executions,
        on_urgent: Sequence[Callable[[str, Document], None]] = (),
    ) -> None:
        self._executions = executions
        self._on_urgent = on_urgent
        self._store = journeys_store
        self._tenants = tenants
        self._patients = patients
        self._appointments = appointments
        self._responses = responses
        self._config = config
        self._deliveries = deliveries
        self._queue = queue

    # --- starting ---

    def on_event(self, event: Document, event_key: str) -> list[str]:
        """Start a journey for every care plan this event triggers. Returns their ids."""
        tenant = self._tenants.get(event["tenant_id"])
        patient = self._patients.get(event["tenant_id"], event["patient_id"])
        if tenant is None or patient is None:  # get() hides deleted patients
            return []
        return self._start_matching(tenant, patient, event, event_key)

    def _start_matching(
        self, tenant: Document, patient: Document, event: Document, event_key: str
    ) -> list[str]:
        return [
            self._start(tenant, patient, plan, event, event_key)
            for plan in self._config.plans(tenant["id"])
            if rules.matches(plan, event)
        ]

    def record_event(self, principal: Principal, patient_id: str, body: Document) -> Document:
        """Staff record a discharge or surgery; its care plans start."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        tenant = self._tenants.get(tenant_id)
        patient = self._patients.get(tenant_id, patient_id) if is_valid_id(patient_id) else None
        if tenant is None or patient is None:  # get() hides deleted patients
            raise NotFound("patient not found")
        now = clock.now()
        occurred = parse_timestamp("$.occurred_at", body["occurred_at"])
        rules.check_event_time("$.occurred_at", occurred, now)
        if body["department"] not in department_names(tenant):
            raise invalid("$.department", f"no department {body['department']!r}")
        event_id = "ev-" + secrets.token_hex(8)
        event = {
            "id": event_id,
            "type": body["type"],
            "tenant_id": tenant_id,
            "patient_id": patient_id,
            "department": body["department"],
            "occurred_at": utc_iso(occurred),
            "recorded_by": principal.subject,
        }
        plan_id = body.get("care_plan")
        if plan_id is not None:
            plan = self._config.plan(tenant_id, plan_id)
            if plan is None:
                raise NotFound("care plan not found")
            started = [self._start(tenant, patient, plan, event, event_id)]
        else:
            started = self._start_matching(tenant, patient, event, event_id)
        count("CareEventRecorded")
        return {**event, "journeys": started}

    def _start(
        self, tenant: Document, patient: Document, plan: Document, event: Document, key: str
    ) -> str:
        journey_id = journey_id_for(key, plan["id"])
        if self._store.get(tenant["id"], patient["id"], AFTERCARE, journey_id) is None:
            zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
            occurred = datetime.fromisoformat(event.get("occurred_at") or event["start"])
            now = clock.now()
            doc = {
                "id": journey_id,
                "kind": "aftercare",
                "patient_id": patient["id"],
                "care_plan": plan["id"],
                # The plan as it was: editing a plan changes journeys started after the edit.
                "plan": {k: v for k, v in plan.items() if k not in ("version",)},
                "event": {k: v for k, v in event.items() if k != "tenant_id"},
                "department": event.get("department") or (patient.get("departments") or [""])[0],
                "status": "running",
                "steps": rules.agenda(plan, occurred, zone, tenant["quiet_hours"], now),
                "started_at": utc_iso(now),
                "updated_at": utc_iso(now),
            }
            # The same event reported twice at once: the other start wins.
            with suppress(Conflict):
                self._store.put(tenant["id"], AFTERCARE, doc, None)
        self._executions.start(
            get_settings().aftercare_journey_arn,
            f"{tenant['id']}-{journey_id}",
            {"tenant_id": tenant["id"], "patient_id": patient["id"], "journey_id": journey_id},
        )
        count("AftercareStarted")
        return journey_id

    # --- the state machine's tasks ---

    def _load(self, ref: Document) -> tuple[Document, Document, Document] | None:
        journey = self._store.get(ref["tenant_id"], ref["patient_id"], AFTERCARE, ref["journey_id"])
        tenant = self._tenants.get(ref["tenant_id"])
        patient = self._patients.get(ref["tenant_id"], ref["patient_id"])
        if journey is None or tenant is None or patient is None:
            return None
        return tenant, patient, journey

    def _update(self, ref: Document, change: Callable[[Document], Document | None]) -> Document:
        """Apply `change` to the journey record (again if another task wrote meanwhile)."""

        def stamped(journey: Document) -> Document | None:
            changed = change(journey)
            if changed is not None:
                changed["updated_at"] = utc_iso(clock.now())
            return changed

        journey = self._store.modify(
            ref["tenant_id"], ref["patient_id"], AFTERCARE, ref["journey_id"], stamped
        )
        if journey is None:
            raise NotFound("aftercare journey not found")
        return journey

    def _journey(self, ref: Document) -> Document | None:
        """The journey record alone, for the tasks that need neither tenant nor patient."""
        return self._store.get(ref["tenant_id"], ref["patient_id"], AFTERCARE, ref["journey_id"])

    def next(self, ref: Document) -> NextAftercareStep:
        """The journey's earliest timer: a step to send, a reminder, a hand-over, a booking
        window closing, or a look for a check-in an urgent answer may add."""
        loaded = self._load(ref)
        if loaded is None or loaded[2]["status"] != "running":
            return {"done": True}
        tenant, patient, journey = loaded
        zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
        due = rules.due(journey["plan"], journey["steps"], clock.now(), zone, tenant["quiet_hours"])
        return {"done": True} if due is None else {"done": False, "due": due}

    def look(self, ref: Document) -> Looked:
        """Nothing to do at this wake: the next `next` sees any check-in added meanwhile."""
        return {"looked": True}

    def _mark(self, ref: Document, step_id: str, **changes: object) -> Document:
        def change(journey: Document) -> Document:
            _step(journey, step_id).update(changes)
            return journey

        return self._update(ref, change)

    def send(self, ref: Document, step_id: str) -> AftercareStepSent:
        """Send the step's message. For a check-in, open the questionnaire response it links
        to first (once), and say when to remind and when to escalate."""
        loaded = self._load(ref)
        if loaded is None:
            self._close(ref, "patient_gone")  # deleted: the journey ends, nothing more is sent
            return {"status": "skipped", "why": "journey over"}
        if loaded[2]["status"] != "running":
            return {"status": "skipped", "why": "journey over"}
        tenant, patient, journey = loaded
        step = _step(journey, step_id)
        if step["status"] != S.PLANNED:
            # A re-run after the step went out, or a check-in answered before it was sent:
            # what the first run gave (the timers are in the step already).
            return sent_before(step)
        now = clock.now()
        fields = {
            **patient_fields(tenant, patient),
            "department": department_names(tenant).get(journey["department"], ""),
        }
        if step["kind"] == "checkin":
            response_id = step.get("response_id") or self._open_response(
                tenant["id"], journey, step, now
            )
            if "response_id" not in step:
                self._mark(ref, step_id, response_id=response_id)
            fields["link"] = f"{get_settings().app_link_base}/q/{response_id}"
        elif step["kind"] == "education":
            fields["link"] = step["url"]
            fields["title"] = step["title"].get(patient["language"]) or next(
                iter(step["title"].values())
            )
        else:
            fields["link"] = booking_link(journey["id"])
        kind = "recheck_invite" if step["kind"] == "recheck" else step["kind"]
        result = self._deliveries.deliver(
            tenant,
            patient,
            Message(kind, f"{journey['id']}#{step_id}", fields, {"journey_id": journey["id"]}),
            now,
        )
        if result["status"] == "deferred":
            # The step keeps its planned time; the next `next` waits until quiet hours end.
            self._transition(ref, step_id, {S.PLANNED}, not_before=result["retry_at"])
            return {"status": "deferred", "retry_at": result["retry_at"]}
        sent_at = parse_timestamp("$.sent_at", result.get("sent_at") or utc_iso(now))
        zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
        outcome = AftercareStepSent(status=result["status"])
        if step["kind"] == "checkin":
            timers = rules.answer_timers(journey["plan"], sent_at, zone, tenant["quiet_hours"])
            outcome["remind_at"] = timers["remind_at"]
            outcome["escalate_at"] = timers["escalate_at"]
            after = S.AWAITING_ANSWER
        elif step["kind"] == "recheck":
            outcome["closes_at"] = utc_iso(sent_at + timedelta(days=step["book_within_days"]))
            after = S.AWAITING_BOOKING
        else:
            after = S.DONE
        # Only a step still planned moves on: an answer may have come in meanwhile (the
        # patient can open the response from their list), and it must not be overwritten.
        self._transition(
            ref,
            step_id,
            {S.PLANNED},
            status=after,
            sent=result["status"],
            **{k: v for k, v in outcome.items() if k != "status"},
        )
        return outcome

    def _transition(self, ref: Document, step_id: str, when: set[str], **changes: object) -> bool:
        """Change a step only if its status is one of `when`; True if this call changed it."""
        won: list[bool] = []

        def change(journey: Document) -> Document | None:
            step = _step(journey, step_id)
            if step["status"] not in when:
                # Keep the other writer's status, but record what this one knew (timers).
                extra = {k: v for k, v in changes.items() if k != "status" and k not in step}
                if not extra:
                    return None
                step.update(extra)
                return journey
            step.update(changes)
            won.append(True)
            return journey

        try:
            self._update(ref, change)
        except NotFound:
            return False  # the journey is gone: nothing to move on
        return bool(won)

    def _open_response(
        self, tenant_id: str, journey: Document, step: Document, now: datetime
    ) -> str:
        """The questionnaire response the check-in's link opens, tied to this journey step."""
        response_id = (
            "qr-" + hashlib.sha256(f"{journey['id']}|{step['id']}".encode()).hexdigest()[:16]
        )
        if self._responses.get(tenant_id, journey["patient_id"], response_id) is None:
            with suppress(Conflict):  # a replayed task opened it already
                self._responses.put(
                    tenant_id,
                    {
                        "id": response_id,
                        "questionnaire": step["questionnaire"],
                        "patient_id": journey["patient_id"],
                        "status": "in-progress",
                        "answers": {},
                        "journey": {"id": journey["id"], "step": step["id"]},
                        "created_at": utc_iso(now),
                        "updated_at": utc_iso(now),
                    },
                    None,
                )
        return response_id

    def _awaiting(self, ref: Document, step_id: str) -> tuple[Document, Document, Document] | None:
        """Tenant, patient and journey while the check-in still waits for its answer."""
        loaded = self._load(ref)
        if loaded is None or _step(loaded[2], step_id)["status"] != S.AWAITING_ANSWER:
            return None
        return loaded

    def remind(self, ref: Document, step_id: str) -> CheckInReminded:
        loaded = self._awaiting(ref, step_id)
        if loaded is None:
            return {"answered": True}
        tenant, patient, journey = loaded
        step = _step(journey, step_id)
        if step["remind_at"] >= step["escalate_at"]:
            self._mark(ref, step_id, reminder="none")  # no time to remind before staff
            return {"answered": False, "reminder": "none"}
        fields = {
            **patient_fields(tenant, patient),
            "department": department_names(tenant).get(journey["department"], ""),
            "link": f"{get_settings().app_link_base}/q/{step['response_id']}",
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
                self._mark(ref, step_id, remind_at=result["retry_at"])
                return {"answered": False, "reminder": "deferred"}
            self._mark(ref, step_id, reminder="none")
            return {"answered": False, "reminder": "none"}
        self._mark(ref, step_id, reminder=result["status"])
        return {"answered": False, "reminder": result["status"]}

    def escalate(self, ref: Document, step_id: str) -> CheckInEscalated:
        """Still no answer: staff take over (a task, the department's topic); the wait ends."""
        loaded = self._load(ref)
        if loaded is None:
            return {"answered": True}
        tenant, _, journey = loaded
        step = _step(journey, step_id)
        # Move to unanswered first: if the answer wins the race, staff get no task. A re-run
        # after that move (the task below failed) opens the same task again, once by id.
        if step["status"] != S.UNANSWERED and not self._transition(
            ref,
            step_id,
            {S.AWAITING_ANSWER},
            status=S.UNANSWERED,
            escalated_at=utc_iso(clock.now()),
        ):
            return {"answered": True}
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

    def recheck_outcome(self, ref: Document, step_id: str) -> RecheckChecked:
        """At the end of the booking window: did the patient book?"""
        if self._transition(ref, step_id, {S.AWAITING_BOOKING}, status=S.NOT_BOOKED):
            count("RecheckNotBooked")
            return {"rebooked": False}
        journey = self._journey(ref)
        return {"rebooked": journey is not None and _step(journey, step_id)["status"] == S.BOOKED}

    def skip(self, ref: Document, step_id: str, action: str) -> StepSkipped:
        """A timer whose task kept failing (staff were told) is put aside, so the journey
        moves on: a reminder is dropped, a send, hand-over or booking check marks its step
        failed, and a look needs nothing (the next one is later)."""
        if action == StepAction.REMIND:
            self._transition(ref, step_id, {S.AWAITING_ANSWER}, reminder="failed")
        elif action != StepAction.LOOK and self._transition(
            ref,
            step_id,
            {S.PLANNED, S.AWAITING_ANSWER, S.AWAITING_BOOKING},
            status=S.FAILED,
        ):
            logger.warning("aftercare step failed", extra={"step": step_id, "action": action})
        return {"skipped": True}

    def finish(self, ref: Document) -> AftercareFinished:
        journey = self._close(ref, None)
        if journey is None:
            return {"outcome": "gone"}
        count("AftercareCompleted")
        return {"outcome": journey.get("outcome")}

    def _close(self, ref: Document, outcome: str | None) -> Document | None:
        """End a running journey with `outcome` (None: as its steps went). None if gone."""

        def change(journey: Document) -> Document | None:
            if journey["status"] != "running":
                return None
            journey["status"] = "completed"
            journey["completed_at"] = utc_iso(clock.now())
            journey["outcome"] = outcome or rules.outcome(journey["steps"])
            return journey

        try:
            return self._update(ref, change)
        except NotFound:
            return None

    # --- what patients and staff do ---

    def submitted(self, tenant_id: str, response: Document) -> None:
        """A questionnaire was submitted. An urgent answer alerts the department's staff at once
        (whether or not a journey asked for it). A check-in's own response answers its step; any
        other response to the same questionnaire answers the check-in whose window holds it."""
        tenant = self._tenants.get(tenant_id)
        patient = self._patients.get(tenant_id, response["patient_id"])
        link = response.get("journey")
        journey = (
            self._store.get(tenant_id, response["patient_id"], AFTERCARE, link["id"])
            if link
            else None
        )
        if response["risk"] == "urgent":
            self._alert(tenant_id, tenant, patient or {}, response, journey)
        if tenant is None or patient is None:
            return
        zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
        if link is not None:
            if journey is not None:
                self._answered(tenant, zone, response, link["id"], link["step"])
            return
        authored = parse_timestamp("$.authored_at", response["authored_at"])
        for found in self._store.for_patient(tenant_id, response["patient_id"]):
            if found.get("kind") != "aftercare" or found["status"] != "running":
                continue
            step = rules.check_in_answered_by(
                found["plan"], found["steps"], response["questionnaire"], authored, zone
            )
            if step is not None:
                self._answered(tenant, zone, response, found["id"], step["id"])

    def _alert(
        self,
        tenant_id: str,
        tenant: Document | None,
        patient: Document,
        response: Document,
        journey: Document | None,
    ) -> None:
        department = journey["department"] if journey else (patient.get("departments") or [None])[0]
        about: Document = {
            "patient_id": response["patient_id"],
            "response_id": response["id"],
            "questionnaire": response["questionnaire"],
        }
        if department:
            about["department"] = department
        if journey:
            about["journey_id"] = journey["id"]
        self._queue.open_task(
            tenant_id,
            f"{response['id']}-urgent",
            "urgent_answer",
            about,
            tenant=tenant,
            priority="urgent",
        )
        count("UrgentAnswerAlerted")
        run_hooks(self._on_urgent, tenant_id, response)  # the high-risk segment

    def _answered(
        self, tenant: Document, zone: ZoneInfo, response: Document, journey_id: str, step_id: str
    ) -> None:
        """Record the answer in its step; an urgent answer in time takes the plan's branch (one
        more check-in), which the journey's next look finds."""
        ref = {
            "tenant_id": tenant["id"],
            "patient_id": response["patient_id"],
            "journey_id": journey_id,
        }
        answered_at = parse_timestamp("$.authored_at", response["authored_at"])

        def change(journey: Document) -> Document | None:
            step = _step(journey, step_id)
            becomes = rules.answered_status(step["status"])
            if becomes is None:
                return None
            step.update(status=becomes, risk=response["risk"], answered_at=response["authored_at"])
            if response.get("journey") is None:
                step["answered_by"] = response["id"]  # not the check-in's own response
            branches = becomes == S.ANSWERED and journey["status"] == "running"
            if branches and response["risk"] == "urgent" and "branched" not in step:
                extra = rules.extra_check_in(
                    journey["plan"],
                    step,
                    journey["steps"],
                    answered_at,
                    zone,
                    tenant["quiet_hours"],
                )
                step["branched"] = extra["id"] if extra else "none"
                if extra:
                    journey["steps"].append(extra)
            return journey

        with suppress(NotFound):
            self._update(ref, change)

    def on_booked(self, tenant_id: str, appointment: Document) -> None:
        """A booking closes an open re-check invitation of the same department as a success."""
        for journey in self._store.for_patient(tenant_id, appointment["patient_id"]):
            if journey.get("kind") != "aftercare" or journey["status"] != "running":
                continue
            recheck = journey["plan"].get("recheck", {})
            if (recheck.get("department") or journey["department"]) != appointment["department"]:
                continue
            if recheck.get("appointment_type") not in (None, appointment["type"]):
                continue
            for step in journey["steps"]:
                if step["kind"] == "recheck" and step["status"] == S.AWAITING_BOOKING:
                    ref = {
                        "tenant_id": tenant_id,
                        "patient_id": appointment["patient_id"],
                        "journey_id": journey["id"],
                    }
                    if self._transition(
                        ref,
                        step["id"],
                        {S.AWAITING_BOOKING},
                        status=S.BOOKED,
                        appointment_id=appointment["id"],
                        booked_at=utc_iso(clock.now()),
                    ):
                        count("RecheckBooked")

    def invitation(self, principal: Principal, ref: str) -> Document:
        """What a booking link asks the patient to book (their own invitations only)."""
        require_role(principal, {Role.PATIENT})
        tenant_id, patient_id = tenant_of(principal), str(principal.patient_id)
        for record in self._store.for_patient(tenant_id, patient_id):
            if record.get("kind") == "aftercare" and record["id"] == ref:
                recheck = record["plan"].get("recheck", {})
                department = recheck.get("department") or record["department"]
                wanted = recheck.get("appointment_type")
            elif record.get("kind") == "recall" and record.get("ref") == ref:
                rule = self._config.rule(tenant_id, record["rule_id"]) or {"book": {}}
                department = rule["book"].get("department", "")
                wanted = rule["book"].get("appointment_type")
            else:
                continue
            found: Document = {"ref": ref, "department": department}
            if wanted:
                found["appointment_type"] = wanted
            return found
        raise NotFound("invitation not found")

    def for_patient(self, principal: Principal, patient_id: str) -> list[Document]:
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        if not is_valid_id(patient_id) or self._patients.get(tenant_id, patient_id) is None:
            raise NotFound("patient not found")
        return self._store.for_patient(tenant_id, patient_id)
