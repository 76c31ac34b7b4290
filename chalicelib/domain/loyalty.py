"""Loyalty points: a tenant's published rules, a patient's append-only ledger, and what the
ledger says (balance, pending points, points expiring soon). Pure: no I/O.

Each ledger entry is keyed by what caused it, so that a cause earns once however often its
event is delivered:

- `visit:<appointment>`: a follow-up visit (one a recall or a care plan's re-check invitation
  was answered with). Pending from the booking; its settlement `visit:<appointment>/settled`
  confirms it at attendance or reverses it on a no-show or a cancellation. Only one settlement
  can exist, so a visit is never both confirmed and reversed.
- `checkin:<journey>:<step>`: an aftercare check-in answered in its window (confirmed at once).
- `referral:<referred patient>`: a referred new patient attended their first visit.
- `expire:<credit>`: what was left of a credit on its expiry day (oldest points go first).
- `redeem:<redemption>` and `adjust:<id>`: a reward taken; a staff member's correction.

Spending takes the points that expire soonest first. A credit's unspent part is what is left of
it once every debit (redemption, expiry, negative adjustment) is taken from the credits in that
order; `expiries_due` and `expiring` read the ledger that way, so the balance the account item
keeps and the entries always agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, Problems

# The stream records loyalty reacts to (Lambda filters them on AWS's side): appointments (a
# visit attended, missed or cancelled) and care records (a booking linked to a recall or a
# re-check; a check-in answered).
STREAM_FILTERS: list[Document] = [
    {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {"Keys": {"SK": {"S": ["APPT", {"prefix": "CARE#"}]}}},
    }
]


class EarnEvent(StrEnum):
    """What earns points (the rules' `points` keys)."""

    FOLLOW_UP_ATTENDED = "follow_up_attended"  # a care plan's re-check visit, attended
    RECALL_CONVERTED = "recall_converted"  # a visit booked from a recall, attended
    CHECK_IN_ON_TIME = "check_in_on_time"  # an aftercare check-in answered in its window
    REFERRAL_FIRST_VISIT = "referral_first_visit"  # a referred new patient's first visit


class EntryKind(StrEnum):
    EARN = "earn"
    CONFIRM = "confirm"  # a pending earn's points become spendable
    REVERSE = "reverse"  # a pending earn's points are taken back (no-show, cancelled)
    EXPIRE = "expire"
    REDEEM = "redeem"
    ADJUST = "adjust"


class EarnStatus(StrEnum):
    """Where a visit's points stand; each earn moves at most once, through NEXT_EARN_STATUSES."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REVERSED = "reversed"


NEXT_EARN_STATUSES: dict[EarnStatus, frozenset[EarnStatus]] = {
    EarnStatus.PENDING: frozenset({EarnStatus.CONFIRMED, EarnStatus.REVERSED}),
    EarnStatus.CONFIRMED: frozenset(),
    EarnStatus.REVERSED: frozenset(),
}

DEFAULT_POINTS: dict[str, int] = {
    EarnEvent.FOLLOW_UP_ATTENDED: 50,
    EarnEvent.RECALL_CONVERTED: 50,
    EarnEvent.CHECK_IN_ON_TIME: 10,
    EarnEvent.REFERRAL_FIRST_VISIT: 100,
}
DEFAULT_EXPIRY_DAYS = 365
EXPIRING_SOON_DAYS = 30  # what `GET /me/points` warns of
MAX_STORED_ATTEMPTS = 5  # optimistic writes that lost a race are tried again this often


class Caps(TypedDict):
    per_patient_per_year: NotRequired[int]  # earned in a calendar year (UTC), all events
    per_event_per_month: NotRequired[int]  # earned by one event type in a calendar month


class LoyaltyRules(TypedDict):
    """A tenant's rules as published. `version` counts the publications; every entry names the
    version it was earned under."""

    enabled: bool  # off: nothing is earned or redeemed (where inducement rules forbid rewards)
    points: dict[str, int]  # EarnEvent → points
    caps: Caps
    expiry_days: int  # confirmed points expire this long after they were credited
    member_classes: list[str]  # who takes part: these member classes ([]: every patient)
    announce: bool  # tell the patient of points earned (consent and quiet hours apply)
    version: int
    published_at: str
    published_by: str


def default_rules() -> LoyaltyRules:
    """What a tenant has before its admins publish anything: loyalty off."""
    return LoyaltyRules(
        enabled=False,
        points=dict(DEFAULT_POINTS),
        caps=Caps(),
        expiry_days=DEFAULT_EXPIRY_DAYS,
        member_classes=[],
        announce=False,
        version=0,
        published_at="",
        published_by="",
    )


def published_rules(body: Document, current: LoyaltyRules, *, by: str, now: str) -> LoyaltyRules:
    """The next version from a schema-valid `loyalty-rules-put` body (missing points keep their
    defaults)."""
    problems = Problems()
    for event in body.get("points", {}):
        if event not in EarnEvent.__members__.values():
            problems.add(f"$.points.{event}", "not an event that earns points")
    problems.raise_if_any()
    return LoyaltyRules(
        enabled=body["enabled"],
        points={**DEFAULT_POINTS, **body.get("points", {})},
        caps=Caps(**body.get("caps", {})),  # type: ignore[typeddict-item]
        expiry_days=body.get("expiry_days", DEFAULT_EXPIRY_DAYS),
        member_classes=sorted(set(body.get("member_classes", []))),
        announce=body.get("announce", False),
        version=current["version"] + 1,
        published_at=now,
        published_by=by,
    )


def takes_part(rules: Mapping[str, Any], patient: Mapping[str, Any]) -> bool:
    """Whether a patient earns under these rules (loyalty on, their member class taking part)."""
    if not rules["enabled"]:
        return False
    classes = rules.get("member_classes") or []
    return not classes or patient.get("member_class") in classes


# --- the ledger ---


class LedgerEntry(TypedDict):
    id: str  # the cause (see the module's docstring); unique in the patient's ledger
    kind: str  # an EntryKind
    points: int  # what it moves, always positive: `kind` says which way
    at: str
    event: NotRequired[str]  # an earn's EarnEvent
    status: NotRequired[str]  # an earn's EarnStatus when it was written (pending or confirmed)
    appointment_id: NotRequired[str]
    referred_patient_id: NotRequired[str]
    rules_version: NotRequired[int]
    capped: NotRequired[int]  # points the caps held back from this earn
    cap_periods: NotRequired[list[str]]  # the cap counters it added to (a reversal takes back)
    expires_at: NotRequired[str]  # a credit's (a confirmed earn, a confirmation, a plus adjust)
    of: NotRequired[str]  # a settlement's or an expiry's earn / credit
    reward_id: NotRequired[str]
    voucher_code: NotRequired[str]
    by: NotRequired[str]  # an adjustment's staff member
    reason: NotRequired[str]  # an adjustment's


class Account(TypedDict):
    """A patient's running totals, changed in the same transaction as each entry."""

    balance: int  # spendable
    pending: int  # earned for visits not yet attended
    debited: int  # every point ever redeemed, expired or adjusted away


def visit_cause(appointment_id: str) -> str:
    return f"visit:{appointment_id}"


def check_in_cause(journey_id: str, step_id: str) -> str:
    return f"checkin:{journey_id}:{step_id}"


def referral_cause(referred_patient_id: str) -> str:
    return f"referral:{referred_patient_id}"


def settlement_of(cause: str) -> str:
    return f"{cause}/settled"


def expiry_of(credit: str) -> str:
    return f"expire:{credit}"


def expiry_moment(credited_at: str, rules: Mapping[str, Any]) -> str:
    return utc_iso(datetime.fromisoformat(credited_at) + timedelta(days=rules["expiry_days"]))


def cap_periods(event: str, at: str) -> list[str]:
    """The cap counters an earn at `at` adds to: its year's, and its event's in its month."""
    return [at[:4], f"{at[:7]}#{event}"]


def cap_limits(rules: Mapping[str, Any], event: str, at: str) -> dict[str, int]:
    """Each cap period an earn counts in, with its limit (a period without a cap: none)."""
    caps = rules.get("caps") or {}
    year, month = cap_periods(event, at)
    limits: dict[str, int] = {}
    if "per_patient_per_year" in caps:
        limits[year] = caps["per_patient_per_year"]
    if "per_event_per_month" in caps:
        limits[month] = caps["per_event_per_month"]
    return limits


def allowed_points(wanted: int, limits: Mapping[str, int], used: Mapping[str, int]) -> int:
    """How many of `wanted` points the caps let through, given what each period has used."""
    room = [limit - used.get(period, 0) for period, limit in limits.items()]
    return max(0, min([wanted, *room]))


def earn(
    cause: str,
    event: EarnEvent,
    points: int,
    *,
    at: str,
    rules: Mapping[str, Any],
    pending: bool,
    capped: int = 0,
    **about: str,
) -> LedgerEntry:
    entry = LedgerEntry(
        id=cause,
        kind=EntryKind.EARN,
        event=event,
        points=points,
        at=at,
        status=EarnStatus.PENDING if pending else EarnStatus.CONFIRMED,
        rules_version=rules["version"],
        cap_periods=cap_periods(event, at),
    )
    if capped:
        entry["capped"] = capped
    if not pending:
        entry["expires_at"] = expiry_moment(at, rules)
    entry.update(about)  # type: ignore[typeddict-item]
    return entry


def settlement(
    earned: Mapping[str, Any], becomes: EarnStatus, *, at: str, rules: Mapping[str, Any]
) -> LedgerEntry:
    """A pending earn's confirmation (spendable from now, expiring by the rules) or reversal."""
    if becomes not in NEXT_EARN_STATUSES[EarnStatus(earned["status"])]:
        raise Conflict(f"points that are {earned['status']} cannot become {becomes}")
    entry = LedgerEntry(
        id=settlement_of(earned["id"]),
        kind=EntryKind.CONFIRM if becomes == EarnStatus.CONFIRMED else EntryKind.REVERSE,
        points=earned["points"],
        at=at,
        of=earned["id"],
    )
    if "event" in earned:
        entry["event"] = earned["event"]
    if becomes == EarnStatus.CONFIRMED:
        entry["expires_at"] = expiry_moment(at, rules)
    return entry


class Credit(TypedDict):
    id: str  # the entry that made the points spendable
    points: int
    expires_at: str
    event: str  # what earned them ("" for a staff credit)


def credits(entries: Iterable[Mapping[str, Any]]) -> list[Credit]:
    """Spendable points in the order spending takes them: soonest to expire first."""
    found = [
        Credit(id=e["id"], points=e["points"], expires_at=e["expires_at"], event=e.get("event", ""))
        for e in entries
        if "expires_at" in e and e["points"] > 0
    ]
    return sorted(found, key=lambda c: (c["expires_at"], c["id"]))


def is_debit(entry: Mapping[str, Any]) -> bool:
    return entry["kind"] in (EntryKind.REDEEM, EntryKind.EXPIRE) or (
        entry["kind"] == EntryKind.ADJUST and "expires_at" not in entry
    )


def unspent(entries: Sequence[Mapping[str, Any]]) -> list[tuple[Credit, int]]:
    """Each credit with what is left of it, soonest to expire first: the ledger replayed in its
    order, each debit taking the points that expire soonest among those spendable at its moment
    (never one past its expiry), each expiry what was left of its own credit."""
    live: dict[str, list[Any]] = {}  # credit id → [Credit, points left]
    for entry in sorted(entries, key=history_order):
        if "expires_at" in entry and entry["points"] > 0:
            (credit,) = credits([entry])
            live[entry["id"]] = [credit, entry["points"]]
        elif entry["kind"] == EntryKind.EXPIRE:
            if entry.get("of") in live:
                slot = live[entry["of"]]
                slot[1] = max(0, slot[1] - entry["points"])
        elif is_debit(entry):
            wanted = int(entry["points"])
            for slot in sorted(live.values(), key=lambda s: (s[0]["expires_at"], s[0]["id"])):
                if slot[0]["expires_at"] <= entry["at"] or wanted == 0:
                    continue  # expired by then, or nothing more to take
                taken = min(slot[1], wanted)
                slot[1] -= taken
                wanted -= taken
    ordered = sorted(live.values(), key=lambda s: (s[0]["expires_at"], s[0]["id"]))
    return [(slot[0], slot[1]) for slot in ordered]


def expiries_due(entries: Sequence[Mapping[str, Any]], now: datetime) -> list[LedgerEntry]:
    """The expiry entries owed by `now`: what is left of each credit past its expiry."""
    written = {e["id"] for e in entries}
    owed = []
    for credit, left in unspent(entries):
        expired = left > 0 and datetime.fromisoformat(credit["expires_at"]) <= now
        if expired and expiry_of(credit["id"]) not in written:
            owed.append(
                LedgerEntry(
                    id=expiry_of(credit["id"]),
                    kind=EntryKind.EXPIRE,
                    points=left,
                    at=credit["expires_at"],
                    of=credit["id"],
                )
            )
            if credit["event"]:  # the figures count expiries by what earned them
                owed[-1]["event"] = credit["event"]
    return owed


class Expiring(TypedDict):
    points: int
    on: str  # when they expire


def expiring(
    entries: Sequence[Mapping[str, Any]], now: datetime, within_days: int = EXPIRING_SOON_DAYS
) -> list[Expiring]:
    """Unspent points that expire within `within_days`, soonest first."""
    until = now + timedelta(days=within_days)
    return [
        Expiring(points=left, on=credit["expires_at"])
        for credit, left in unspent(entries)
        if left > 0 and now < datetime.fromisoformat(credit["expires_at"]) <= until
    ]


def account_of(entries: Iterable[Mapping[str, Any]]) -> Account:
    """The totals an account item must hold for these entries (a check, and a rebuild)."""
    by_id = {e["id"]: e for e in entries}
    balance = pending = debits = 0
    for entry in by_id.values():
        kind = entry["kind"]
        if kind == EntryKind.EARN:
            if entry["status"] == EarnStatus.PENDING:
                pending += entry["points"]
            else:
                balance += entry["points"]
        elif kind == EntryKind.CONFIRM:
            pending -= entry["points"]
            balance += entry["points"]
        elif kind == EntryKind.REVERSE:
            pending -= entry["points"]
        elif kind == EntryKind.ADJUST and "expires_at" in entry:
            balance += entry["points"]
        elif is_debit(entry):
            balance -= entry["points"]
            debits += entry["points"]
    return Account(balance=balance, pending=pending, debited=debits)


def adjustment(
    adjustment_id: str, points: int, reason: str, *, by: str, at: str, rules: Mapping[str, Any]
) -> LedgerEntry:
    """A staff member's correction: a plus is a credit that expires like earned points."""
    entry = LedgerEntry(
        id=f"adjust:{adjustment_id}",
        kind=EntryKind.ADJUST,
        points=abs(points),
        at=at,
        by=by,
        reason=reason,
    )
    if points > 0:
        entry["expires_at"] = expiry_moment(at, rules)
    return entry


# Entries of one moment in the order they can happen: points arrive before they are spent.
_KIND_ORDER = {
    EntryKind.EARN: 0,
    EntryKind.CONFIRM: 1,
    EntryKind.REVERSE: 1,
    EntryKind.ADJUST: 2,
    EntryKind.REDEEM: 3,
    EntryKind.EXPIRE: 4,
}


def history_order(entry: Mapping[str, Any]) -> tuple[str, int, str]:
    """The ledger's order, oldest first (entries of one moment: credits before debits)."""
    return (entry["at"], _KIND_ORDER[EntryKind(entry["kind"])], entry["id"])


def signed(entry: Mapping[str, Any]) -> int:
    """What an entry did to the spendable balance (history shows this)."""
    kind = entry["kind"]
    if kind == EntryKind.EARN:
        return entry["points"] if entry["status"] == EarnStatus.CONFIRMED else 0
    if kind == EntryKind.CONFIRM or (kind == EntryKind.ADJUST and "expires_at" in entry):
        return int(entry["points"])
    if kind == EntryKind.REVERSE:
        return 0
    return -int(entry["points"])


def voucher_code(redemption_id: str, secret: str) -> str:
    """A voucher's code: short enough to read out at the desk, unguessable (a hash of a random
    secret), in an alphabet without look-alikes."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    digest = hashlib.sha256(f"{redemption_id}|{secret}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    code = "".join(chars)
    return f"{code[:5]}-{code[5:]}"


# --- rewards and vouchers ---


class VoucherStatus(StrEnum):
    ISSUED = "issued"
    USED = "used"  # staff took it at the desk
    EXPIRED = "expired"  # read as such once past `expires_at`; never stored


NEXT_VOUCHER_STATUSES: dict[VoucherStatus, frozenset[VoucherStatus]] = {
    VoucherStatus.ISSUED: frozenset({VoucherStatus.USED}),
    VoucherStatus.USED: frozenset(),
    VoucherStatus.EXPIRED: frozenset(),
}


class Reward(TypedDict):
    id: str
    name: dict[str, str]  # by language
    kind: str  # check_up_package | discount | gift
    points: int
    voucher_valid_days: int
    active: bool
    stock: NotRequired[int]  # read from its counter, never written through the document
    updated_at: str
    version: NotRequired[int]


class Voucher(TypedDict):
    code: str
    redemption_id: str
    patient_id: str
    reward_id: str
    points: int
    status: str  # a VoucherStatus
    issued_at: str
    expires_at: str
    used_at: NotRequired[str]
    used_by: NotRequired[str]


def insufficient_points() -> Conflict:
    return Conflict("the balance does not cover this", code="insufficient_points")


def out_of_stock() -> Conflict:
    return Conflict("this reward is out of stock", code="out_of_stock")


def voucher_status(voucher: Mapping[str, Any], now: datetime) -> VoucherStatus:
    status = VoucherStatus(voucher["status"])
    if status == VoucherStatus.ISSUED and datetime.fromisoformat(voucher["expires_at"]) <= now:
        return VoucherStatus.EXPIRED
    return status
