"""Step Functions keeps every execution's input and output, and each state's input, output and
task parameters, in its history for 90 days: they carry ids, never PHI.

One hospital plays every kind of journey through the API on the virtual clock, on an emptied
runtime, with two patients whose every personal detail is a distinctive string:
- an adult: an appointment confirmed by an SMS "C", reminded and attended; the aftercare plan
  the visit starts, whose check-in is answered (urgently, with free text), then its extra
  check-in left unanswered (reminder, hand-over to staff) and its re-check invitation unbooked;
- a child reached through a guardian: an appointment confirmed by the guardian's "C", then
  missed (both no-show follow-ups, the first one throttled once by SNS so that a failed task's
  error and cause are in the history too, and the staff task); a recall never answered;
- the recall rule saved after both were tagged (a backfill execution, the sweep, a recall
  journey each), and a campaign that reaches both (the driver and an outreach each).
Then every execution of every state machine in the emulator is read back (describe, and the
whole history, paginated), and every Lambda invoke the interpreter made (request and response):
none may contain any of the patients' details.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import START, Api, payload, tenant_body
from tests.journeys.support import SHANGHAI, iso, run_schedule

pytestmark = pytest.mark.journey

TENANT = "t-0a1cf0e5e5"
ADULT_PHONE, CHILD_PHONE, GUARDIAN_PHONE = "+8613975318642", "+8613824681357", "+8613715935724"
ADULT: dict[str, Any] = {
    "name": {"given": "Quorvina", "family": "Thistlewaite", "preferred": "Vinzelle"},
    "birth_date": "1957-03-14",
    "sex": "female",
    "phone": "139 7531 8642",
    "email": "Quorvina.Thistlewaite@mailbox-zq.example",
    "preferred_channels": ["sms", "email"],
    "medical": {
        "conditions": ["zq-cond-alpha"],
        "allergies": ["zq-allergy-gamma"],
        "risk_flags": ["zq-risk-delta"],
    },
    "departments": ["cardiology"],
    "external_ids": {"mrn": "MRN-ZQ-7755331"},
}
CHILD: dict[str, Any] = {
    "name": {"given": "Brimsley", "family": "Fennimore", "preferred": "布里姆斯利"},
    "birth_date": "2017-06-19",  # nine on the virtual clock: messages go to the guardian
    "phone": "138-2468-1357",
    "email": "brimsley.fennimore@kids-zq.example",
    "medical": {"conditions": ["zq-cond-alpha", "zq-cond-beta"]},
    "departments": ["cardiology"],
    "guardian": {
        "name": "Ysolde Marchbanks",
        "relationship": "parent",
        "phone": "+86 137 1593 5724",
        "email": "Ysolde.Marchbanks@guardian-zq.example",
        "preferred_channels": ["sms", "email"],
    },
}
ADULT_NOTE = "Bring the zq-oxblood glucose diary and fast from midnight"
CHILD_NOTE = "Bring the zq-saffron inhaler and last year's spirometry"
MISSED_REASON = "Ran out of zq-quillamycin tablets on Tuesday"
SYMPTOMS = "zq-zebrafinch tingling in the left ankle since the operation"

# What no history may contain, by what it is: compared case-insensitively, and a phone also by
# its national digits within any string (so that every notation is caught).
PHI: dict[str, tuple[str, ...]] = {
    "adult name": ("Quorvina", "Thistlewaite", "Vinzelle"),
    "adult phone": (ADULT_PHONE, "139 7531 8642"),
    "adult email": (ADULT["email"], "mailbox-zq"),
    "adult birth date": ("1957-03-14", "19570314"),
    "adult MRN": ("MRN-ZQ-7755331", "7755331"),
    "condition tags": ("zq-cond-alpha", "zq-cond-beta", "zq-allergy-gamma", "zq-risk-delta"),
    "appointment notes": (ADULT_NOTE, "zq-oxblood", CHILD_NOTE, "zq-saffron"),
    "questionnaire free text": (MISSED_REASON, "zq-quillamycin", SYMPTOMS, "zq-zebrafinch"),
    "child name": ("Brimsley", "Fennimore", "布里姆斯利"),
    "child phone": (CHILD_PHONE, "138-2468-1357"),
    "child email": (CHILD["email"], "kids-zq"),
    "child birth date": ("2017-06-19", "20170619"),
    "guardian name": ("Ysolde", "Marchbanks"),
    "guardian phone": (GUARDIAN_PHONE, "+86 137 1593 5724"),
    "guardian email": (CHILD["guardian"]["email"], "guardian-zq"),
}
NATIONAL_DIGITS = {
    "adult phone": "13975318642",
    "child phone": "13824681357",
    "guardian phone": "13715935724",
}

CARE_PLAN = {
    "name": "After a follow-up",
    "trigger": {"event": "appointment.fulfilled", "appointment_types": ["follow_up"]},
    "check_ins": [{"day": 1, "questionnaire": "post-discharge"}],  # free-text items
    "education": [
        {"day": 2, "title": {"zh-CN": "出院后注意事项"}, "url": "https://example.org/home"}
    ],
    "on_urgent": {"extra_check_in_after_days": 1},
    "recheck": {"day": 5, "book_within_days": 3, "appointment_type": "follow_up"},
}
RECALL_RULE = {
    "name": "Review every 90 days",
    "match": {"condition": "zq-cond-alpha"},
    "after_days": 90,
    "book": {"department": "cardiology", "appointment_type": "follow_up"},
}
ANSWERS = {
    "medication": "some",
    "missed_reason": MISSED_REASON,
    "new_symptoms": True,
    "symptoms": SYMPTOMS,
    "breathless": True,  # urgent: staff alerted, and the plan's extra check-in
}
CAMPAIGN = {
    "segment": "department:cardiology",
    "name": "Flu shots",
    "message": {
        "text": {"zh-CN": "{{clinic}}：{{first_name}}您好，流感疫苗已到，预约请点 {{link}}"}
    },
}
MACHINE_PREFIX = "careloop-local-"


# --- reading the histories ------------------------------------------------------------------


@dataclass(frozen=True)
class Leak:
    """Where a patient's detail was found: the machine, the execution, the history event (or
    the Lambda invoke), the state it belongs to, and the field."""

    machine: str
    execution: str
    event: str
    state: str
    field: str
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return (
            f"{self.kind} in {self.machine} / state {self.state} / {self.event}.{self.field} "
            f"(execution {self.execution}): ...{self.excerpt}..."
        )


@dataclass
class Inspected:
    """What was read back from the emulator."""

    executions: Counter[str] = field(default_factory=Counter)  # machine → executions
    statuses: dict[str, str] = field(default_factory=dict)  # execution → status
    events: Counter[str] = field(default_factory=Counter)  # history event type → count
    text: dict[str, list[str]] = field(default_factory=dict)  # machine → every string read
    lambda_calls: int = 0
    leaks: list[Leak] = field(default_factory=list)

    def leaks_in(self, machine: str) -> list[str]:
        return [str(leak) for leak in self.leaks if leak.machine == machine]


def strings(value: Any) -> Iterator[str]:
    """Every string in a value, JSON documents inside strings opened too (a history's fields
    are JSON text; a Lambda task's payload is JSON inside them), numbers as text."""
    if isinstance(value, str):
        if value.lstrip()[:1] in ("{", "[", '"'):
            try:
                inner = json.loads(value)
            except ValueError:
                inner = value
            if inner != value:
                yield from strings(inner)
                return
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


def phi_in(value: Any) -> Iterator[tuple[str, str]]:
    """(kind, excerpt) of every patient detail in `value`."""
    for text in strings(value):
        lowered = text.casefold()
        digits = re.sub(r"\D", "", text)
        for kind, needles in PHI.items():
            found = next((n.casefold() for n in needles if n.casefold() in lowered), None)
            if found is None and NATIONAL_DIGITS.get(kind, "-") in digits:
                found = NATIONAL_DIGITS[kind]
            if found is not None:
                at = max(lowered.find(found), 0)
                yield kind, text[max(at - 60, 0) : at + len(found) + 60]


def state_of(event: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> str:
    """The state a history event belongs to: the nearest state entered (or exited) before it."""
    seen: dict[str, Any] | None = event
    while seen is not None:
        details = seen.get("stateEnteredEventDetails") or seen.get("stateExitedEventDetails")
        if details:
            return str(details["name"])
        seen = by_id.get(seen.get("previousEventId", 0))
    return "(execution)"


def inspect_every_execution(runtime: Any, into: Inspected) -> Inspected:
    """Every execution of every state machine: describe (input, output, error, cause) and each
    history event's details (input, output, parameters, error, cause...)."""
    sfn = runtime.client("stepfunctions")
    for machines in sfn.get_paginator("list_state_machines").paginate():
        for machine in machines["stateMachines"]:
            name = machine["name"].removeprefix(MACHINE_PREFIX)
            into.executions[name] += 0
            read = into.text.setdefault(name, [])
            listed = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"]
            )
            for execution in (e for page in listed for e in page["executions"]):
                arn = execution["executionArn"]
                into.executions[name] += 1
                described = sfn.describe_execution(executionArn=arn)
                into.statuses[described["name"]] = described["status"]
                for key in ("input", "output", "error", "cause"):
                    read += strings(described.get(key, ""))
                    into.leaks += [
                        Leak(name, execution["name"], "DescribeExecution", "-", key, kind, text)
                        for kind, text in phi_in(described.get(key, ""))
                    ]
                history = [
                    event
                    for page in sfn.get_paginator("get_execution_history").paginate(
                        executionArn=arn
                    )
                    for event in page["events"]
                ]
                by_id = {event["id"]: event for event in history}
                for event in history:
                    into.events[event["type"]] += 1
                    state = state_of(event, by_id)
                    for key, details in event.items():
                        if not key.endswith("EventDetails"):
                            continue
                        read += strings(details)
                        into.leaks += [
                            Leak(
                                name,
                                execution["name"],
                                event["type"],
                                state,
                                f"{key}.{part}",
                                kind,
                                text,
                            )
                            for part, value in details.items()
                            for kind, text in phi_in(value)
                        ]
    return into


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw or "")


