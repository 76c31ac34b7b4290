"""`python -m local simulate FILE`: plays a scenario (a hospital's settings, its patients, and
what happens to them at given moments) on the embedded stack, and prints each patient's timeline
and a summary: messages per channel and step, SMS segments, staff tasks, an estimated cost.

A scenario is a JSON file (examples/README.md describes it; examples/*.json are scenarios):

    {
      "description": "one line saying what it shows",
      "start": "2026-11-23T09:00:00+08:00",          a moment with its UTC offset
      "until": "+15d",                               a moment, or a duration after start
      "hospital": {...},                             POST /tenants's body (journey, quiet hours...)
      "clinicians": {"dr-li": {...}},                PUT /clinicians/{id}'s body, by id
      "schedules": {"cardio": {...}},                PUT /schedules/{id}
      "templates": {"reminder/sms/zh-CN": {...}},    PUT /templates/{step}/{channel}/{language}
      "questionnaires": {...}, "care_plans": {...}, "recall_rules": {...}     PUT .../{id}
      "patients": {"wei": {...}},                    POST /patients's body, by a label
      "events": [{"at": "+1d", "reply": {"patient": "wei", "text": "C"}}, ...]
    }

Each event has `at` (a moment, or a duration after start; in order), an optional `note`, and one
action: `book`, `reply`, `visit`, `answer`, `cancel`, `reschedule` or `care_event` (ACTIONS lists
their fields). The player moves the virtual clock to each event's moment, so every journey due on
the way runs first, applies the action through the REST API in-process (as the app, staff or a
phone would), then moves the clock to `until`. The daily recall sweep runs on the clock, as
EventBridge runs it on AWS.

Patients appear by their label only, and appointments by their order of booking (`appt#2`): the
transcript holds no generated id, name, phone or address, and is the same on every run.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from local.outbox import GENERATED_ID

ROOT = Path(__file__).resolve().parent.parent

# -- The scenario's shapes ------------------------------------------------------------------------

Body = dict[str, Any]  # a request body, passed to the API as written


class BookAction(TypedDict):
    patient: str  # a label of `patients`
    schedule: str  # an id of `schedules`
    start: str  # the slot's start: a moment, or a duration after the scenario's start
    type: str  # first_visit | follow_up | procedure | check_up
    by: NotRequired[Literal["patient", "staff"]]  # who books (default: the patient, in the app)
    notes_for_patient: NotRequired[str]


class ReplyAction(TypedDict):
    patient: str
    text: str  # what the phone texts back: "C", "N", "R", "STOP", "退订"...
    to: NotRequired[str]  # the hospital's number (default: the one its last text came from)


class VisitAction(TypedDict):
    patient: str
    booking: NotRequired[int]  # the patient's n-th booking (default: the latest)
    outcome: Literal["attended", "noshow"]  # attended: checked in and fulfilled by staff;
    # noshow: nobody does anything, and the journey's visit check marks the no-show


class AnswerAction(TypedDict):
    patient: str
    questionnaire: str  # its id (the starter set ships post-operative, satisfaction...)
    answers: Body  # saved and submitted from the app's questionnaire list


class CancelAction(TypedDict):
    patient: str
    booking: NotRequired[int]
    by: NotRequired[Literal["patient", "staff"]]


class RescheduleAction(TypedDict):
    patient: str
    booking: NotRequired[int]
    start: str
    schedule: NotRequired[str]  # default: the one the booking was made in
    by: NotRequired[Literal["patient", "staff"]]


class CareEventAction(TypedDict):
    patient: str
    type: str  # discharge | surgery: starts the care plans it triggers
    department: str
    occurred_at: NotRequired[str]  # default: the event's moment
    care_plan: NotRequired[str]


class ScenarioEvent(TypedDict):
    at: str
    note: NotRequired[str]
    book: NotRequired[BookAction]
    reply: NotRequired[ReplyAction]
    visit: NotRequired[VisitAction]
    answer: NotRequired[AnswerAction]
    cancel: NotRequired[CancelAction]
    reschedule: NotRequired[RescheduleAction]
    care_event: NotRequired[CareEventAction]


class Scenario(TypedDict):
    name: str  # the file's name without .json
    description: NotRequired[str]
    start: str
    until: str
    hospital: Body
    clinicians: NotRequired[dict[str, Body]]
    schedules: NotRequired[dict[str, Body]]
    templates: NotRequired[dict[str, Body]]
    questionnaires: NotRequired[dict[str, Body]]
    care_plans: NotRequired[dict[str, Body]]
    recall_rules: NotRequired[dict[str, Body]]
    patients: dict[str, Body]
    events: list[ScenarioEvent]


# Each action's fields: required, then optional. A field nobody expects is a typo, reported.
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "book": (("patient", "schedule", "start", "type"), ("by", "notes_for_patient")),
    "reply": (("patient", "text"), ("to",)),
    "visit": (("patient", "outcome"), ("booking",)),
    "answer": (("patient", "questionnaire", "answers"), ()),
    "cancel": (("patient",), ("booking", "by")),
    "reschedule": (("patient", "start"), ("booking", "schedule", "by")),
    "care_event": (("patient", "type", "department"), ("occurred_at", "care_plan")),
}
# The settings sections: scenario key -> the API path its entries are PUT to, by id.
SETTINGS = {
    "clinicians": "/clinicians",
    "schedules": "/schedules",
    "questionnaires": "/questionnaires",
    "care_plans": "/care-plans",
    "recall_rules": "/recall-rules",
    "templates": "/templates",
}
TOP_LEVEL = ("description", "start", "until", "hospital", *SETTINGS, "patients", "events")
LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
TEMPLATE_KEY = re.compile(r"^[a-z0-9_]+/(sms|email|push)/[A-Za-z-]+$")
OUTCOMES = ("attended", "noshow")
BOOKERS = ("patient", "staff")


class ScenarioError(ValueError):
    """Bad scenario input, or an action the API refused; the message starts with the field."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where


