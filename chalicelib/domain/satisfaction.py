"""Satisfaction after a visit: the tenant's settings, the built-in care plan that asks, and what
an answer means (a detractor or a flagged comment opens a recovery complaint; a promoter may be
thanked with the hospital's review link). Pure.

The questionnaire is the `satisfaction` starter: `score` 0-10 (likelihood to recommend, NPS),
`comment`, and optional 1-5 ratings of aspects of the visit (`ASPECTS`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict

from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.complaints import DEFAULT_RECOVERY_HOURS, ComplaintCategory
from chalicelib.domain.errors import Problems

QUESTIONNAIRE = "satisfaction"
# The built-in plan's id. Tenants' own plans may not start with `builtin-` (care_config).
PLAN_ID = "builtin-satisfaction"
BUILTIN_PREFIX = "builtin-"
PROMOTER_MIN_SCORE = 9  # NPS: 9-10 promoters, 7-8 passives, 0-6 detractors
DEFAULT_DETRACTOR_MAX_SCORE = 6
# An unanswered survey is nobody's task: the journey just ends after this long.
ANSWER_WINDOW_HOURS = 72

# Aspects rated 1-5 (optional), and the complaint category a poor rating points to.
ASPECTS: dict[str, ComplaintCategory] = {
    "waiting_time": ComplaintCategory.WAITING_TIME,
    "staff": ComplaintCategory.STAFF_ATTITUDE,
    "explanation": ComplaintCategory.COMMUNICATION,
    "cleanliness": ComplaintCategory.FACILITIES,
}
POOR_ASPECT_MAX = 2  # a rating of 1 or 2 out of 5


class ThankYou(TypedDict):
    enabled: bool
    review_url: NotRequired[str]


class SatisfactionSettings(TypedDict):
    enabled: bool
    delay_days: int
    send_time: str
    min_days_between: int
    detractor_max_score: int
    flag_keywords: list[str]
    recovery_hours: int
    thank_you: ThankYou


DEFAULTS = SatisfactionSettings(
    enabled=False,
    delay_days=1,
    send_time="10:00",
    min_days_between=90,
    detractor_max_score=DEFAULT_DETRACTOR_MAX_SCORE,
    flag_keywords=[],
    recovery_hours=DEFAULT_RECOVERY_HOURS,
    thank_you=ThankYou(enabled=False),
)


def settings_of(tenant: Mapping[str, Any]) -> SatisfactionSettings:
    """The tenant's settings, defaults filling what it did not set."""
    own = tenant.get("satisfaction") or {}
    merged: dict[str, Any] = {**DEFAULTS, **own}
    merged["thank_you"] = {**DEFAULTS["thank_you"], **(own.get("thank_you") or {})}
    return SatisfactionSettings(**merged)  # type: ignore[typeddict-item,no-any-return]


def check_settings(tenant: Mapping[str, Any], problems: Problems) -> None:
    """What the schema cannot say about `satisfaction` (run with the tenant's other checks)."""
    own = tenant.get("satisfaction")
    if not own:
        return
    thank_you = own.get("thank_you") or {}
    if thank_you.get("enabled") and not thank_you.get("review_url"):
        problems.add("$.satisfaction.thank_you.review_url", "a thank-you needs the review link")
    normalised = [normalise(k) for k in own.get("flag_keywords", [])]
    if len(normalised) != len(set(normalised)):
        problems.add("$.satisfaction.flag_keywords", "keywords must differ (case is ignored)")
    if any(not k for k in normalised):
        problems.add("$.satisfaction.flag_keywords", "a keyword cannot be blank")


def builtin_plan(settings: SatisfactionSettings) -> Document:
    """The care plan that asks: one check-in with the satisfaction questionnaire `delay_days`
    after the visit at `send_time` (the patient's zone, out of quiet hours). No reminder, and no
    staff task when nobody answers (`hand_over: false`): a survey is not care."""
    return {
        "id": PLAN_ID,
        "name": "Satisfaction after a visit",
        "builtin": True,
        "trigger": {"event": "appointment.fulfilled"},
        "check_ins": [{"day": settings["delay_days"], "questionnaire": QUESTIONNAIRE}],
        "send_time": settings["send_time"],
        "remind_after_hours": ANSWER_WINDOW_HOURS,
        "escalate_after_hours": ANSWER_WINDOW_HOURS,
        "hand_over": False,
    }


def window_start(visit_at: datetime, min_days_between: int) -> str:
    """A patient last asked after a visit at or before this moment may be asked again now."""
    return utc_iso(visit_at - timedelta(days=min_days_between))


def normalise(text: str) -> str:
    """How comments and keywords are compared: NFKC (full-width letters are ordinary ones),
    case folded, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _pattern(keyword: str) -> re.Pattern[str]:
    """A keyword that begins (ends) with a Latin letter or digit must begin (end) a word there
    ("rude" is not in "prude"); Chinese is written without spaces, so a Chinese keyword matches
    anywhere."""
    word = normalise(keyword)
    before = r"(?<![0-9a-z])" if re.match(r"[0-9a-z]", word[:1]) else ""
    after = r"(?![0-9a-z])" if re.match(r"[0-9a-z]", word[-1:]) else ""
    return re.compile(before + re.escape(word) + after)


def flagged_keywords(comment: str, keywords: list[str]) -> list[str]:
    """The tenant's keywords the comment contains (case-insensitive), in the tenant's order."""
    if not comment or not keywords:
        return []
    text = normalise(comment)
    return [k for k in keywords if normalise(k) and _pattern(k).search(text)]


class Verdict(TypedDict):
    score: int
    detractor: bool
    promoter: bool
    keywords: list[str]  # which of the tenant's keywords the comment holds
    recovery: bool  # a recovery complaint opens
    category: str  # its category
    thank_you: bool  # the patient is thanked (and given the review link)


def verdict(answers: Mapping[str, Any], settings: SatisfactionSettings) -> Verdict:
    """What a submitted satisfaction response means. A detractor (score at or below the
    tenant's threshold) or a flagged comment opens a recovery complaint, of the category of the
    worst aspect rated poorly (else `other`). A promoter is thanked when the tenant configured
    a thank-you and nothing opened a complaint: a comment that flags a problem is answered by
    staff, not with a review link. Nothing is ever posted anywhere for any score."""
    score = int(answers["score"])
    keywords = flagged_keywords(str(answers.get("comment") or ""), settings["flag_keywords"])
    detractor = score <= settings["detractor_max_score"]
    promoter = score >= PROMOTER_MIN_SCORE
    recovery = detractor or bool(keywords)
    return Verdict(
        score=score,
        detractor=detractor,
        promoter=promoter,
        keywords=keywords,
        recovery=recovery,
        category=recovery_category(answers).value,
        thank_you=promoter and not recovery and settings["thank_you"]["enabled"],
    )


def recovery_category(answers: Mapping[str, Any]) -> ComplaintCategory:
    """The category of the worst-rated aspect at or below `POOR_ASPECT_MAX`; else `other`."""
    rated = [
        (int(answers[aspect]), order, category)
        for order, (aspect, category) in enumerate(ASPECTS.items())
        if isinstance(answers.get(aspect), int)
    ]
    poor = [r for r in rated if r[0] <= POOR_ASPECT_MAX]
    return min(poor)[2] if poor else ComplaintCategory.OTHER


def flagged_by(verdict_: Verdict) -> list[str]:
    return [
        reason
        for reason, applies in (("score", verdict_["detractor"]), ("keyword", verdict_["keywords"]))
        if applies
    ]
