"""One message of a journey step: the life of its delivery record, and what a send task tells
its state machine. Pure: no I/O.

A step's record is claimed (`sending`, with a lease) before anything leaves. Only an outcome
that settles the step blocks another attempt: `sent`, `suppressed`, `unknown` (the request left
but its answer was lost: never retried, never tried on another channel) and `skipped` (the
message no longer made sense). A `failed` attempt (throttled, the provider failing) or a
`sending` claim whose lease has run out may be claimed again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import NotRequired, TypedDict

from chalicelib.domain.common import utc_iso

# How long a claim holds a step (and its appointment against a cancel) while it sends. A send
# that takes longer gives up its claim before publishing, so a cancel never waits longer.
LEASE = timedelta(seconds=30)
# A claim this close to its lease's end is not used to publish: the cancel may be about to win.
LEASE_MARGIN = timedelta(seconds=5)


class DeliveryStatus(StrEnum):
    SENDING = "sending"
    SENT = "sent"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"
    DELIVERED = "delivered"
    BOUNCED = "bounced"


S = DeliveryStatus
NEXT_STATUSES: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    S.SENDING: frozenset({S.SENT, S.SUPPRESSED, S.FAILED, S.UNKNOWN, S.SKIPPED, S.SENDING}),
    S.FAILED: frozenset({S.SENDING, S.SKIPPED, S.SUPPRESSED}),
    S.SENT: frozenset({S.DELIVERED, S.BOUNCED}),
    # A bounce wins over a Delivery notice, whichever arrives first; nothing follows a bounce.
    S.DELIVERED: frozenset({S.BOUNCED}),
    S.BOUNCED: frozenset(),
    S.SUPPRESSED: frozenset(),
    S.UNKNOWN: frozenset(),
    S.SKIPPED: frozenset(),
}
# Statuses from which no new attempt can start: the step is settled, and a replay returns the
# record as it is (sent, suppressed, unknown, skipped, delivered, bounced).
SETTLED = frozenset(status for status, after in NEXT_STATUSES.items() if S.SENDING not in after)


def lease_until(now: datetime) -> str:
    return utc_iso(now + LEASE)


def lease_usable(lease_end: str, now: datetime) -> bool:
    """Whether a claim may still publish: its lease has more than the margin left."""
    return utc_iso(now + LEASE_MARGIN) < lease_end


class DeliveryRecord(TypedDict):
    """A step's line in the patient's delivery log (and its idempotency marker)."""

    key: str
    patient_id: str
    step: str
    status: str
    created_at: str
    attempt: int
    appointment_id: NotRequired[str]
    journey_id: NotRequired[str]
    campaign_id: NotRequired[str]
    recall_rule: NotRequired[str]
    complaint_id: NotRequired[str]  # a complaint's closing message
    response_id: NotRequired[str]  # a satisfaction response's thank-you
    to_guardian: NotRequired[bool]  # a minor's message, sent to their guardian
    channel: NotRequired[str]
    lease_until: NotRequired[str]
    message_id: NotRequired[str]
    sent_at: NotRequired[str]
    reasons: NotRequired[list[str]]
    fell_back: NotRequired[list[str]]
    why: NotRequired[str]
    sms_segments: NotRequired[int]
    sms_encoding: NotRequired[str]
    delivered_at: NotRequired[str]
    bounced_at: NotRequired[str]
    staff_task_id: NotRequired[str]
    reply_to: NotRequired[str]  # the hospital's two-way number the text invited a reply to
    reply_code: NotRequired[str]  # the appointment's code the text named (C2/N2 ...)


class SendResult(TypedDict):
    """What a send task returns to its state machine (`$.sent.result`)."""

    status: str  # sent | suppressed | unknown | skipped | deferred
    retry_at: NotRequired[str]  # when deferred: the end of quiet hours
    why: NotRequired[str]  # when skipped
    channel: NotRequired[str]
    sent_at: NotRequired[str]
    replayed: NotRequired[bool]


def send_result(record: DeliveryRecord, *, replayed: bool = False) -> SendResult:
    result = SendResult(status=str(record["status"]))
    if "channel" in record and record["status"] != S.SUPPRESSED:
        result["channel"] = record["channel"]
    if "why" in record:
        result["why"] = record["why"]
    if "sent_at" in record:
        result["sent_at"] = record["sent_at"]
    if replayed:
        result["replayed"] = True
    return result


def deferred(retry_at: datetime) -> SendResult:
    return SendResult(status="deferred", retry_at=utc_iso(retry_at))
