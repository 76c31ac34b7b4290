"""Patients drifting away: who is most at risk of being lost, by a score whose parts are shown.
Pure.

Each counted record leaves signals about its patient (a function of the record alone, as a
tally is): a missed visit, a follow-up that fell due and was not booked, outreach nobody
answered (a confirmation request or an aftercare check-in handed to staff for it). They are kept
beside the patient as a set of short strings, added and removed as records change. The score is
read from them on the day asked:

- recent no-shows: 3 points each, missed visits of the last 180 days;
- overdue follow-ups: 2 points each, plus 1 per full 30 days overdue (at most 6 more);
- unanswered outreach: 2 points each, of the last 180 days.

A visit answers what came before it: an attended visit removes the patient's no-shows and
unanswered outreach of earlier days (and one of those arriving after a later visit is not kept);
an overdue follow-up counts until it is booked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TypedDict
from zoneinfo import ZoneInfo

from chalicelib.domain.common import Document

RECENT_DAYS = 180
NOSHOW_POINTS = 3
OVERDUE_POINTS = 2
OVERDUE_POINTS_PER_30_DAYS = 1
OVERDUE_MOST_EXTRA = 6
UNANSWERED_POINTS = 2
# Staff tasks that say outreach went unanswered.
UNANSWERED_TASKS = frozenset({"no_answer", "checkin_unanswered"})
# A recall's statuses after which nothing is asked of the patient any more.
NOT_ASKED = frozenset({"converted", "cancelled"})

NOSHOW, OVERDUE, UNANSWERED = "noshow", "overdue", "unanswered"


class ScorePart(TypedDict):
    part: str  # recent_no_shows | overdue_follow_ups | unanswered_outreach
    count: int
    points: int
    latest: str  # the most recent one's day (for overdue: the earliest due day)


class DriftingPatient(TypedDict):
    patient_id: str
    score: int
    parts: list[ScorePart]


def _day(moment: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(moment).astimezone(zone).date().isoformat()


def signals(kind: str, doc: Document | None, zone: ZoneInfo) -> set[str]:
    """The signals a record leaves about its patient as it stands: `noshow#<day>#<appointment>`,
    `overdue#<due day>#recall#<rule>`, `unanswered#<day>#<task kind>#<task>`."""
    if not doc:
        return set()
    if kind == "appointment" and doc.get("status") == "noshow":
        return {f"{NOSHOW}#{_day(doc['start'], zone)}#{doc['id']}"}
    if kind == "recall":
        first = overdue_since(doc)
        return {f"{OVERDUE}#{first}#recall#{doc.get('rule_id', '')}"} if first else set()
    if kind == "task" and doc.get("kind") in UNANSWERED_TASKS and doc.get("patient_id"):
        return {f"{UNANSWERED}#{_day(doc['created_at'], zone)}#{doc['kind']}#{doc['id']}"}
    return set()


def overdue_since(recall: Document) -> str | None:
    """The due day of the first cycle the patient has left unbooked since they last booked or
    came (None: nothing overdue). One per recall: its days overdue grow from there."""
    if recall.get("status") in NOT_ASKED:
        return None
    unbooked: list[str] = []
    for cycle in sorted(recall.get("cycles") or [], key=lambda c: str(c.get("due_date"))):
        if cycle.get("outcome") == "unconverted":
            unbooked.append(str(cycle["due_date"]))
        elif cycle.get("outcome") in ("converted", "visited"):
            unbooked = []
    if recall.get("status") == "invited" and recall.get("due_date"):
        unbooked.append(str(recall["due_date"]))
    return min(unbooked) if unbooked else None


def answered_by_visit(signal: str, visit_day: str) -> bool:
    """Whether an attended visit on `visit_day` answers a signal: a no-show or unanswered
    outreach of an earlier day."""
    part, day = signal.split("#", 2)[:2]
    return part in (NOSHOW, UNANSWERED) and day < visit_day


def kept_signals(found: Iterable[str], visit_days: Iterable[str]) -> set[str]:
    """The signals a patient's records leave, less those a visit answered (a rebuild)."""
    latest = max(visit_days, default="")
    return {s for s in found if not answered_by_visit(s, latest)}


def patient_of(kind: str, doc: Document | None) -> str | None:
    return str(doc["patient_id"]) if doc and doc.get("patient_id") else None


def score(patient_id: str, kept: Iterable[str], today: date) -> DriftingPatient:
    """The patient's score on `today` and its parts (parts with nothing to count left out)."""
    after = date.fromordinal(today.toordinal() - RECENT_DAYS).isoformat()
    by_part: dict[str, list[str]] = {NOSHOW: [], OVERDUE: [], UNANSWERED: []}
    for signal in kept:
        part, day = signal.split("#", 2)[:2]
        if part == OVERDUE:
            if day < today.isoformat():
                by_part[OVERDUE].append(day)
        elif part in by_part and day > after:
            by_part[part].append(day)
    parts: list[ScorePart] = []
    if by_part[NOSHOW]:
        days = by_part[NOSHOW]
        parts.append(_part("recent_no_shows", days, len(days) * NOSHOW_POINTS, max(days)))
    if by_part[OVERDUE]:
        days = by_part[OVERDUE]
        points = sum(
            OVERDUE_POINTS
            + min(
                OVERDUE_MOST_EXTRA,
                (today - date.fromisoformat(d)).days // 30 * OVERDUE_POINTS_PER_30_DAYS,
            )
            for d in days
        )
        parts.append(_part("overdue_follow_ups", days, points, min(days)))
    if by_part[UNANSWERED]:
        days = by_part[UNANSWERED]
        parts.append(_part("unanswered_outreach", days, len(days) * UNANSWERED_POINTS, max(days)))
    return {
        "patient_id": patient_id,
        "score": sum(p["points"] for p in parts),
        "parts": parts,
    }


def _part(name: str, days: list[str], points: int, latest: str) -> ScorePart:
    return {"part": name, "count": len(days), "points": points, "latest": latest}


def most_at_risk(patients: Iterable[DriftingPatient]) -> list[DriftingPatient]:
    """Highest score first (then the most recent signal, then id, for a stable order)."""
    scored = [p for p in patients if p["score"] > 0]
    scored.sort(key=lambda p: p["patient_id"])
    scored.sort(key=lambda p: max(part["latest"] for part in p["parts"]), reverse=True)
    scored.sort(key=lambda p: p["score"], reverse=True)
    return scored
