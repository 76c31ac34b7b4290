"""The audit trail: who read or changed which patient's data, when, from where, with what outcome.

Entries are chained per tenant and UTC day: each carries the hash of the entry before it, so an
edited, removed or inserted entry breaks the chain at that point, and `first_broken_link` names
it. A tenant's day has CHAIN_SHARDS chains side by side: a writer that loses the race for one
chain's head appends to another, so a busy hospital's many journey tasks do not queue behind
one head. A patient appears only as a pseudonym (a keyed hash of their id under the tenant's
key): the trail survives the patient's erasure and names no one, yet the hospital can still
answer "who looked at this record" for an id it is given.

Never stored here: the values of PHI. Fields changed are listed by name only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import NotRequired, TypedDict

GENESIS_HASH = "0" * 64  # what the first entry of a day's chain points back to
CHAIN_SHARDS = 8
DEFAULT_RETENTION_YEARS = 6
MAX_RECORDS_PER_ENTRY = 200  # a page of the largest list the API returns
BREAK_GLASS_HEADER = "X-Break-Glass-Reason"
MIN_BREAK_GLASS_REASON = 10  # characters: "because" is not a reason


class ActorKind(StrEnum):
    PERSON = "person"  # a signed-in account (staff, admin, patient, operator)
    JOURNEY = "journey"  # a journey's task acting on its own
    SYSTEM = "system"  # a schedule or an inbound message handler


class AccessLogNames(StrEnum):
    """How the patient's own access log names the staff who read their record."""

    ROLE = "role"  # "staff of Cardiology" (the default: staff are not exposed by name)
    NAME = "name"  # the staff member's name as the hospital recorded it


class Actor(TypedDict):
    kind: ActorKind
    subject: str  # the account's `sub`, or the task's name
    role: str  # patient | staff | admin | operator | journey | system


class Source(TypedDict, total=False):
    ip: str
    user_agent: str
    request_id: str


class RecordRef(TypedDict):
    type: str  # patient | appointment | questionnaire_response | delivery | care | task | ...
    id: str


class AuditEntry(TypedDict):
    tenant_id: str
    day: str  # YYYY-MM-DD (UTC)
    shard: int  # which of the day's chains: 0 .. CHAIN_SHARDS - 1
    seq: int  # 1, 2, ... within the chain
    at: str
    actor: Actor
    action: str  # the API operation or the task
    subjects: list[str]  # pseudonyms of the patients touched
    records: list[RecordRef]  # ids of what was touched (never a name, phone or email)
    fields: list[str]  # names of the fields a change carried
    outcome: str  # "200", "404 not_found", "ok", "failed"
    source: Source
    prev_hash: str
    hash: str
    break_glass: NotRequired[str]  # the reason a member gave for reading outside their departments
    reason: NotRequired[str]  # the reason given for a change that needs one (an erasure)
    expires_at: NotRequired[int]  # epoch seconds: the tenant's retention


class ChainBreak(TypedDict):
    shard: int
    seq: int
    reason: str


class ChainVerification(TypedDict):
    tenant_id: str
    day: str
    chains: int
    entries: int
    intact: bool
    first_broken: NotRequired[ChainBreak]


@dataclass(frozen=True)
class Activity:
    """What one request or task did, gathered while it ran: the entry's body before chaining."""

    actor: Actor
    action: str
    subjects: tuple[str, ...]
    records: tuple[RecordRef, ...]
    fields: tuple[str, ...]
    outcome: str
    source: Source
    break_glass: str | None = None
    reason: str | None = None


def pseudonym(key: bytes, patient_id: str) -> str:
    """The patient as the trail names them: stable under one tenant's key, meaningless without
    it, and not reversible to the id."""
    return hmac.new(key, f"patient:{patient_id}".encode(), hashlib.sha256).hexdigest()[:32]


def _canonical(entry: AuditEntry | dict[str, object]) -> bytes:
    body = {k: v for k, v in entry.items() if k not in ("hash", "expires_at")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: AuditEntry | dict[str, object]) -> str:
    """SHA-256 over the entry's canonical JSON (every field but the hash itself and the TTL)."""
    return hashlib.sha256(_canonical(entry)).hexdigest()