class LambdaCalls:
    """Every Lambda invoke the interpreter made (a Task state's payload and the function's
    response), recorded around the runtime's in-process invoke."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        self.calls: list[tuple[str, str, str]] = []
        invoke, calls = LambdaSimpleBackend.invoke, self.calls

        def recorded(
            backend: Any, function: str, qualifier: Any, body: Any, headers: Any, answer: Any
        ) -> Any:
            response = invoke(backend, function, qualifier, body, headers, answer)
            calls.append((function.rsplit(":", 1)[-1], _text(body), _text(response)))
            return response

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", recorded)

    def leaks(self) -> list[Leak]:
        return [
            Leak("(lambda)", function, "Invoke", function, part, kind, text)
            for function, request, response in self.calls
            for part, value in (("Payload", request), ("response", response))
            for kind, text in phi_in(value)
        ]


class ThrottledOnce:
    """SNS throttles the next SMS to one number, once, after the SDK's own retries (as the
    fault tier injects it): the task fails as Retryable, its state retries it, and the history
    holds a TaskFailed event whose error and cause are read too."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from chalicelib.adapters.channels import Channels

        self.armed_for: str | None = None
        self.thrown = 0
        send_sms, owner = Channels.send_sms, self

        def send(channels: Channels, phone: str, *args: Any, **kwargs: Any) -> str:
            if phone != owner.armed_for:
                return send_sms(channels, phone, *args, **kwargs)
            from botocore.exceptions import ClientError

            from chalicelib.adapters.failures import classify_send

            owner.armed_for, owner.thrown = None, owner.thrown + 1
            throttled = ClientError(
                {
                    "Error": {"Code": "Throttled", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "Publish",
            )
            raise classify_send(throttled) from throttled

        monkeypatch.setattr(Channels, "send_sms", send)


# --- the journeys ---------------------------------------------------------------------------


def local(days: int, hour: int, minute: int = 0) -> datetime:
    day = (START.astimezone(SHANGHAI) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.body
    return payload(response)


class Hospital:
    """A journey-enabled tenant with Dr Li's cardiology schedule, through the API."""

    def __init__(self, runtime: Any, api: Api) -> None:
        self.runtime, self.api = runtime, api
        body = tenant_body(TENANT, journey={"enabled": True}, campaigns={"rate_per_minute": 5})
        ok(api.call("POST", "/tenants", runtime.token("operator"), body), 201)
        self.admin = runtime.token("admin", TENANT)
        self.staff = runtime.token("staff", TENANT)
        doctor = {"name": "Li", "department": "cardiology"}
        ok(api.call("PUT", "/clinicians/dr-li", self.admin, doctor))
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        schedule = {
            "department": "cardiology",
            "clinician": "dr-li",
            "location": "Building 2",
            "weekly_hours": {d: [{"start": "08:00", "end": "17:00"}] for d in days},
            "slot_minutes": 30,
            "capacity": 5,
        }
        ok(api.call("PUT", "/schedules/cardio", self.admin, schedule))

    def move_to(self, moment: datetime) -> None:
        self.runtime.clock.set(moment)
        self.runtime.settle()

    def patient(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        created: dict[str, Any] = ok(self.api.call("POST", "/patients", self.staff, body), 201)
        return created, self.runtime.token("patient", TENANT, created["id"])

    def book(self, token: str, start: datetime, kind: str, note: str) -> dict[str, Any]:
        slot = {"schedule_id": "cardio", "start": iso(start)}
        body = {"slot": slot, "type": kind, "notes_for_patient": note}
        booked: dict[str, Any] = ok(self.api.call("POST", "/appointments", token, body), 201)
        self.runtime.settle()
        return booked

    def sms_reply(self, phone: str, text: str) -> None:
        ok(self.api.call("POST", "/local/sms-reply", None, {"from": phone, "text": text}), 202)
        self.runtime.settle()

    def appointment(self, appointment: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = ok(
            self.api.call("GET", f"/appointments/{appointment['id']}", self.staff)
        )
        return found

    def staff_act(self, appointment: dict[str, Any], action: str) -> None:
        ok(self.api.call("POST", f"/appointments/{appointment['id']}/{action}", self.staff))
        self.runtime.settle()

    def tasks(self, patient: dict[str, Any]) -> list[str]:
        items = ok(self.api.call("GET", "/tasks", self.staff))["items"]
        return sorted(t["kind"] for t in items if t["patient_id"] == patient["id"])

    def answer_check_in(self, token: str, phone: str) -> dict[str, Any]:
        """Follow the link in the latest check-in text, answer, submit."""
        links = [
            match.group(1)
            for message in self.runtime.outbox.messages(to=phone, channel="sms")
            if (match := re.search(r"/q/(qr-[0-9a-f]{16})", message.body))
        ]
        assert links, "the check-in reached the patient"
        path = f"/me/questionnaire-responses/{links[-1]}"
        ok(self.api.call("PATCH", path, token, {"answers": ANSWERS}))
        submitted: dict[str, Any] = ok(self.api.call("POST", f"{path}/submit", token))
        self.runtime.settle()
        return submitted


@dataclass
class Played:
    hospital: Hospital
    adult: dict[str, Any]
    child: dict[str, Any]
    adult_visit: dict[str, Any]
    child_visit: dict[str, Any]
    answered: dict[str, Any]
    campaign: dict[str, Any]


def play(runtime: Any, api: Api, throttle: ThrottledOnce) -> Played:
    """Every kind of journey for the two patients, over a month of the virtual clock."""
    h = Hospital(runtime, api)
    ok(api.call("PUT", "/care-plans/after-visit", h.admin, CARE_PLAN))
    # The hospital's system hears of every appointment change, answer and urgent alert.
    events = ["appointment.status_changed", "questionnaire_response.submitted", "alert.urgent"]
    hook = {"url": runtime.webhooks.url("/phi-probe"), "events": events, "secret": "p" * 32}
    ok(api.call("POST", "/webhooks", h.admin, hook), 201)
    adult, adult_token = h.patient(ADULT)
    child, child_token = h.patient(CHILD)
    # Saved after its patients were tagged: a backfill execution makes them due at once.
    ok(api.call("PUT", "/recall-rules/review-90d", h.admin, RECALL_RULE))
    runtime.settle()

    # Day 0: both book for day 2; the adult, then the child's guardian, answer "C" by SMS.
    adult_visit = h.book(adult_token, local(2, 10), "follow_up", ADULT_NOTE)
    child_visit = h.book(child_token, local(2, 10, 30), "check_up", CHILD_NOTE)
    h.sms_reply(ADULT_PHONE, "C")
    h.sms_reply(GUARDIAN_PHONE, "C")

    # Day 1: the daily sweep starts both recall journeys.
    h.move_to(local(1, 9, 30))
    assert run_schedule(runtime, "recall_sweep")["started"] == 2

    # Day 2: the adult comes (the aftercare plan starts); the child does not.
    h.move_to(local(2, 9, 45))
    h.staff_act(adult_visit, "check-in")
    h.staff_act(adult_visit, "fulfil")
    throttle.armed_for = GUARDIAN_PHONE  # the no-show follow-up
    h.move_to(local(2, 12, 31))
    assert throttle.thrown == 1, "the no-show follow-up was throttled once"

    # Day 3: the check-in answered, urgently and in free text; a campaign to both meanwhile.
    h.move_to(local(3, 10, 1))
    answered = h.answer_check_in(adult_token, ADULT_PHONE)
    key = {"Idempotency-Key": "campaign-phi-probe"}
    campaign = ok(api.call("POST", "/campaigns", h.staff, CAMPAIGN, headers=key), 201)
    runtime.settle()

    # The month after: the extra check-in unanswered, the re-check unbooked, the no-show's
    # second attempt and staff task, the child's recall reminded and handed over to staff.
    for day in (3, 5, 10, 20, 31):
        h.move_to(local(day, 12))

    # The hospital's system sends its history in bulk: lines it refuses, full of the adult's
    # details (a gender we do not know, a line that is not JSON). Nothing is written.
    from chalicelib.settings import get_settings

    refused = [
        json.dumps(
            {
                "resourceType": "Patient",
                "identifier": [{"system": f"urn:careloop:{TENANT}:mrn", "value": "MRN-ZQ-7755331"}],
                "name": [{"family": "Thistlewaite", "given": ["Quorvina"]}],
                "gender": "Vinzelle",
                "birthDate": "1957-03-14",
            }
        ),
        '{"resourceType": "Patient", "name": "Quorvina Thistlewaite 1957-03-14",',
    ]
    runtime.client("s3").put_object(
        Bucket=get_settings().import_bucket,
        Key=f"{TENANT}/history/patients.ndjson",
        Body="\n".join(refused).encode(),
    )
    body = {"files": ["history/patients.ndjson"]}
    imported = ok(api.call("POST", "/fhir/imports", h.admin, body), 202)
    runtime.settle()
    report = ok(api.call("GET", f"/fhir/imports/{imported['id']}", h.admin))
    assert (report["status"], report["progress"]["rejected"]) == ("completed", 2), report
    return Played(h, adult, child, adult_visit, child_visit, answered, campaign)


@pytest.fixture(scope="module")
def inspected(runtime: Any, api: Api) -> Iterator[tuple[Played, Inspected, LambdaCalls]]:
    """The journeys played on an emptied runtime at START (every execution in the emulator is
    one of theirs, and every moment is the same on every run), then read back. The runtime is
    emptied again afterwards, at the time the other tests had reached."""
    resumed = runtime.clock.now()
    runtime.reset(START)
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            calls = LambdaCalls(monkeypatch)
            played = play(runtime, api, ThrottledOnce(monkeypatch))
            seen = inspect_every_execution(runtime, Inspected())
            seen.lambda_calls = len(calls.calls)
            seen.leaks += calls.leaks()
            yield played, seen, calls
    finally:
        runtime.reset(resumed)


# --- the tests ------------------------------------------------------------------------------


def test_every_kind_of_journey_ran_and_was_read(
    inspected: tuple[Played, Inspected, LambdaCalls],
) -> None:
    """Not vacuous: each journey ran its course, with the patients' details at hand, and the
    histories read back carry what a task needs (ids) where PHI would be."""
    played, seen, _ = inspected
    h = played.hospital
    assert dict(seen.executions) == {
        "appointment": 2,
        "aftercare": 1,
        "recall": 2,
        "recall-backfill": 1,
        "campaign": 1,
        "outreach": 2,
        "smoke": 0,
        "webhook": seen.executions["webhook"],
        "fhir-import": 1,
    }
    assert seen.executions["webhook"] >= 5, "changes, answers and alerts were delivered"
    assert set(seen.statuses.values()) == {"SUCCEEDED"}, seen.statuses
    for kind in ("TaskFailed", "MapIterationStarted"):
        assert seen.events[kind] >= 1, f"no {kind}: {seen.events}"

    assert h.appointment(played.adult_visit)["status"] == "fulfilled"
    assert h.appointment(played.child_visit)["status"] == "noshow"
    assert (played.answered["risk"], played.answered["answers"]["symptoms"]) == ("urgent", SYMPTOMS)
    assert h.tasks(played.adult) == ["checkin_unanswered", "urgent_answer"]
    assert h.tasks(played.child) == ["noshow_unrebooked", "recall_unconverted"]
    campaign = ok(h.api.call("GET", f"/campaigns/{played.campaign['id']}", h.staff))
    assert campaign["progress"]["sent"] == 2

    read = {machine: " ".join(texts) for machine, texts in seen.text.items()}
    assert played.adult_visit["id"] in read["appointment"]
    assert played.child_visit["id"] in read["appointment"]
    assert played.answered["journey"]["id"] in read["aftercare"]
    for machine in ("recall", "outreach"):
        assert played.adult["id"] in read[machine] and played.child["id"] in read[machine]
    assert played.campaign["id"] in read["campaign"]
    assert "Throttled" in read["appointment"], "the failed task's cause was read"


@pytest.mark.parametrize(
    "machine",
    [
        "appointment",
        "aftercare",
        "recall",
        "recall-backfill",
        "campaign",
        "outreach",
        "webhook",
        "fhir-import",
    ],
)
def test_no_phi_in_any_execution_history(
    inspected: tuple[Played, Inspected, LambdaCalls], machine: str
) -> None:
    _, seen, _ = inspected
    assert seen.executions[machine] >= 1
    assert seen.leaks_in(machine) == []


def test_no_phi_in_any_lambda_task_payload_or_response(
    inspected: tuple[Played, Inspected, LambdaCalls],
) -> None:
    _, seen, _ = inspected
    assert seen.lambda_calls > 40
    assert seen.leaks_in("(lambda)") == []


def test_the_probe_finds_a_detail_wherever_a_history_could_hold_it(
    runtime: Any, inspected: tuple[Played, Inspected, LambdaCalls]
) -> None:
    """The reader is not blind: the smoke machine, which takes a phone and an email as its
    input (an operator's, when used as meant), run with the adult's, is caught in its input,
    task parameters, state output and Lambda payload; and so is each notation of a detail."""
    _, _, calls = inspected
    run = {
        "tenant_id": TENANT,
        "run_id": "phi-probe",
        "phone": ADULT_PHONE,
        "email": ADULT["email"],
        "wait_seconds": 0,
    }
    sfn = runtime.client("stepfunctions")
    arn = runtime.resources.ref("SmokeStateMachine")
    sfn.start_execution(stateMachineArn=arn, name="phi-probe", input=json.dumps(run))
    runtime.settle()
    seen = inspect_every_execution(runtime, Inspected())
    found = {
        (leak.event, leak.state, leak.field.split(".")[-1], leak.kind)
        for leak in seen.leaks
        if leak.machine == "smoke"
    }
    assert {
        ("DescribeExecution", "-", "input", "adult phone"),
        ("DescribeExecution", "-", "input", "adult email"),
        ("ExecutionStarted", "(execution)", "input", "adult phone"),
        ("TaskScheduled", "RecordRun", "parameters", "adult email"),
        ("TaskScheduled", "SendSms", "parameters", "adult phone"),
        ("TaskStateExited", "RecordRun", "output", "adult phone"),
        ("ExecutionSucceeded", "Done", "output", "adult email"),
    } <= found, found
    smoke_calls = [leak.kind for leak in calls.leaks() if leak.execution.endswith("smoke_record")]
    assert "adult phone" in smoke_calls

    escaped = json.dumps({"Payload": json.dumps({"name": "布里姆斯利 Marchbanks"})})
    assert {kind for kind, _ in phi_in(escaped)} == {"child name", "guardian name"}
    for notation in ("+86-139-7531-8642", "(139) 7531 8642", "8613975318642", 13975318642):
        assert [kind for kind, _ in phi_in({"cause": notation})] == ["adult phone"], notation
    assert [kind for kind, _ in phi_in(["QUORVINA.thistlewaite@MAILBOX-ZQ.example"])] == [
        "adult name",
        "adult email",
    ]
