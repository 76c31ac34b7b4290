"""Campaigns: one message to every patient of a segment, at a tenant's rate. Pure rules.

A campaign message is either the campaign's own text per language, or a template kind whose
wording needs no more than a campaign can fill (clinic, first name, link). Text is checked when
the campaign is created, with the SMS rules (the strictest channel), so nothing fails when due.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.common import Document
from chalicelib.domain.errors import Problems, ValidationFailed, invalid
from chalicelib.domain.messages import DEFAULT_TEMPLATES, check_template, render

DEFAULT_RATE_PER_MINUTE = 60
CAMPAIGN_FIELDS = frozenset({"clinic", "first_name", "link"})
CAMPAIGN_STEP = "campaign"
SUBJECT = "{{clinic}}"
# `held_out`: a patient of the campaign's control group, never messaged (the outcome of every
# control patient, recorded when the driver reaches them).
OUTCOMES = ("sent", "suppressed", "failed", "held_out")
COUNTERS = ("targeted", "started", *OUTCOMES)

CONTROL = "control"
MESSAGED = "messaged"  # the one arm of a campaign without wording variants
DEFAULT_CONTROL_PERCENT = 10
DEFAULT_GOAL_DAYS = 30


def rate_per_minute(tenant: Document) -> int:
    """How many patients a tenant's campaigns may start outreach to per minute, together."""
    configured: int = (tenant.get("campaigns") or {}).get(
        "rate_per_minute", DEFAULT_RATE_PER_MINUTE
    )
    return configured


def window(now: datetime) -> tuple[str, datetime]:
    """The rate window `now` falls in (its minute, UTC) and when the next one opens."""
    start = now.replace(second=0, microsecond=0)
    return start.strftime("%Y-%m-%dT%H:%M"), start + timedelta(minutes=1)


# The messages a full window held back do not all knock at the next one's first second.
PACED_SPREAD_SECONDS = 30
# Which outcomes of a send left (or may have left: `unknown`): those count against the rate.
LEFT = frozenset({"sent", "unknown"})


def paced_retry(next_window: datetime, patient_id: str) -> datetime:
    """When a message the rate held back tries again: in the next window, at a second of its
    own (the same on every replay)."""
    spread = int(hashlib.sha256(patient_id.encode()).hexdigest(), 16) % PACED_SPREAD_SECONDS
    return next_window + timedelta(seconds=spread)


def _names(source: str) -> set[str]:
    from jinja2 import meta
    from jinja2.sandbox import SandboxedEnvironment

    names: set[str] = meta.find_undeclared_variables(SandboxedEnvironment().parse(source))
    return names


def sample_fields(clinic: str) -> dict[str, str]:
    return {
        "clinic": clinic,
        "first_name": "Wei",
        "link": "https://app.careloop.example/c/c-0123456789abcdef",
    }


def check_message(message: Document, at: str = "$.message") -> None:
    """Refuse, at creation, a message that could not be rendered for every patient (`at`: where
    the message is in the request, for the error)."""
    problems = Problems()
    for language, text in (message.get("text") or {}).items():
        path = f"{at}.text.{language}"
        with problems.check():
            try:
                check_template(text, "sms")
            except ValidationFailed as failure:
                raise invalid(path, failure.details[0].message) from failure
            unknown = sorted(_names(text) - CAMPAIGN_FIELDS)
            if unknown:
                raise invalid(
                    path,
                    f"unknown field(s) for a campaign: {', '.join(unknown)} "
                    f"(use {', '.join(sorted(CAMPAIGN_FIELDS))})",
                )
    kind = message.get("template")
    if kind is not None:
        with problems.check():
            check_template_kind(kind, f"{at}.template")
    problems.raise_if_any()


def check_template_kind(kind: str, path: str = "$.message.template") -> None:
    """A template kind can carry a campaign only if its wording needs no appointment."""
    sources = [k for k in DEFAULT_TEMPLATES if k[0] == kind]
    if not sources:
        raise invalid(path, "is not a template kind")
    for _, channel, language in sources:
        try:
            render(kind, channel, language, sample_fields("Clinic"))
        except Exception as exc:  # the wording needs a field a campaign cannot fill
            raise invalid(
                path,
                f"the {kind} wording needs appointment details; a campaign can fill only "
                f"{', '.join(sorted(CAMPAIGN_FIELDS))}",
            ) from exc


def pick_text(texts: dict[str, str], language: str, default_language: str) -> str:
    """The text for a patient's language: exact, then same language family (zh, en), then the
    tenant's default language, then any (the first by language tag)."""
    if language in texts:
        return texts[language]
    family = language.split("-", maxsplit=1)[0]
    for candidate in sorted(texts):
        if candidate.split("-", maxsplit=1)[0] == family:
            return texts[candidate]
    if default_language in texts:
        return texts[default_language]
    return texts[sorted(texts)[0]]