def retention_expiry(day: str, years: int) -> int:
    """When a whole day's chain may go (epoch seconds): the day's end plus the retention, so a
    chain is never cut in the middle by TTL."""
    end = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC) + timedelta(days=1)
    return int((end + timedelta(days=round(365.25 * years))).timestamp())


def chained(
    activity: Activity,
    *,
    tenant_id: str,
    at: datetime,
    shard: int,
    seq: int,
    prev_hash: str,
    retention_years: int,
) -> AuditEntry:
    day = at.astimezone(UTC).date().isoformat()
    entry: AuditEntry = {
        "tenant_id": tenant_id,
        "day": day,
        "shard": shard,
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "actor": activity.actor,
        "action": activity.action,
        "subjects": sorted(set(activity.subjects)),
        "records": _unique(activity.records)[:MAX_RECORDS_PER_ENTRY],
        "fields": sorted(set(activity.fields)),
        "outcome": activity.outcome,
        "source": activity.source,
        "prev_hash": prev_hash,
        "hash": "",
    }
    if activity.break_glass:
        entry["break_glass"] = activity.break_glass
    if activity.reason:
        entry["reason"] = activity.reason
    entry["hash"] = entry_hash(entry)
    entry["expires_at"] = retention_expiry(day, retention_years)
    return entry


def _unique(records: tuple[RecordRef, ...]) -> list[RecordRef]:
    seen: set[tuple[str, str]] = set()
    kept: list[RecordRef] = []
    for record in records:
        key = (record["type"], record["id"])
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


def first_broken_link(entries: list[AuditEntry], shard: int = 0) -> ChainBreak | None:
    """The first entry (in sequence order) of one chain that does not hold: a gap or repeat in
    the numbering, a hash that does not match its content, or a link to the wrong predecessor."""
    previous_hash = GENESIS_HASH
    for expected_seq, entry in enumerate(sorted(entries, key=lambda e: e["seq"]), start=1):
        if entry["seq"] != expected_seq:
            return {"shard": shard, "seq": expected_seq, "reason": "an entry is missing here"}
        if entry["hash"] != entry_hash(entry) or entry.get("shard", shard) != shard:
            reason = "its content does not match its hash"
            return {"shard": shard, "seq": entry["seq"], "reason": reason}
        if entry["prev_hash"] != previous_hash:
            reason = "it does not follow the entry before it"
            return {"shard": shard, "seq": entry["seq"], "reason": reason}
        previous_hash = entry["hash"]
    return None


def verification(
    tenant_id: str, day: str, chains: dict[int, list[AuditEntry]]
) -> ChainVerification:
    """Every chain of the day, and the first broken link of the first broken chain."""
    broken = None
    for shard in sorted(chains):
        broken = first_broken_link(chains[shard], shard)
        if broken is not None:
            break
    result: ChainVerification = {
        "tenant_id": tenant_id,
        "day": day,
        "chains": len(chains),
        "entries": sum(len(entries) for entries in chains.values()),
        "intact": broken is None,
    }
    if broken is not None:
        result["first_broken"] = broken
    return result


def outside_departments(member_departments: list[str], patient_departments: list[str]) -> bool:
    """Reading this patient is break-glass for this member: both have departments assigned and
    they share none. (No departments on either side: the hospital has not fenced them.)"""
    if not member_departments or not patient_departments:
        return False
    return not set(member_departments) & set(patient_departments)


def access_log_line(
    entry: AuditEntry, names: AccessLogNames, staff_names: dict[str, str]
) -> dict[str, object]:
    """One line of the patient's own access log: who (as the hospital chooses to show staff),
    when, what kind of access; no internal ids, addresses or other patients."""
    actor = entry["actor"]
    if actor["kind"] != ActorKind.PERSON:
        who = "CareLoop (automatic)"
    elif actor["role"] == "patient":
        who = "you"
    elif names is AccessLogNames.NAME and actor["subject"] in staff_names:
        who = staff_names[actor["subject"]]
    else:
        who = f"hospital {actor['role']}"
    line: dict[str, object] = {
        "at": entry["at"],
        "who": who,
        "role": actor["role"],
        "action": entry["action"],
        "change": bool(entry["fields"]),
    }
    if "break_glass" in entry:
        line["emergency_access"] = True
    return line