# -- Reading and checking a scenario --------------------------------------------------------------


def load_scenario(path: Path) -> Scenario:
    """The scenario in `path`, checked (everything but what only the API can judge)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError("", f"cannot read it ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            "", f"not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    return check_scenario(document, path.stem)


def check_scenario(document: Any, name: str) -> Scenario:
    """The document as a Scenario, or a ScenarioError naming the first field that is wrong:
    its shape, the labels and ids events refer to, the moments and their order. Bodies for the
    API (hospital, patients, settings) are the API's to judge, when the scenario is played."""
    top = _object(document, "scenario")
    _known_keys(top, TOP_LEVEL, "")
    for key in ("start", "until", "hospital", "patients", "events"):
        if key not in top:
            raise ScenarioError(key, "missing")
    if "description" in top:
        _string(top["description"], "description")
    start = parse_moment(top["start"], "start", None)
    until = parse_moment(top["until"], "until", start)
    if until < start:
        raise ScenarioError("until", "before start")
    hospital = _object(top["hospital"], "hospital")
    for key, what in (("id", "the tenant's id"), ("time_zone", "an IANA zone: Asia/Shanghai")):
        if not isinstance(hospital.get(key), str):
            raise ScenarioError(f"hospital.{key}", f"missing: {what}, as POST /tenants takes it")
    _check_settings(top)
    _check_patients(top["patients"])
    _check_events(top, start, until)
    return cast(Scenario, {**top, "name": name})


def _check_settings(top: Mapping[str, Any]) -> None:
    for section in SETTINGS:
        for key, body in _object(top.get(section, {}), section).items():
            _object(body, f"{section}.{key}")
            if section == "templates" and not TEMPLATE_KEY.match(key):
                raise ScenarioError(
                    f"templates.{key}", "name it step/channel/language, e.g. reminder/sms/en"
                )


def _check_patients(patients: Any) -> None:
    if not _object(patients, "patients"):
        raise ScenarioError("patients", "no patient: give at least one, by a label")
    for label, body in patients.items():
        if not LABEL.match(label):
            raise ScenarioError(
                f"patients.{label}",
                "a label is lower-case letters, digits, - or _ (at most 24), never a name",
            )
        _object(body, f"patients.{label}")


def _check_events(top: Mapping[str, Any], start: datetime, until: datetime) -> None:
    events = top["events"]
    if not isinstance(events, list):
        raise ScenarioError("events", "a list of events")
    bookings: Counter[str] = Counter()  # each patient's bookings so far, in event order
    previous = start
    for index, event in enumerate(events):
        where = f"events[{index}]"
        at = _check_moment_of(event, where, start)
        if at < previous:
            raise ScenarioError(
                f"{where}.at", "before the event above it: events are played in the order written"
            )
        if at > until:
            raise ScenarioError(f"{where}.at", "after until")
        previous = at
        action, body = _action_of(event, where)
        _check_action(action, body, f"{where}.{action}", start, top)
        if action == "book":
            bookings[body["patient"]] += 1
        elif action in ("visit", "cancel", "reschedule"):
            _check_booking(body, f"{where}.{action}", bookings)


def _check_moment_of(event: Any, where: str, start: datetime) -> datetime:
    event = _object(event, where)
    if "at" not in event:
        raise ScenarioError(f"{where}.at", "missing: when it happens")
    if "note" in event:
        _string(event["note"], f"{where}.note")
    return parse_moment(event["at"], f"{where}.at", start)


