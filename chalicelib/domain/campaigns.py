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
OUTCOMES = ("sent", "suppressed", "failed")
COUNTERS = ("targeted", "started", *OUTCOMES)


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


def check_message(message: Document) -> None:
    """Refuse, at creation, a message that could not be rendered for every patient."""
    problems = Problems()
    for language, text in (message.get("text") or {}).items():
        path = f"$.message.text.{language}"
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
            check_template_kind(kind)
    problems.raise_if_any()


def check_template_kind(kind: str) -> None:
    """A template kind can carry a campaign only if its wording needs no appointment."""
    path = "$.message.template"
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


def wording(campaign: Document, patient_language: str, default_language: str) -> Document | None:
    """The body and subject to send instead of the step's templates, or None for a template
    kind (the tenant's own wording of it, else the product's)."""
    message = campaign["message"]
    if "text" not in message:
        return None
    return {
        "body": pick_text(message["text"], patient_language, default_language),
        "subject": SUBJECT,
    }


def step_of(campaign: Document) -> str:
    template: str = campaign["message"].get("template", CAMPAIGN_STEP)
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
