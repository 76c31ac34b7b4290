"""Patient segments: rule-based groups of a tenant's patients. Pure rules, no I/O.

A segment's members are read with one key-condition Query, never a Scan, so membership is kept
in index entries written with the patient profile (same TransactWrite):

- segments that depend only on the record (`chronic`, `high-risk`, `member:<class>`,
  `department:<id>`) get one entry per member, `SEG#<segment>` / `P#<patient>`;
- segments that change with the calendar are served from entries sorted by birth date, cut at
  query time with today's date, so they are always current without any sweep:
  `elderly` (65 and over) from `BIRTHS` / `<birth_date>#<patient>` (every patient with a birth
  date), and `guardians-of-minors` (a patient under 18 whose guardian is a parent or legal
  guardian) from `SEG#guardians-of-minors` / `<birth_date>#<patient>`.

`entries(doc)` says which entries a profile needs; the repository writes the difference between
the old and the new profile's entries. A deleted profile needs none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from chalicelib.domain.common import Document, is_valid_id
from chalicelib.domain.errors import NotFound
from chalicelib.domain.tenants import department_names

ELDERLY_AGE = 65
MINOR_UNTIL = 18  # a patient is a minor until their 18th birthday (as in domain.patients)

# Long-term conditions that make a patient "chronic" (tags as in `medical.conditions`).
CHRONIC_CONDITIONS = frozenset(
    {
        "diabetes",
        "type-1-diabetes",
        "type-2-diabetes",
        "type1-diabetes",
        "type2-diabetes",
        "hypertension",
        "copd",
        "asthma",
        "ckd",
        "chronic-kidney-disease",
        "heart-failure",
        "coronary-heart-disease",
        "atrial-fibrillation",
        "stroke",
        "epilepsy",
        "rheumatoid-arthritis",
        "hepatitis-b",
        "hiv",
    }
)
GUARDIAN_RELATIONSHIPS = frozenset({"parent", "legal_guardian"})

CHRONIC = "chronic"
HIGH_RISK = "high-risk"
ELDERLY = "elderly"
GUARDIANS_OF_MINORS = "guardians-of-minors"
MEMBER_PREFIX = "member:"
DEPARTMENT_PREFIX = "department:"
# Indexes that recall rules saved later find their patients through (never listed as segments
# of their own): patients carrying a condition tag, and patients with a fulfilled visit of a
# type (`visited:any` for any type). Visit entries are written when the visit is fulfilled.
CONDITION_PREFIX = "condition:"
VISITED_PREFIX = "visited:"
VISITED_ANY = "visited:any"
TAG = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # patient.json tagList
MEMBER_CLASS = re.compile(r"[a-z0-9][a-z0-9_-]{0,19}")  # patient.json memberClass

BIRTHS_PARTITION = "BIRTHS"
PATIENT_SORT_PREFIX = "P#"

DESCRIPTIONS = {
    CHRONIC: "Patients with a long-term condition (diabetes, hypertension, COPD, asthma, "
    "CKD, heart failure, coronary heart disease, ...)",
    HIGH_RISK: "Patients with any risk flag",
    ELDERLY: f"Patients aged {ELDERLY_AGE} or over today (from their birth date)",
    GUARDIANS_OF_MINORS: f"Patients under {MINOR_UNTIL} whose guardian is a parent or legal "
    "guardian; campaigns address the guardian",
}
BUILT_IN = (CHRONIC, HIGH_RISK, ELDERLY, GUARDIANS_OF_MINORS)


@dataclass(frozen=True, order=True)
class Entry:
    """One index item that places a patient in a segment: partition (after `T#<tenant>#`) and
    sort key."""

    partition: str
    sort: str


@dataclass(frozen=True)
class SegmentQuery:
    """How to read a segment: the partition, and at most one bound on the sort key."""

    partition: str
    at_least: str | None = None  # sort key >= this
    below: str | None = None  # sort key < this


def segment_partition(segment: str) -> str:
    return f"SEG#{segment}"


def record_segments(doc: Document) -> frozenset[str]:
    """The segments a live profile belongs to by its content alone (not by the calendar)."""
    found: set[str] = set()
    medical = doc.get("medical") or {}
    conditions = set(medical.get("conditions") or [])
    if CHRONIC_CONDITIONS & conditions:
        found.add(CHRONIC)
    found |= {CONDITION_PREFIX + c for c in conditions}
    if medical.get("risk_flags"):
        found.add(HIGH_RISK)
    if doc.get("member_class"):
        found.add(MEMBER_PREFIX + doc["member_class"])
    found |= {DEPARTMENT_PREFIX + d for d in doc.get("departments") or []}
    return frozenset(found)


def visit_entries(patient_id: str, appointment_type: str) -> frozenset[Entry]:
    """The entries a fulfilled visit of this type places its patient in."""
    sort = PATIENT_SORT_PREFIX + patient_id
    return frozenset(
        {
            Entry(segment_partition(VISITED_PREFIX + appointment_type), sort),
            Entry(segment_partition(VISITED_ANY), sort),
        }
    )


def guarded_by_parent(doc: Document) -> bool:
    guardian = doc.get("guardian") or {}
    return guardian.get("relationship") in GUARDIAN_RELATIONSHIPS


def entries(doc: Document) -> frozenset[Entry]:
    """Every index entry the profile needs; none once it is deleted."""
    if doc.get("deleted_at"):
        return frozenset()
    patient_id = doc["id"]
    found = {
        Entry(segment_partition(s), PATIENT_SORT_PREFIX + patient_id) for s in record_segments(doc)
    }
    born = doc.get("birth_date")
    if born:
        found.add(Entry(BIRTHS_PARTITION, f"{born}#{patient_id}"))
        if guarded_by_parent(doc):
            found.add(Entry(segment_partition(GUARDIANS_OF_MINORS), f"{born}#{patient_id}"))
    return frozenset(found)


def changes(before: Document | None, after: Document) -> tuple[set[Entry], set[Entry]]:
    """(entries to delete, entries to put) when a profile goes from `before` to `after`."""
    old = entries(before) if before is not None else frozenset()
    new = entries(after)
    return set(old - new), set(new - old)


def latest_birth_date(today: date, years: int) -> date:
    """The latest birth date of someone who is at least `years` old on `today` (a 29 February
    birthday counts from 1 March in other years, as `domain.patients.age_on` does)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # today is 29 February; that year has none
        return today.replace(year=today.year - years, day=28)