def _action_of(event: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """The event's one action and its fields."""
    actions = [key for key in event if key not in ("at", "note")]
    for key in actions:
        if key not in ACTIONS:
            raise ScenarioError(f"{where}.{key}", f"not an action (one of {', '.join(ACTIONS)})")
    if len(actions) != 1:
        raise ScenarioError(where, f"give exactly one action (one of {', '.join(ACTIONS)})")
    return actions[0], _object(event[actions[0]], f"{where}.{actions[0]}")


def _check_action(
    action: str, body: Mapping[str, Any], where: str, start: datetime, top: Mapping[str, Any]
) -> None:
    required, optional = ACTIONS[action]
    _known_keys(body, required + optional, f"{where}.")
    for key in required:
        if key not in body:
            raise ScenarioError(f"{where}.{key}", "missing")
    label = _string(body["patient"], f"{where}.patient")
    if label not in top["patients"]:
        raise ScenarioError(f"{where}.patient", f'no patient labelled "{label}"')
    for key in ("text", "to", "questionnaire", "type", "department", "care_plan"):
        if key in body:
            _string(body[key], f"{where}.{key}")
    for key in ("start", "occurred_at"):
        if key in body:
            parse_moment(body[key], f"{where}.{key}", start)
    schedule = body.get("schedule")
    if schedule is not None and _string(schedule, f"{where}.schedule") not in top.get(
        "schedules", {}
    ):
        raise ScenarioError(f"{where}.schedule", f'no schedule "{schedule}" in schedules')
    if "by" in body and body["by"] not in BOOKERS:
        raise ScenarioError(f"{where}.by", "patient or staff")
    if action == "visit" and body["outcome"] not in OUTCOMES:
        raise ScenarioError(f"{where}.outcome", "attended or noshow")
    if action == "answer":
        _object(body["answers"], f"{where}.answers")


def _check_booking(body: Mapping[str, Any], where: str, bookings: Counter[str]) -> None:
    made = bookings[body["patient"]]
    if made == 0:
        raise ScenarioError(f"{where}.patient", f'"{body["patient"]}" has booked nothing by then')
    ordinal = body.get("booking", made)
    if isinstance(ordinal, bool) or not isinstance(ordinal, int) or not 1 <= ordinal <= made:
        raise ScenarioError(
            f"{where}.booking",
            f'"{body["patient"]}" has made {made} booking(s) by then: give 1 to {made}',
        )


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(where, f"an object, not {type(value).__name__}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ScenarioError(where, "a non-empty string")
    return value


def _known_keys(document: Mapping[str, Any], known: Iterable[str], prefix: str) -> None:
    expected = tuple(known)
    for key in document:
        if key not in expected:
            raise ScenarioError(f"{prefix}{key}", f"unknown field (expected {', '.join(expected)})")


def parse_moment(value: Any, where: str, start: datetime | None) -> datetime:
    """An ISO moment with its UTC offset ("2026-11-30T10:00:00+08:00"), or after `start` a
    duration past it ("+3d 2h", units s m h d w)."""
    from local.vclock import parse_duration

    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(where, "a moment: ISO 8601 with its offset, or +<duration>")
    text = value.strip()
    if text.startswith("+") and start is not None:
        try:
            return start + parse_duration(text[1:])
        except ValueError as exc:
            raise ScenarioError(where, str(exc)) from exc
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        after = " or +<duration> after start (+3d 2h)" if start is not None else ""
        raise ScenarioError(
            where, f"not a moment: {text!r} (use 2026-11-30T10:00:00+08:00{after})"
        ) from exc
    if moment.tzinfo is None:
        raise ScenarioError(where, f"{text!r} has no UTC offset (write e.g. +08:00 or Z)")
    return moment


# -- Playing it -----------------------------------------------------------------------------------


@dataclass
class PatientPlay:
    """What the player knows of one patient while playing: never printed but the label."""

    label: str
    patient_id: str = ""
    phone: str | None = None  # E.164, for replies
    bookings: list[str] = field(default_factory=list)  # appointment ids, in order of booking
    schedules: list[str] = field(default_factory=list)  # the schedule of each booking


@dataclass
class Usage:
    """What the platform was asked to do while the scenario played, as AWS bills it. DynamoDB
    is left out: the transcript must be the same on every run, and its reads and writes are not
    (the app's caches expire on the wall clock, the audit chain's shards are picked at random
    and its concurrent appends retried). `make bench` measures them per journey; they are about
    a tenth of the platform's cost there."""

    state_transitions: int = 0
    lambda_invocations: int = 0
    api_requests: int = 0


class Player:
    """Plays one scenario on a runtime, which must hold nothing else (a fresh one, or a test's
    `own_runtime`): the summary counts every execution of the hospital and what the emulator
    did meanwhile."""

    def __init__(self, scenario: Scenario, runtime: Any) -> None:
        from chalice.test import Client

        from local.api_client import Api

        self.scenario = scenario
        self.runtime = runtime
        self.api = Api(Client(runtime.app, stage_name="local", project_dir=str(ROOT)).http)
        self.start = parse_moment(scenario["start"], "start", None)
        self.until = parse_moment(scenario["until"], "until", self.start)
        self.tenant_id: str = scenario["hospital"]["id"]
        self.tenant: Body = {}
        self.patients = {label: PatientPlay(label) for label in scenario["patients"]}
        self.usage = Usage()

    # The tokens each caller signs in with (cached by the runtime).
    def _staff(self) -> str:
        token: str = self.runtime.token("staff", self.tenant_id)
        return token

    def _admin(self) -> str:
        token: str = self.runtime.token("admin", self.tenant_id)
        return token

    def _app(self, label: str) -> str:
        token: str = self.runtime.token("patient", self.tenant_id, self.patients[label].patient_id)
        return token

    def play(self) -> str:
        """Plays the scenario through to `until`; the transcript."""
        import app as app_module
        from local.meter import meter
        from local.schedules import ScheduleRunner

        now = self.runtime.clock.now()
        if now > self.start:
            raise ScenarioError(
                "start", f"the runtime's clock is already at {now.isoformat()}, past the start"
            )
        self.runtime.clock.set(self.start)
        self.runtime.settle()
        before = meter.snapshot()
        self._configure()
        self._admit_patients()
        # The daily sweep that starts recalls, as EventBridge runs it (the 10-minute repair
        # sweep only mends what faults leave behind: none here).
        sweeps = ScheduleRunner(app_module, self.runtime.clock, only=("recall_sweep",)).start()
        try:
            for index, event in enumerate(self.scenario["events"]):
                self._move_to(parse_moment(event["at"], f"events[{index}].at", self.start))
                self._apply(index, event)
            self._move_to(self.until)
        finally:
            sweeps.stop()
        self._measure(before, meter.snapshot())
        return self._transcript()

    def _move_to(self, moment: datetime) -> None:
        if moment > self.runtime.clock.now():
            self.runtime.clock.set(moment)
        self.runtime.settle()

    def _call(self, where: str, method: str, path: str, token: str | None, body: Any = None) -> Any:
        """The API's answer to a request the scenario makes; a refusal is the scenario's
        error, named by its field (the API's JSON paths appended to `where`)."""
        from local.api_client import payload

        response = self.api.call(method, path, token, body)
        if path != "/local/sms-reply":  # a phone's text is not an API Gateway request
            self.usage.api_requests += 1
        if response.status_code >= 400:
            raise _refused(where, method, path, response)
        return payload(response)

    def _read(self, path: str) -> Any:
        """A read for the transcript (staff), not part of the scenario's cost."""
        from local.api_client import payload

        response = self.api.call("GET", path, self._staff())
        if response.status_code >= 400:
            raise _refused("transcript", "GET", path, response)
        return payload(response)

    def _configure(self) -> None:
        scenario = self.scenario
        self.tenant = self._call(
            "hospital", "POST", "/tenants", self.runtime.token("operator"), scenario["hospital"]
        )
        for section, route in SETTINGS.items():
            for key, body in cast(dict[str, Body], scenario.get(section, {})).items():
                self._call(f"{section}.{key}", "PUT", f"{route}/{key}", self._admin(), body)
        self.runtime.settle()

    def _admit_patients(self) -> None:
        for label, body in self.scenario["patients"].items():
            created = self._call(f"patients.{label}", "POST", "/patients", self._staff(), body)
            self.patients[label].patient_id = created["id"]
            # A minor without a phone of their own is texted, and answers, on the guardian's.
            guardian = created.get("guardian") or {}
            self.patients[label].phone = created.get("phone") or guardian.get("phone")
        self.runtime.settle()

    def _apply(self, index: int, event: ScenarioEvent) -> None:
        [action] = [key for key in event if key not in ("at", "note")]
        where = f"events[{index}].{action}"
        body = cast(dict[str, Any], event)[action]
        getattr(self, f"_{action}")(where, body)
        self.runtime.settle()

    def _booking(self, body: Mapping[str, Any]) -> tuple[PatientPlay, int]:
        """The patient and which of their bookings (0-based) an action names."""
        patient = self.patients[body["patient"]]
        return patient, body.get("booking", len(patient.bookings)) - 1

    def _by(self, body: Mapping[str, Any]) -> str:
        return self._staff() if body.get("by") == "staff" else self._app(body["patient"])

    def _book(self, where: str, body: BookAction) -> None:
        patient = self.patients[body["patient"]]
        request: Body = {
            "slot": {
                "schedule_id": body["schedule"],
                "start": _utc(parse_moment(body["start"], f"{where}.start", self.start)),
            },
            "type": body["type"],
        }
        if "notes_for_patient" in body:
            request["notes_for_patient"] = body["notes_for_patient"]
        if body.get("by") == "staff":
            request["patient_id"] = patient.patient_id
        booked = self._call(where, "POST", "/appointments", self._by(body), request)
        patient.bookings.append(booked["id"])
        patient.schedules.append(body["schedule"])

    def _reply(self, where: str, body: ReplyAction) -> None:
        patient = self.patients[body["patient"]]
        if not patient.phone:
            raise ScenarioError(f"{where}.patient", f'"{patient.label}" has no phone to reply from')
        sms: Body = {"from": patient.phone, "text": body["text"]}
        if "to" in body:
            sms["to"] = body["to"]
        self._call(where, "POST", "/local/sms-reply", None, sms)

    def _visit(self, where: str, body: VisitAction) -> None:
        if body["outcome"] == "noshow":
            return  # nobody checks the patient in: the journey's visit check finds the no-show
        patient, booking = self._booking(body)
        appointment = patient.bookings[booking]
        for step in ("check-in", "fulfil"):
            self._call(where, "POST", f"/appointments/{appointment}/{step}", self._staff())

    def _answer(self, where: str, body: AnswerAction) -> None:
        token = self._app(body["patient"])
        started = self._call(
            where,
            "POST",
            f"/questionnaires/{body['questionnaire']}/responses",
            token,
            {"answers": body["answers"]},
        )
        self._call(where, "POST", f"/me/questionnaire-responses/{started['id']}/submit", token)

    def _cancel(self, where: str, body: CancelAction) -> None:
        patient, booking = self._booking(body)
        appointment = patient.bookings[booking]
        self._call(where, "POST", f"/appointments/{appointment}/cancel", self._by(body))

    def _reschedule(self, where: str, body: RescheduleAction) -> None:
        patient, booking = self._booking(body)
        schedule = body.get("schedule", patient.schedules[booking])
        slot = {
            "schedule_id": schedule,
            "start": _utc(parse_moment(body["start"], f"{where}.start", self.start)),
        }
        appointment = patient.bookings[booking]
        self._call(
            where,
            "POST",
            f"/appointments/{appointment}/reschedule",
            self._by(body),
            {"slot": slot},
        )
        patient.schedules[booking] = schedule

    def _care_event(self, where: str, body: CareEventAction) -> None:
        from chalicelib import clock

        patient = self.patients[body["patient"]]
        occurred = (
            parse_moment(body["occurred_at"], f"{where}.occurred_at", self.start)
            if "occurred_at" in body
            else clock.now()
        )
        request: Body = {
            "type": body["type"],
            "department": body["department"],
            "occurred_at": _utc(occurred),
        }
        if "care_plan" in body:
            request["care_plan"] = body["care_plan"]
        self._call(
            where, "POST", f"/patients/{patient.patient_id}/care-events", self._staff(), request
        )

    def _measure(self, before: Mapping[str, int], after: Mapping[str, int]) -> None:
        """The Lambda invocations the emulator counted meanwhile, and each of the hospital's
        executions' state transitions as Step Functions bills them."""
        from chalicelib.settings import get_settings
        from local.fault_journeys import billed_transitions, execution_history

        invoked = "lambda_invocations"
        self.usage.lambda_invocations = after.get(invoked, 0) - before.get(invoked, 0)
        sfn = self.runtime.client("stepfunctions")
        settings = get_settings()
        machines = {
            settings.appointment_journey_arn,
            settings.aftercare_journey_arn,
            settings.recall_journey_arn,
            *(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]),
        }
        for machine in sorted(machines):
            pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
            for page in pages:
                for execution in page["executions"]:
                    if execution["name"].startswith(f"{self.tenant_id}-"):
                        history = execution_history(self.runtime, execution["executionArn"])
                        self.usage.state_transitions += billed_transitions(history)

    # -- The transcript ---------------------------------------------------------------------

    def _timeline(self, patient: PatientPlay) -> Body:
        query = urlencode({"from": _utc(self.start), "to": _utc(self.until)})
        found: Body = self._read(f"/patients/{patient.patient_id}/timeline?{query}")
        return found

    def _transcript(self) -> str:
        timelines = {label: self._timeline(p) for label, p in self.patients.items()}
        deliveries = {
            label: self._read(f"/patients/{p.patient_id}/deliveries")["items"]
            for label, p in self.patients.items()
        }
        ids = {p.patient_id: label for label, p in self.patients.items()}
        open_tasks = [
            task for task in self._read("/tasks")["items"] if task.get("patient_id") in ids
        ]
        appointments = {
            appointment: f"appt#{n}"
            for p in self.patients.values()
            for n, appointment in enumerate(p.bookings, start=1)
        }
        countries = {label: _phone_country(p.phone) for label, p in self.patients.items()}
        return render(
            self.scenario,
            self.tenant,
            timelines,
            deliveries,
            open_tasks,
            appointments,
            countries,
            self.usage,
        )


def _utc(moment: datetime) -> str:
    from chalicelib.domain.common import utc_iso

    return utc_iso(moment)


# Where a request body's fields come from in an action, when the API names one.
REQUEST_FIELDS = {"slot.start": "start", "slot.schedule_id": "schedule", "slot": "start"}


def _refused(where: str, method: str, path: str, response: Any) -> ScenarioError:
    """The API's refusal as the scenario's error: each field it named, under `where` (the
    scenario's own name for it where a request renames it: book.start, not book.slot.start),
    then the request, status and code."""
    from local.api_client import payload

    route = re.sub(r"/(p|a|qr)-[0-9a-f]{16}", "/{id}", path.split("?", maxsplit=1)[0])
    try:
        error = payload(response)["error"]
    except (TypeError, KeyError, ValueError):
        return ScenarioError(where, f"{method} {route} answered {response.status_code}")
    answered = f"{method} {route} answered {response.status_code} {error.get('code')}"
    named = [
        (str(detail.get("path") or "$").removeprefix("$").removeprefix("."), detail.get("message"))
        for detail in error.get("details") or []
    ]
    if not named:
        return ScenarioError(where, f"{answered}: {error.get('message')}")
    fields = [
        (f"{where}.{REQUEST_FIELDS.get(field, field)}" if field else where, message)
        for field, message in named
    ]
    first, *others = fields
    problem = "; ".join([str(first[1]), *(f"{field}: {message}" for field, message in others)])
    return ScenarioError(first[0], f"{problem} ({answered})")


def _phone_country(phone: str | None) -> str | None:
    """The country a number is in, for its SMS price (never printed)."""
    if not phone:
        return None
    import phonenumbers

    try:
        region: str | None = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return None
    return region


# -- Rendering ------------------------------------------------------------------------------------

# A timeline entry's keys printed as aligned columns, in this order; any other key follows as
# key=value (EXTRAS first, in their order), so new fields of the route show without a change here.
COLUMNS = ("local_time", "journey", "kind", "appointment", "step", "status", "channel")
EXTRAS = ("why", "task_kind", "rule", "by", "via", "planned")
# `at` says in UTC what local_time says in the patient's zone; generated ids differ on every run.
SHOWN_IDS = ("appointment_id", "rule_id")
SENT = ("sent", "delivered", "bounced")  # a bounce left us first
OUTCOME_COLUMNS = ("sent", "suppressed", "skipped", "failed")
MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
PHONE = re.compile(r"\+\d{7,15}\b")  # E.164, as every number is stored
EMAIL = re.compile(r"[^\s@]+@[^\s@]+")


def _scrub(value: Any) -> str:
    """A value as printed: generated ids, phone numbers and addresses masked, in case a field
    carries one."""
    if isinstance(value, list):  # reasons, fell_back...
        text = "; ".join(v if isinstance(v, str) else json.dumps(v) for v in value)
    else:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = GENERATED_ID.sub("<id>", text)
    return EMAIL.sub("<address>", PHONE.sub("<phone>", text))


def entry_fields(
    entry: Mapping[str, Any], appointments: Mapping[str, str], zone: ZoneInfo
) -> tuple[list[str], list[str]]:
    """One timeline entry as its column cells and its key=value extras."""
    shown: dict[str, str] = {}
    for key, value in entry.items():
        if value is None or value == "" or key == "at":
            continue
        if key.endswith("_id") and key not in SHOWN_IDS:
            continue
        if key == "appointment_id":
            shown["appointment"] = appointments.get(str(value), "appt#?")
        elif key == "rule_id":
            shown["rule"] = _scrub(value)
        elif key == "journey_version":
            continue  # shown with the appointment, below
        elif key == "planned_at":
            planned = _local_text(value, zone)
            if planned != entry.get("local_time"):
                shown["planned"] = planned
        elif isinstance(value, str) and MOMENT.match(value):  # in the patient's zone, as
            shown[key] = _local_text(value, zone)  # local_time is (retry_at, moved_from...)
        else:
            shown[key] = _scrub(value)
    version = entry.get("journey_version")
    if "appointment" in shown and isinstance(version, int) and version > 1:
        shown["appointment"] += f" v{version}"
    cells = [shown.pop(key, "") for key in COLUMNS]
    ordered = [key for key in EXTRAS if key in shown] + sorted(k for k in shown if k not in EXTRAS)
    return cells, [f"{key}={shown[key]}" for key in ordered]


def _local_text(value: Any, zone: ZoneInfo) -> str:
    """A UTC ISO moment as "YYYY-MM-DD HH:MM" in `zone`; anything else as it is (scrubbed)."""
    try:
        return _local(datetime.fromisoformat(str(value)), zone)
    except ValueError:
        return _scrub(value)


def _aligned(rows: list[tuple[list[str], list[str]]]) -> list[str]:
    """(cells, extras) rows as lines whose columns line up; a column nobody fills is left out."""
    widths = [max((len(cells[i]) for cells, _ in rows), default=0) for i in range(len(COLUMNS))]
    lines = []
    for cells, extras in rows:
        parts = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True) if width]
        lines.append("  ".join([*parts, *extras]).rstrip())
    return lines


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def render(
    scenario: Scenario,
    tenant: Mapping[str, Any],
    timelines: Mapping[str, Mapping[str, Any]],
    deliveries: Mapping[str, list[Mapping[str, Any]]],
    open_tasks: list[Mapping[str, Any]],
    appointments: Mapping[str, str],
    countries: Mapping[str, str | None],
    usage: Usage,
) -> str:
    """The transcript: a header, each patient's timeline (by label, in the scenario's order),
    then the summary."""
    zone = ZoneInfo(str(tenant.get("time_zone") or scenario["hospital"]["time_zone"]))
    start = parse_moment(scenario["start"], "start", None)
    until = parse_moment(scenario["until"], "until", start)
    lines = [f"scenario {scenario['name']}"]
    if scenario.get("description"):
        lines.append(f"  {scenario['description']}")
    lines.append(f"  from {_local(start, zone)} to {_local(until, zone)} ({zone.key})")
    lines += ["", "events", *events_played(scenario, zone)]
    sections: list[tuple[str, list[tuple[list[str], list[str]]]]] = []
    for label, timeline in timelines.items():
        patient_zone = ZoneInfo(str(timeline.get("time_zone") or zone.key))
        rows = [entry_fields(e, appointments, patient_zone) for e in timeline.get("entries") or []]
        sections.append((f"{label} ({patient_zone.key})", rows))
    # One alignment for every patient's lines, so the transcript reads as one table.
    aligned = iter(_aligned([row for _, rows in sections for row in rows]))
    for header, rows in sections:
        lines += ["", header]
        lines += [f"  {next(aligned)}" for _ in rows] or ["  (nothing happened)"]
    lines += ["", *summary(timelines, deliveries, open_tasks, countries, usage)]
    return "\n".join(lines) + "\n"