def wording(message: Document, patient_language: str, default_language: str) -> Document | None:
    """The body and subject to send instead of the step's templates, or None for a template
    kind (the tenant's own wording of it, else the product's)."""
    if "text" not in message:
        return None
    return {
        "body": pick_text(message["text"], patient_language, default_language),
        "subject": SUBJECT,
    }


def variants(campaign: Document) -> list[Document]:
    """The campaign's wordings, each with the name its patients are reported under."""
    named: list[Document] = campaign.get("variants") or [
        {"name": MESSAGED, "message": campaign["message"]}
    ]
    return named


def control_percent(campaign: Document) -> int:
    """The share of the segment kept as a control group (0: none)."""
    group = campaign.get("control_group")
    if group is None:
        return 0
    percent: int = group.get("percent", DEFAULT_CONTROL_PERCENT)
    return percent


def arm_of(campaign: Document, patient_id: str) -> str:
    """Which group a patient of the campaign is in: `control` (never messaged) or the name of
    the wording they get. Reproducible: a hash of the campaign and the patient, the same on
    every replay and in every rerun of the analysis; uniform, so the groups are random
    samples of the segment."""
    digest = hashlib.sha256(f"{campaign['id']}:{patient_id}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    control = control_percent(campaign) / 100
    if draw < control:
        return CONTROL
    named = variants(campaign)
    index = min(int((draw - control) / (1 - control) * len(named)), len(named) - 1)
    name: str = named[index]["name"]
    return name


def message_for(campaign: Document, arm: str) -> Document:
    """The message a patient of `arm` gets."""
    for variant in variants(campaign):
        if variant["name"] == arm:
            message: Document = variant["message"]
            return message
    raise ValueError(f"campaign {campaign['id']} has no wording {arm!r}")


def goal(campaign: Document) -> Document:
    """What the campaign asks patients to book: appointment type and/or department (either may
    be absent: any), within `within_days` of the message."""
    return {"within_days": DEFAULT_GOAL_DAYS, **(campaign.get("goal") or {})}


def check_variants(body: Document) -> None:
    """A campaign has one message or 2-4 named wordings, names distinct."""
    named = body.get("variants") or []
    names = [v["name"] for v in named]
    if len(set(names)) != len(names):
        raise invalid("$.variants", "wording names must differ")
    if CONTROL in names:
        raise invalid("$.variants", f"{CONTROL!r} names the control group, not a wording")


def step_of(message: Document) -> str:
    """The step a campaign message is logged under: its template kind, or `campaign`."""
    template: str = message.get("template", CAMPAIGN_STEP)
    return template


def progress(counters: dict[str, Any]) -> dict[str, int]:
    return {name: int(counters.get(name) or 0) for name in COUNTERS}


def status(progress_now: dict[str, int], exhausted: bool) -> str:
    """Running until the driver has paged the whole segment and every outreach it started has
    an outcome."""
    finished = sum(progress_now[o] for o in OUTCOMES)
    return "done" if exhausted and finished >= progress_now["started"] else "running"


# A Standard execution keeps at most 25,000 history events, and the driver loops once a minute:
# a campaign of 100,000 patients at 60 a minute is 1,667 loops. So the driver continues as a new
# execution after this many batches. One loop's history:
#   StartBatch (Task: entered, scheduled, started, succeeded, exited)   5
#   Exhausted (Choice) 2 + CountBatch (Pass) 2 + WaitForNextWindow 2
#   + HistoryFull (Choice) 2                                              8
#   = 13 events; a batch that fails all 8 retries adds 8 x 3 (scheduled, started, failed) = 24.
# 500 loops x (13 + 24) = 18,500 events even if every batch retried to the end, plus a few for
# the start and the continuation: well under 25,000 (500 x 13 = 6,500 when nothing fails).
BATCHES_PER_EXECUTION = 500


def execution_names(tenant_id: str, campaign_id: str, patient_id: str) -> tuple[str, str]:
    """Deterministic execution names (driver, one patient's outreach): a restart is a no-op."""
    return driver_execution_name(tenant_id, campaign_id, 1), f"{campaign_id}-{patient_id}"


def driver_execution_name(tenant_id: str, campaign_id: str, part: int) -> str:
    """The driver's n-th execution (each continues the last before its history fills): a
    retried continuation starts nothing more."""
    base = f"{tenant_id}-{campaign_id}"
    return base if part == 1 else f"{base}-part{part}"