def check_segment(segment: str, tenant: Document) -> str:
    """The segment if it exists in this tenant, else NotFound."""
    if segment in BUILT_IN:
        return segment
    if segment.startswith(DEPARTMENT_PREFIX):
        department = segment.removeprefix(DEPARTMENT_PREFIX)
        if department in department_names(tenant):
            return segment
    if segment.startswith(MEMBER_PREFIX) and MEMBER_CLASS.fullmatch(
        segment.removeprefix(MEMBER_PREFIX)
    ):
        return segment
    if segment.startswith(CONDITION_PREFIX) and TAG.fullmatch(
        segment.removeprefix(CONDITION_PREFIX)
    ):
        return segment
    raise NotFound("segment not found", code="segment_not_found")


def query_for(segment: str, today: date) -> SegmentQuery:
    """The key condition that lists a (checked) segment's members on `today`."""
    if segment == ELDERLY:
        cutoff = latest_birth_date(today, ELDERLY_AGE)
        return SegmentQuery(BIRTHS_PARTITION, below=(cutoff + timedelta(days=1)).isoformat())
    if segment == GUARDIANS_OF_MINORS:
        adult_cutoff = latest_birth_date(today, MINOR_UNTIL)
        return SegmentQuery(
            segment_partition(segment), at_least=(adult_cutoff + timedelta(days=1)).isoformat()
        )
    return SegmentQuery(segment_partition(segment))


def patient_of(sort_key: str) -> str:
    """The patient id at the end of an entry's sort key."""
    return sort_key.rsplit("#", 1)[1]


# `P#<p>`, or `<birth month>#<p>` as birth-sorted entries are stored (store/segments.py).
_SORT_KEY = re.compile(r"(P|\d{4}-\d{2})#(?P<patient>[a-z0-9-]{2,40})")


def is_entry_sort_key(value: str) -> bool:
    """Whether a (client-supplied) cursor value is a sort key this service writes."""
    match = _SORT_KEY.fullmatch(value)
    return match is not None and is_valid_id(match["patient"])


def definitions(tenant: Document, member_classes: list[str]) -> list[Document]:
    """The tenant's segments: the built-in ones, one per department, one per member class seen."""
    found: list[Document] = [{"id": s, "kind": s, "description": DESCRIPTIONS[s]} for s in BUILT_IN]
    found += [
        {
            "id": DEPARTMENT_PREFIX + d["id"],
            "kind": "department",
            "description": f"Patients of {d['name']}",
        }
        for d in tenant.get("departments", [])
    ]
    found += [
        {
            "id": MEMBER_PREFIX + c,
            "kind": "member",
            "description": f"Patients of member class {c}",
        }
        for c in sorted(set(member_classes))
    ]
    return found