def events_played(scenario: Scenario, zone: ZoneInfo) -> list[str]:
    """Each event in a line: its moment in the hospital's zone, the patient's label, what was
    done (never an answer's values) and its note."""
    start = parse_moment(scenario["start"], "start", None)
    booked: Counter[str] = Counter()
    rows: list[tuple[str, str, str, str]] = []
    for index, event in enumerate(scenario["events"]):
        action, body = _action_of(event, f"events[{index}]")
        if action == "book":
            booked[body["patient"]] += 1
        ordinal = body.get("booking", booked[body["patient"]])
        done = _describe(action, body, f"appt#{ordinal}", start, zone)
        at = _local(parse_moment(event["at"], f"events[{index}].at", start), zone)
        rows.append((at, body["patient"], _scrub(done), event.get("note", "")))
    if not rows:
        return ["  (none)"]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        lines.append("  " + "  ".join([*cells, row[3]]).rstrip())
    return lines


# How the events list says each action (an answer's values are never printed).
DESCRIBED = {
    "book": "book {appointment}: {type} at {start} ({schedule}){by}",
    "reply": "reply {text}",
    "visit": "visit {appointment}: {outcome}",
    "answer": "answer {questionnaire}",
    "cancel": "cancel {appointment}{by}",
    "reschedule": "reschedule {appointment} to {start}{by}",
    "care_event": "care_event {type} ({department})",
}


