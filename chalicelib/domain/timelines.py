"""Timelines that say why: what the compact records of a patient's journeys say, as one list of
entries in time order. Pure: the records come in, entries go out (services/timelines.py reads).

An entry sits at its planned moment when it had one (a step, a recall's due date), else at the
moment it happened, so a step stays where the plan put it whatever became of it. Staff see every
entry with its reasons; a patient sees their bookings, the changes to them, their replies,
answers and messages, never an internal step, a reason, a risk or a staff task.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time
from typing import NotRequired, TypedDict, cast
from zoneinfo import ZoneInfo

from chalicelib.domain import aftercare, recall
from chalicelib.domain import appointment_journey as rules
from chalicelib.domain.appointments import Change
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.deliveries import DeliveryStatus


class TimelineEntry(TypedDict):
    # booked | change | reply | step | message | started | completed | cycle | answer | task |
    # opt_out | opt_in
    kind: str
    local_time: str  # its moment (planned, else when it happened) in the patient's zone
    journey: NotRequired[str]  # appointment | aftercare | recall | campaign
    at: NotRequired[str]  # when it happened
    planned_at: NotRequired[str]
    moved_from: NotRequired[str]  # the moment quiet hours moved it from
    step: NotRequired[str]
    status: NotRequired[str]
    channel: NotRequired[str]
    why: NotRequired[str]
    retry_at: NotRequired[str]
    task_id: NotRequired[str]
    journey_version: NotRequired[int]
    appointment_id: NotRequired[str]
    journey_id: NotRequired[str]
    rule_id: NotRequired[str]
    campaign_id: NotRequired[str]
    change: NotRequired[str]  # an appointment's Change
    by: NotRequired[str]  # who changed it: patient, staff, admin, journey, hospital
    via: NotRequired[str]  # a patient's change: app or sms
    delivery: NotRequired[str]  # what the provider said afterwards: delivered | bounced
    attempts: NotRequired[int]  # more than one: it failed and was tried again
    reasons: NotRequired[list[str]]  # why channels were passed over (no consent, opted out...)
    to_guardian: NotRequired[bool]
    event: NotRequired[str]  # what started an aftercare journey: surgery, discharge, visit
    outcome: NotRequired[str]
    due_date: NotRequired[str]
    task_kind: NotRequired[str]
    closed_at: NotRequired[str]
    questionnaire: NotRequired[str]
    response_id: NotRequired[str]
    risk: NotRequired[str]
    how: NotRequired[str]  # an opt-out's: sms_reply, bounce, complaint
    keyword: NotRequired[str]  # the word texted (STOP, 退订 ...)
    whose: NotRequired[str]  # the contact: the patient's or their guardian's


# What a step's record may say beyond its status; staff see it all, a patient none of it.
DETAIL = ("channel", "why", "retry_at", "task_id")
# Never shown to a patient.
INTERNAL = ("why", "retry_at", "task_id", "reasons", "risk", "attempts", "task_kind", "closed_at")
PATIENT_KINDS = frozenset(
    {"booked", "change", "reply", "message", "step", "answer", "cycle", "opt_out", "opt_in"}
)


def local(moment: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def moment_of(entry: TimelineEntry) -> str:
    """Where the entry sits: its planned moment, else when it happened."""
    return entry.get("planned_at") or entry.get("at") or ""


def in_order(entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    return sorted(entries, key=moment_of)  # stable: a plan's ties keep their order


# --- appointments ---


def _with_outcome(entry: TimelineEntry, outcome: Document, zone: ZoneInfo) -> TimelineEntry:
    """The entry as the step's record says it went (its own word: the step handler notes the
    steps it passes over too)."""
    entry["status"], entry["at"] = outcome["status"], outcome["at"]
    if "planned_at" not in entry:
        entry["local_time"] = local(outcome["at"], zone)
    entry.update({k: outcome[k] for k in DETAIL if k in outcome})  # type: ignore[typeddict-item]
    return entry


def journey_entries(record: Document, *, current: bool, zone: ZoneInfo) -> list[TimelineEntry]:
    """One appointment journey version's steps: the planned ones with what became of them, then
    the steps taken beyond the plan (a no-show's follow-ups), in the order they ran."""
    version, done = record["journey_version"], record.get("steps") or {}
    moved: dict[str, str] = record.get("moved") or {}
    planned = rules.timed_steps(record["plan"]) if record.get("plan") else []
    names = {p["step"] for p in planned}
    about: TimelineEntry = {
        "kind": "step",
        "journey": "appointment",
        "appointment_id": record["appointment_id"],
        "journey_version": version,
        "local_time": "",
    }
    entries: list[TimelineEntry] = []
    for step in planned:
        outcome = done.get(step["step"])
        entry: TimelineEntry = {
            **about,
            "step": step["step"],
            "planned_at": step["at"],
            "local_time": local(step["at"], zone),
            "status": "planned" if current else "not_taken",
        }
        if step["step"] in moved:
            entry["moved_from"] = moved[step["step"]]
        entries.append(_with_outcome(entry, outcome, zone) if outcome else entry)
        if step["step"] in moved and "why" not in entry:
            entry["why"] = "quiet hours"
    for left_out in record.get("left_out") or []:
        entries.append(
            {
                **about,
                "step": left_out["step"],
                "planned_at": left_out["would_be_at"],
                "local_time": local(left_out["would_be_at"], zone),
                "status": "left_out",
                "why": left_out["why"],
            }
        )
    beyond = sorted(
        ((step, outcome) for step, outcome in done.items() if step not in names),
        key=lambda pair: pair[1]["at"],
    )
    for step_name, outcome in beyond:
        entries.append(_with_outcome({**about, "step": step_name}, outcome, zone))
    return entries


def appointment_changes(appointment: Document, zone: ZoneInfo) -> list[TimelineEntry]:
    """The booking and each change after it, by whom; a patient's texted answer is a reply.
    An appointment written before it kept a history shows its booking alone."""
    history = appointment.get("history") or [
        {"at": appointment["created_at"], "change": Change.BOOKED, "by": "patient"}
    ]
    entries: list[TimelineEntry] = []
    for change in history:
        kind = "change"
        if change["change"] == Change.BOOKED and not entries:
            kind = "booked"
        elif change.get("via") == "sms":
            kind = "reply"
        entry: TimelineEntry = {
            "kind": kind,
            "journey": "appointment",
            "appointment_id": appointment["id"],
            "at": change["at"],
            "local_time": local(change["at"], zone),
            "change": change["change"],
            "by": change["by"],
        }
        if "via" in change:
            entry["via"] = change["via"]
        entries.append(entry)
    return entries


# --- the delivery log: what each message did ---


def journey_of(delivery: Document) -> tuple[str, dict[str, str]]:
    """Which journey a delivery belongs to, and the ids that say which one."""
    if "appointment_id" in delivery:
        return "appointment", {"appointment_id": delivery["appointment_id"]}
    if "journey_id" in delivery:
        return "aftercare", {"journey_id": delivery["journey_id"]}
    if "recall_rule" in delivery:
        return "recall", {"rule_id": delivery["recall_rule"]}
    return "campaign", {"campaign_id": delivery.get("campaign_id", "")}


def _delivery_detail(delivery: Document) -> TimelineEntry:
    """What a delivery adds to its step: the provider's word, retries, passed-over channels."""
    detail: dict[str, object] = {}
    if delivery["status"] in (DeliveryStatus.DELIVERED, DeliveryStatus.BOUNCED):
        detail["delivery"] = delivery["status"]
    if delivery.get("attempt", 1) > 1:
        detail["attempts"] = delivery["attempt"]
    # Why it was suppressed, or why the channels before the one used were passed over.
    reasons = delivery.get("reasons") or delivery.get("fell_back")
    if reasons:
        detail["reasons"] = list(reasons)
    if delivery.get("to_guardian"):
        detail["to_guardian"] = True
    if delivery.get("channel"):
        detail["channel"] = delivery["channel"]
    return cast(TimelineEntry, detail)


def message_entry(delivery: Document, zone: ZoneInfo) -> TimelineEntry:
    """A delivery no step of a record stands for (a campaign's, a recall's, a reminder's)."""
    journey, ids = journey_of(delivery)
    happened = delivery.get("sent_at") or delivery["created_at"]
    status = delivery["status"]
    if status in (DeliveryStatus.DELIVERED, DeliveryStatus.BOUNCED):
        status = DeliveryStatus.SENT
    entry: TimelineEntry = {
        "kind": "message",
        "journey": journey,
        "step": delivery["step"],
        "at": happened,
        "local_time": local(happened, zone),
        "status": status,
        **ids,  # type: ignore[typeddict-item]
        **_delivery_detail(delivery),
    }
    if delivery.get("why"):
        entry["why"] = delivery["why"]
    return entry


def merged_with_deliveries(
    entries: list[TimelineEntry], deliveries: list[Document], zone: ZoneInfo
) -> list[TimelineEntry]:
    """Steps that sent a message take their delivery's detail; the deliveries no step stands for
    become entries of their own."""
    by_key = {d["key"]: d for d in deliveries}
    used: set[str] = set()
    for entry in entries:
        key = _delivery_key(entry)
        if key is not None and key in by_key:
            entry.update(_delivery_detail(by_key[key]))
            used.add(key)
    return entries + [message_entry(d, zone) for d in deliveries if d["key"] not in used]


def _delivery_key(entry: TimelineEntry) -> str | None:
    """The delivery a step's message was claimed under (the keys the journeys use)."""
    if entry["kind"] != "step" or "step" not in entry:
        return None
    if entry.get("journey") == "appointment":
        return f"{entry['appointment_id']}#v{entry['journey_version']}#{entry['step']}"
    if entry.get("journey") == "aftercare":
        return f"{entry['journey_id']}#{entry['step']}"
    return None


# --- aftercare journeys and recalls ---


def aftercare_entries(journey: Document, zone: ZoneInfo) -> list[TimelineEntry]:
    """An aftercare journey: what started it, each step at its moment with what became of it,
    and how it ended."""
    about: TimelineEntry = {
        "kind": "step",
        "journey": "aftercare",
        "journey_id": journey["id"],
        "local_time": "",
    }
    entries: list[TimelineEntry] = [
        {
            **about,
            "kind": "started",
            "at": journey["started_at"],
            "local_time": local(journey["started_at"], zone),
            "event": str(journey.get("event", {}).get("type", "")),
        }
    ]
    for step in journey["steps"]:
        entry: TimelineEntry = {
            **about,
            "step": step["id"],
            "planned_at": step["at"],
            "local_time": local(step["at"], zone),
            "status": step["status"],
        }
        happened = step.get("answered_at") or step.get("booked_at") or step.get("escalated_at")
        if happened:
            entry["at"] = happened
        for field in ("risk", "response_id", "appointment_id"):
            if field in step:
                entry[field] = step[field]
        if step.get("not_before"):
            entry["retry_at"] = step["not_before"]
            entry["why"] = "quiet hours"
        entries.append(entry)
    if journey["status"] == aftercare.JourneyStatus.COMPLETED and journey.get("completed_at"):
        entries.append(
            {
                **about,
                "kind": "completed",
                "at": journey["completed_at"],
                "local_time": local(journey["completed_at"], zone),
                "outcome": str(journey.get("outcome", "")),
            }
        )
    return entries


def _start_of(day: str, zone: ZoneInfo) -> str:
    return utc_iso(datetime.combine(datetime.fromisoformat(day).date(), time(), tzinfo=zone))


def recall_entries(record: Document, zone: ZoneInfo) -> list[TimelineEntry]:
    """A recall: each ended cycle with its outcome, and the open one with its due date."""
    about: TimelineEntry = {
        "kind": "cycle",
        "journey": "recall",
        "rule_id": record["rule_id"],
        "local_time": "",
    }
    entries: list[TimelineEntry] = []
    for cycle in record.get("cycles", []):
        # An ended cycle sits where it ended (converted by a booking, say), after its messages.
        entry: TimelineEntry = {
            **about,
            "due_date": cycle["due_date"],
            "at": cycle["settled_at"],
            "local_time": local(cycle["settled_at"], zone),
            "status": cycle["outcome"],
        }
        if "appointment_id" in cycle:
            entry["appointment_id"] = cycle["appointment_id"]
        entries.append(entry)
    if record["status"] in (recall.RecallStatus.SCHEDULED, recall.RecallStatus.INVITED):
        planned = _start_of(record["due_date"], zone)
        entries.append(
            {
                **about,
                "due_date": record["due_date"],
                "planned_at": planned,
                "local_time": local(planned, zone),
                "status": record["status"],
            }
        )
    return entries


# --- answers and staff tasks ---


def answer_entry(
    response: Document, zone: ZoneInfo, answered_journeys: dict[str, str] | None = None
) -> TimelineEntry | None:
    """A submitted questionnaire response (one still being filled in is not an answer yet),
    with the aftercare journey whose check-in it answered (`answered_journeys`: by response)."""
    if response.get("status") != "completed":
        return None
    at = response.get("authored_at") or response["updated_at"]
    entry: TimelineEntry = {
        "kind": "answer",
        "at": at,
        "local_time": local(at, zone),
        "questionnaire": response["questionnaire"],
        "response_id": response["id"],
    }
    if response.get("risk"):
        entry["risk"] = response["risk"]
    journey_id = (answered_journeys or {}).get(response["id"])
    if journey_id:
        entry["journey"], entry["journey_id"] = "aftercare", journey_id
    return entry


def answered_journeys(care_records: Iterable[Document]) -> dict[str, str]:
    """Which aftercare journey each check-in's response belongs to: the one its link opened, or
    the one answered through the app's questionnaire list instead (`answered_by`)."""
    return {
        response_id: journey["id"]
        for journey in care_records
        if journey.get("kind") == aftercare.KIND
        for step in journey.get("steps", [])
        for response_id in (step.get("response_id"), step.get("answered_by"))
        if response_id
    }


def task_entry(task: Document, zone: ZoneInfo) -> TimelineEntry:
    entry: TimelineEntry = {
        "kind": "task",
        "at": task["created_at"],
        "local_time": local(task["created_at"], zone),
        "task_id": task["id"],
        "task_kind": task["kind"],
        "status": task["status"],
    }
    if task.get("appointment_id"):
        entry["journey"] = "appointment"
        entry["appointment_id"] = task["appointment_id"]
    elif task.get("journey_id"):
        entry["journey"] = "aftercare"
        entry["journey_id"] = task["journey_id"]
    elif task.get("recall_rule"):
        entry["journey"] = "recall"
        entry["rule_id"] = task["recall_rule"]
    if task.get("closed_at"):
        entry["closed_at"] = task["closed_at"]
    return entry


def opt_out_entries(opt_outs: Iterable[Document], zone: ZoneInfo) -> list[TimelineEntry]:
    """The record's contacts' opt-outs (a STOP texted, an address that bounced) and the opt-in
    that lifted one; never the address itself."""
    entries: list[TimelineEntry] = []
    for state in opt_outs:
        about: TimelineEntry = {"kind": "opt_out", "channel": state["channel"], "local_time": ""}
        about["whose"] = state["whose"]
        if "at" in state:
            entry: TimelineEntry = {
                **about,
                "at": state["at"],
                "local_time": local(state["at"], zone),
                "status": "in_force" if state["opted_out"] else "lifted",
            }
            for field in ("how", "keyword"):
                if field in state:
                    entry[field] = state[field]
            entries.append(entry)
        if "lifted_at" in state:
            lifted: TimelineEntry = {
                **about,
                "kind": "opt_in",
                "at": state["lifted_at"],
                "local_time": local(state["lifted_at"], zone),
            }
            if "lifted_how" in state:
                lifted["how"] = state["lifted_how"]
            if "lifted_keyword" in state:
                lifted["keyword"] = state["lifted_keyword"]
            entries.append(lifted)
    return entries


# --- what a patient sees ---


def for_patient(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """What a patient sees: their bookings and the changes to them, their replies and answers,
    the messages they were sent and their recalls, without internal reasons."""
    shown: list[TimelineEntry] = []
    for entry in entries:
        if entry["kind"] not in PATIENT_KINDS:
            continue
        if entry["kind"] == "step" and not _reaches_patient(entry):
            continue
        kept = {k: v for k, v in entry.items() if k not in INTERNAL}
        shown.append(cast(TimelineEntry, kept))
    return shown


def _reaches_patient(entry: TimelineEntry) -> bool:
    """A step the patient would know of: a message to them (sent or to come)."""
    if entry.get("status") in ("left_out", "not_taken"):
        return False
    if entry.get("journey") == "appointment":
        return rules.sends_message(entry.get("step", ""))
    return entry.get("journey") == "aftercare"