def _describe(
    action: str, body: Mapping[str, Any], appointment: str, start: datetime, zone: ZoneInfo
) -> str:
    fields = {
        **body,
        "appointment": appointment,
        "by": " by staff" if body.get("by") == "staff" else "",
        "text": json.dumps(body.get("text"), ensure_ascii=False),
    }
    if "start" in body:
        fields["start"] = _local(parse_moment(body["start"], "start", start), zone)
    return DESCRIBED[action].format_map(fields)


def _outcome(status: str) -> str:
    if status in SENT:
        return "sent"
    if status in ("suppressed", "skipped"):
        return status
    return "failed"  # failed, unknown (the answer was lost), or still sending


def _table(title: str, counts: Mapping[str, Counter[str]], width: int) -> list[str]:
    """Rows in the order given (dicts keep it), a column per outcome."""
    lines = [title.ljust(width) + "".join(c.rjust(12) for c in OUTCOME_COLUMNS)]
    for name, counted in counts.items():
        figures = "".join(str(counted[c]).rjust(12) for c in OUTCOME_COLUMNS)
        lines.append(f"  {name}".ljust(width) + figures)
    return lines


def summary(
    timelines: Mapping[str, Mapping[str, Any]],
    deliveries: Mapping[str, list[Mapping[str, Any]]],
    open_tasks: list[Mapping[str, Any]],
    countries: Mapping[str, str | None],
    usage: Usage,
) -> list[str]:
    """Messages per channel and per step (from the delivery logs), SMS segments, staff tasks
    (opened: the timelines' task entries; still open: GET /tasks), and the estimated cost."""
    from chalicelib.domain.message_prices import MESSAGE_PRICES, SMS_PRICE_PER_SEGMENT

    by_channel: dict[str, Counter[str]] = {}
    by_step: dict[str, Counter[str]] = {}
    segments: Counter[str] = Counter()  # per destination country
    sent: Counter[str] = Counter()  # per channel
    # Steps in the order they first happened, channels by name: the same order on every run.
    everything = sorted(
        (
            (str(delivery.get("created_at") or ""), str(delivery.get("step")), label, delivery)
            for label, logged in deliveries.items()
            for delivery in logged
        ),
        key=lambda found: found[:3],
    )
    for _, step, label, delivery in everything:
        outcome = _outcome(str(delivery.get("status")))
        channel = str(delivery.get("channel") or "no channel")
        by_channel.setdefault(channel, Counter())[outcome] += 1
        by_step.setdefault(step, Counter())[outcome] += 1
        if outcome == "sent":
            sent[channel] += 1
            if channel == "sms":
                country = countries.get(label) or "unknown"
                segments[country] += int(delivery.get("sms_segments") or 1)
    tasks = Counter(
        str(entry.get("task_kind") or entry.get("step") or "task")
        for timeline in timelines.values()
        for entry in timeline.get("entries") or []
        if entry.get("kind") == "task"
    )
    still_open = Counter(str(task.get("kind")) for task in open_tasks)
    lines = ["summary"]
    if by_channel:
        width = max(len(name) + 2 for name in [*by_channel, *by_step, "messages by channel"])
        channels = {name: by_channel[name] for name in sorted(by_channel)}
        lines += ["  " + line for line in _table("messages by channel", channels, width)]
        lines += ["  " + line for line in _table("messages by step", by_step, width)]
    else:
        lines.append("  no message")
    lines.append(f"  sms segments: {sum(segments.values())}")
    lines.append(f"  staff tasks opened: {_counted(tasks)}")
    lines.append(f"  staff tasks still open: {_counted(still_open)}")
    lines += ["", "estimated cost (USD)"]
    costs: list[tuple[str, str, float]] = []
    for country, count in sorted(segments.items()):
        price = SMS_PRICE_PER_SEGMENT.get(country)
        if price is None:
            costs.append(("sms", f"{count} segments to {country}: no price known", 0.0))
        else:
            costs.append(("sms", f"{count} segments to {country} x {price:g}", count * price))
    for channel in ("email", "push"):
        if sent[channel]:
            price = MESSAGE_PRICES[f"{channel}_per_message"]
            costs.append((channel, f"{sent[channel]} x {price:g}", sent[channel] * price))
    platform = _platform_cost(usage)
    costs.append(
        (
            "platform",
            f"{usage.state_transitions} state transitions, {usage.lambda_invocations} Lambda "
            f"invocations, {usage.api_requests} API requests (DynamoDB not counted)",
            platform,
        )
    )
    for name, how, usd in costs:
        lines.append(f"  {name:<9}{usd:>10.6f}  {how}")
    lines.append(f"  {'total':<9}{sum(usd for _, _, usd in costs):>10.6f}")
    lines += ["", *_prices()]
    return lines


def _counted(counts: Counter[str]) -> str:
    if not counts:
        return "0"
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    return f"{sum(counts.values())} ({kinds})"


def _platform_cost(usage: Usage) -> float:
    from bench.journey import cost_usd

    return cost_usd(
        transitions=usage.state_transitions,
        lambdas=usage.lambda_invocations,
        api_requests=usage.api_requests,
        reads=0,  # see Usage
        write_units=0,
    )


# What the platform estimate prices (bench.journey.cost_usd; DynamoDB is not counted: Usage).
PLATFORM_PRICES = (
    "step_functions_per_transition",
    "lambda_per_request",
    "lambda_per_gb_second",
    "api_gateway_per_request",
)


def _prices() -> list[str]:
    """The prices the estimate used (bench/journey.py, chalicelib/domain/message_prices.py),
    printed under it."""
    from bench.journey import LAMBDA_GB_SECONDS_EACH, PRICES
    from chalicelib.domain.message_prices import MESSAGE_PRICES, SMS_PRICE_PER_SEGMENT

    def usd(value: float) -> str:
        return f"{value:.10f}".rstrip("0")

    sms = ", ".join(f"{c} {usd(p)}" for c, p in sorted(SMS_PRICE_PER_SEGMENT.items()))
    lines = [
        "prices (USD, bench/journey.py and domain/message_prices.py)",
        f"  sms_per_segment: {sms}",
    ]
    lines += [f"  {name}: {usd(price)}" for name, price in MESSAGE_PRICES.items()]
    lines += [f"  {name}: {usd(PRICES[name])}" for name in PLATFORM_PRICES]
    lines.append(f"  lambda_gb_seconds_each: {LAMBDA_GB_SECONDS_EACH:g}")
    return lines


# -- Entry points ---------------------------------------------------------------------------------


def play(scenario: Scenario, runtime: Any) -> str:
    """Plays `scenario` on `runtime` (empty, its clock at or before the scenario's start: a
    test's `own_runtime`); the transcript."""
    return Player(scenario, runtime).play()


def simulate_file(path: Path) -> str:
    """Plays the scenario in `path` on a runtime of its own, started at the scenario's start
    and stopped at the end; the transcript. A bad scenario raises ScenarioError before anything
    starts."""
    from local.runtime import quiet_logs, start
    from local.vclock import VirtualClock

    scenario = load_scenario(path)
    quiet_logs()
    runtime = start(clock=VirtualClock(parse_moment(scenario["start"], "start", None)))
    _app_logs_to_stderr()
    try:
        return play(scenario, runtime)
    finally:
        runtime.settle()
        runtime.stop()


def _app_logs_to_stderr() -> None:
    """The app's log lines (Powertools writes them to stdout, as Lambda wants) would mix with
    the transcript: warnings and errors go to stderr, the INFO lines of every step nowhere."""
    import logging
    import sys

    from chalicelib.observability import logger

    app_logger = logging.getLogger(logger.service)
    app_logger.setLevel(logging.WARNING)
    for handler in app_logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


def expected_path(path: Path) -> Path:
    """Where a scenario's expected transcript lives: examples/<name>.expected.txt beside it."""
    return path.with_name(f"{path.stem}.expected.txt")
