"""Loyalty points as part of the journeys: what earns them (read from the table's stream), the
patient's balance and history, redemptions for vouchers, staff adjustments, the rewards
catalogue, and the published rules.

Points are earned from the records the journeys write, delivered at least once by the stream:

- a care record newly linking a booking to a recall (recall_converted) or to a care plan's
  re-check (follow_up_attended) earns the visit's points, pending until the visit;
- the appointment becoming fulfilled confirms them, a no-show or a cancellation reverses them;
- an aftercare check-in newly answered in its window earns check_in_on_time.

The visit and its link reach the stream on different items, in either order: the earn looks at
the appointment after writing, and the settlement looks for the earn, so whichever comes last
settles it. Every entry is keyed by its cause, so a redelivered record changes nothing.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, NotRequired, TypedDict
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import loyalty as ledger_rules
from chalicelib.domain.access import (
    CLINIC_ROLES,
    Principal,
    Role,
    require_role,
    tenant_of,
)
from chalicelib.domain.aftercare import StepKind, StepStatus
from chalicelib.domain.analytics import follow_up_links
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, Retryable, invalid
from chalicelib.domain.loyalty import EarnEvent, EarnStatus, LedgerEntry, LoyaltyRules
from chalicelib.observability import count
from chalicelib.services.deliveries import patient_fields
from chalicelib.services.owed_messages import OwedMessage, OwedMessages
from chalicelib.services.patients import PatientService
from chalicelib.settings import get_settings
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.loyalty import CapReached, Ledger, LedgerRepository, Raced
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository

PATIENTS = frozenset({Role.PATIENT})
REFERRAL_ID = re.compile(r"referral:[^/:]+")
EVERYONE = CLINIC_ROLES | PATIENTS
SETTLES = {
    "fulfilled": EarnStatus.CONFIRMED,
    "noshow": EarnStatus.REVERSED,
    "cancelled": EarnStatus.REVERSED,
}
ATTENDED = frozenset({"arrived", "fulfilled"})
FOLLOW_UP_EVENTS = {"recall": EarnEvent.RECALL_CONVERTED, "recheck": EarnEvent.FOLLOW_UP_ATTENDED}
HISTORY_LIMIT = 200
ANNOUNCEMENT = "points_earned"  # the message (and template) that tells a patient of points
EXPIRY_LOOKBACK_DAYS = 7  # the daily sweep also expires what a missed run left
_ANY_ZONE = ZoneInfo("UTC")  # follow-up links need a zone only for due days, unused here


class ChangedItem(TypedDict):
    """A stream record as the loyalty reactions read it."""

    pk: str
    sk: str
    old: Document | None
    new: Document | None


class PointsView(TypedDict):
    enabled: bool
    balance: int
    pending: int
    expiring_soon: list[ledger_rules.Expiring]
    rules_version: int


class HistoryLine(TypedDict):
    id: str
    kind: str
    points: int  # what it did to the spendable balance (a pending earn: 0)
    at: str
    event: NotRequired[str]
    status: NotRequired[str]
    pending_points: NotRequired[int]
    reason: NotRequired[str]
    by: NotRequired[str]
    voucher_code: NotRequired[str]
    reward_id: NotRequired[str]
    expires_at: NotRequired[str]
    appointment_id: NotRequired[str]


class LoyaltyService:
    def __init__(
        self,
        ledger: LedgerRepository,
        patients: PatientRepository,
        patient_service: PatientService,
        appointments: AppointmentRepository,
        tenants: TenantRepository,
        referrer_of: Callable[[str, str], str | None] | None = None,
        owed: OwedMessages | None = None,
    ) -> None:
        self._ledger = ledger
        self._patients = patients
        self._patient_service = patient_service
        self._appointments = appointments
        self._tenants = tenants
        self._referrer_of = referrer_of
        self._owed = owed
        if owed is not None:
            owed.compose(ANNOUNCEMENT, self._announcement)

    # --- rules ---

    def current_rules(self, tenant_id: str) -> LoyaltyRules:
        return self._ledger.rules(tenant_id) or ledger_rules.default_rules()

    def rules(self, principal: Principal, version: int | None = None) -> LoyaltyRules:
        require_role(principal, EVERYONE)
        found = (
            self.current_rules(tenant_of(principal))
            if version is None
            else self._ledger.rules(tenant_of(principal), version)
        )
        if found is None:
            raise NotFound(f"no version {version} of the loyalty rules")
        if principal.role == Role.PATIENT:
            return {**found, "published_by": ""}  # a staff account's id is not the public's
        return found

    def publish(self, principal: Principal, body: Document) -> LoyaltyRules:
        require_role(principal, {Role.ADMIN})
        tenant_id = tenant_of(principal)
        current = self.current_rules(tenant_id)
        expected = body.get("version")
        if expected is not None and expected != current["version"]:
            raise Conflict(
                f"version {current['version']} is published now; read it and retry",
                code="version_conflict",
            )
        published = ledger_rules.published_rules(
            body, current, by=principal.subject, now=utc_iso(clock.now())
        )
        self._ledger.publish_rules(tenant_id, published)
        count("LoyaltyRulesPublished")
        return published

    # --- earning, from the stream ---

    def on_changes(self, records: Iterable[ChangedItem]) -> int:
        """React to changed journey records; how many entries were written."""
        written = 0
        for record in records:
            parts = record["pk"].split("#")
            if len(parts) != 4 or parts[0] != "T":
                continue
            tenant_id = parts[1]
            if parts[2] == "A" and record["sk"] == "APPT":
                written += self._appointment_changed(tenant_id, record)
            elif parts[2] == "P" and record["sk"].startswith("CARE#"):
                written += self._care_changed(tenant_id, parts[3], record)
        if written:
            count("LoyaltyEntriesWritten", written)
        return written

    def _appointment_changed(self, tenant_id: str, record: ChangedItem) -> int:
        new = (record["new"] or {}).get("doc") or {}
        old = (record["old"] or {}).get("doc") or {}
        status = new.get("status")
        if status not in SETTLES or old.get("status") == status or not new.get("patient_id"):
            return 0
        written = self._settle_visit(tenant_id, new["patient_id"], new["id"], SETTLES[status])
        if status == "fulfilled":
            written += self._referral_visit(tenant_id, new)
        return written

    def _care_changed(self, tenant_id: str, patient_id: str, record: ChangedItem) -> int:
        kind = "recall" if record["sk"].startswith("CARE#RC#") else "aftercare"
        old = (record["old"] or {}).get("doc") or {}
        new = (record["new"] or {}).get("doc") or {}
        written = 0
        linked_before = {link["appointment_id"] for link in follow_up_links(kind, old, _ANY_ZONE)}
        for link in follow_up_links(kind, new, _ANY_ZONE):
            if link["appointment_id"] not in linked_before:
                event = FOLLOW_UP_EVENTS[link["kind"]]
                written += self._visit_earned(tenant_id, patient_id, link["appointment_id"], event)
        if kind == "aftercare":
            answered_before = _answered_in_time(old)
            for step_id in _answered_in_time(new) - answered_before:
                written += self._earn(
                    tenant_id,
                    patient_id,
                    ledger_rules.check_in_cause(new["id"], step_id),
                    EarnEvent.CHECK_IN_ON_TIME,
                    pending=False,
                )
        return written

    def _visit_earned(
        self, tenant_id: str, patient_id: str, appointment_id: str, event: EarnEvent
    ) -> int:
        """A follow-up booking earns its points, pending until the visit (or confirmed or not
        earned, if the visit's outcome came first)."""
        # Consistent reads: the visit's own record may be on another shard of the stream, and a
        # stale "booked" read after it was settled would leave these points pending for ever.
        appointment = self._appointments.get(tenant_id, appointment_id, consistent=True)
        if appointment is None or SETTLES.get(appointment["status"]) == EarnStatus.REVERSED:
            return 0
        if appointment["patient_id"] != patient_id:
            return 0  # the link names another patient's booking: nothing for either
        cause = ledger_rules.visit_cause(appointment_id)
        attended = appointment["status"] == "fulfilled"
        written = self._earn(
            tenant_id,
            patient_id,
            cause,
            event,
            pending=not attended,
            appointment_id=appointment_id,
        )
        if written and not attended:
            # The visit's own record may have passed the stream while this was written.
            again = self._appointments.get(tenant_id, appointment_id, consistent=True)
            if again is not None and again["status"] in SETTLES:
                written += self._settle_visit(
                    tenant_id, patient_id, appointment_id, SETTLES[again["status"]]
                )
        return written

    def _settle_visit(
        self, tenant_id: str, patient_id: str, appointment_id: str, becomes: EarnStatus
    ) -> int:
        cause = ledger_rules.visit_cause(appointment_id)
        earned = self._ledger.entry(tenant_id, patient_id, cause)
        if earned is None or earned["status"] != EarnStatus.PENDING:
            return 0  # no follow-up points for this visit (yet: the earn settles itself)
        current = self.current_rules(tenant_id)
        settlement = ledger_rules.settlement(
            earned, becomes, at=utc_iso(clock.now()), rules=current
        )
        for _ in _attempts():
            try:
                if self._ledger.settle(tenant_id, patient_id, earned, settlement):
                    count(f"LoyaltyPoints{settlement['kind'].capitalize()}")
                    if becomes == EarnStatus.CONFIRMED:
                        self._announce(tenant_id, patient_id, settlement, current)
                    return 1
                return 0
            except Raced:
                continue
        raise _still_racing()

    def _referral_visit(self, tenant_id: str, visit: Document) -> int:
        """A referred patient's first attended visit earns their referrer's points, once (a
        later visit earns nothing, even if the first came while referrals were off)."""
        if self._referrer_of is None:
            return 0
        patient_id = visit["patient_id"]
        referrer = self._referrer_of(tenant_id, patient_id)
        if referrer is None:
            return 0
        earlier = self._appointments.for_patient(
            tenant_id, patient_id, before=visit["start"], limit=500
        )
        if any(a["status"] in ATTENDED and a["id"] != visit["id"] for a in earlier):
            return 0
        return self._earn(
            tenant_id,
            referrer,
            ledger_rules.referral_cause(patient_id),
            EarnEvent.REFERRAL_FIRST_VISIT,
            pending=False,
            referred_patient_id=patient_id,
        )

    def _earn(
        self,
        tenant_id: str,
        patient_id: str,
        cause: str,
        event: EarnEvent,
        *,
        pending: bool,
        **about: str,
    ) -> int:
        """Write the earn once, under the rules as published now and within their caps."""
        current = self.current_rules(tenant_id)
        points = current["points"].get(event, 0)
        if points <= 0:
            return 0
        patient = self._patients.get(tenant_id, patient_id)
        if patient is None or not ledger_rules.takes_part(current, patient):
            return 0
        for _ in _attempts():
            ledger = self._ledger.ledger(tenant_id, patient_id)
            if cause in ledger.entries:
                return 0
            at = utc_iso(clock.now())
            limits = ledger_rules.cap_limits(current, event, at)
            allowed = ledger_rules.allowed_points(points, limits, ledger.caps)
            entry = ledger_rules.earn(
                cause,
                event,
                allowed,
                at=at,
                rules=current,
                pending=pending,
                capped=points - allowed,
                **about,
            )
            try:
                if self._ledger.earn(tenant_id, patient_id, entry, limits):
                    count("LoyaltyPointsEarned")
                    if not pending:
                        self._announce(tenant_id, patient_id, entry, current)
                    return 1
                return 0
            except (CapReached, Raced):
                continue
        raise _still_racing()

    def _announce(
        self, tenant_id: str, patient_id: str, credited: LedgerEntry, rules: LoyaltyRules
    ) -> None:
        """Tell the patient of points made spendable, if the hospital's rules say so: a message
        owed (consent, opt-outs and quiet hours apply; sent once, by its entry)."""
        if self._owed is None or credited["points"] <= 0:
            return
        if not rules.get("announce"):
            return
        self._owed.owe_and_try(
            tenant_id,
            patient_id,
            f"points-{credited['id']}",
            {"kind": ANNOUNCEMENT, "entry": credited["id"], "points": credited["points"]},
        )

    def _announcement(
        self, tenant: Document, patient: Document, owed: Document
    ) -> OwedMessage | None:
        if not self.current_rules(tenant["id"]).get("announce"):
            return None  # the hospital stopped announcing meanwhile
        fields = {
            **patient_fields(tenant, patient),
            "points": str(owed["points"]),
            "link": f"{get_settings().app_link_base}/points",
        }
        return OwedMessage(f"points#{owed['entry']}", fields, {})

    # --- expiry ---

    def _expired(self, tenant_id: str, patient_id: str) -> Ledger:
        """The ledger once every expiry owed by now is written (oldest first)."""
        now = clock.now()
        for _ in _attempts(100):
            ledger = self._ledger.ledger(tenant_id, patient_id)
            owed = ledger_rules.expiries_due(list(ledger.entries.values()), now)
            if not owed:
                return ledger
            try:
                if self._ledger.debit(
                    tenant_id, patient_id, owed[0], debited_was=ledger.account["debited"]
                ):
                    count("LoyaltyPointsExpired")
            except (Raced, Conflict):
                continue  # a debit came meanwhile: compute again from the new ledger
        raise _still_racing()

    def expiry_sweep(self) -> Document:
        """The daily schedule: in every tenant, the points that expired (in the last week, so
        that a missed run is made up) leave their patients' balances. Reading a balance expires
        them too; the sweep keeps the ledger and the figures current for those who do not."""
        now = clock.now()
        since = utc_iso(now - timedelta(days=EXPIRY_LOOKBACK_DAYS))
        patients = 0
        for tenant_id in self._tenants.all_ids():
            for patient_id in self._ledger.expiring_between(tenant_id, since, utc_iso(now)):
                self._expired(tenant_id, patient_id)
                patients += 1
        return {"patients": patients}

    # --- what a patient sees and does ---

    def my_points(self, principal: Principal) -> PointsView:
        require_role(principal, PATIENTS)
        tenant_id = tenant_of(principal)
        return self._view(tenant_id, self._expired(tenant_id, str(principal.patient_id)))

    def _view(self, tenant_id: str, ledger: Ledger) -> PointsView:
        current = self.current_rules(tenant_id)
        return PointsView(
            enabled=current["enabled"],
            balance=ledger.account["balance"],
            pending=ledger.account["pending"],
            expiring_soon=ledger_rules.expiring(list(ledger.entries.values()), clock.now()),
            rules_version=current["version"],
        )

    def my_history(self, principal: Principal) -> list[HistoryLine]:
        require_role(principal, PATIENTS)
        ledger = self._expired(tenant_of(principal), str(principal.patient_id))
        return _history(ledger, staff=False)

    def redeem(self, principal: Principal, body: Document) -> ledger_rules.Voucher:
        """Take a reward for points: the balance and the stock each move under their condition
        in one transaction with the voucher, so neither ever goes below zero."""
        require_role(principal, PATIENTS)
        tenant_id = tenant_of(principal)
        patient_id = str(principal.patient_id)
        current = self.current_rules(tenant_id)
        if not current["enabled"]:
            raise Forbidden("this hospital has no loyalty points", code="loyalty_off")
        reward = self._ledger.reward(tenant_id, body["reward_id"])
        if reward is None or not reward["active"]:
            raise NotFound("reward not found")
        now = clock.now()
        for _ in _attempts():
            redemption_id = "rd-" + secrets.token_hex(8)
            voucher = ledger_rules.Voucher(
                code=ledger_rules.voucher_code(redemption_id, secrets.token_hex(16)),
                redemption_id=redemption_id,
                patient_id=patient_id,
                reward_id=reward["id"],
                points=reward["points"],
                status=ledger_rules.VoucherStatus.ISSUED,
                issued_at=utc_iso(now),
                expires_at=utc_iso(now + timedelta(days=reward["voucher_valid_days"])),
            )
            entry = LedgerEntry(
                id=f"redeem:{redemption_id}",
                kind=ledger_rules.EntryKind.REDEEM,
                points=reward["points"],
                at=utc_iso(now),
                reward_id=reward["id"],
                voucher_code=voucher["code"],
            )
            self._expired(tenant_id, patient_id)  # expired points are not spent
            try:
                written = self._ledger.debit(
                    tenant_id, patient_id, entry, reward_id=reward["id"], voucher=voucher
                )
            except Raced:
                continue
            if not written:
                continue  # its id or voucher code was taken (vanishingly rare): new ones
            count("LoyaltyRedeemed")
            return voucher
        raise _still_racing()

    def my_vouchers(self, principal: Principal) -> list[ledger_rules.Voucher]:
        require_role(principal, PATIENTS)
        now = clock.now()
        found = self._ledger.vouchers_of(tenant_of(principal), str(principal.patient_id))
        return [{**v, "status": ledger_rules.voucher_status(v, now)} for v in found]

    # --- staff ---

    def patient_points(self, principal: Principal, patient_id: str) -> Document:
        require_role(principal, CLINIC_ROLES)
        patient = self._patient_service.require(principal, patient_id)
        tenant_id = tenant_of(principal)
        ledger = self._expired(tenant_id, patient["id"])  # one read serves both
        return {**self._view(tenant_id, ledger), "history": _history(ledger, staff=True)}

    def adjust(self, principal: Principal, patient_id: str, body: Document) -> HistoryLine:
        """A staff member's correction, kept in the ledger with who made it and why."""
        require_role(principal, CLINIC_ROLES)
        patient = self._patient_service.require(principal, patient_id)
        tenant_id = tenant_of(principal)
        if body["points"] == 0:
            raise invalid("$.points", "must not be 0")
        current = self.current_rules(tenant_id)
        for _ in _attempts():
            entry = ledger_rules.adjustment(
                "aj-" + secrets.token_hex(8),
                body["points"],
                body["reason"],
                by=principal.subject,
                at=utc_iso(clock.now()),
                rules=current,
            )
            try:
                if body["points"] > 0:
                    written = self._ledger.credit(tenant_id, patient["id"], entry)
                else:
                    self._expired(tenant_id, patient["id"])
                    written = self._ledger.debit(tenant_id, patient["id"], entry)
            except Raced:
                continue
            if not written:
                continue  # its id was taken (vanishingly rare): a new one
            count("LoyaltyAdjusted")
            return _line(entry, staff=True)
        raise _still_racing()

    def use_voucher(self, principal: Principal, code: str) -> ledger_rules.Voucher:
        """Staff take a voucher at the desk: once, and only before it expires."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        voucher = self._ledger.voucher(tenant_id, code.upper()) if len(code) < 20 else None
        if voucher is None:
            raise NotFound("voucher not found")
        now = clock.now()
        status = ledger_rules.voucher_status(voucher, now)
        usable = ledger_rules.VoucherStatus.USED in ledger_rules.NEXT_VOUCHER_STATUSES[status]
        if not usable or not self._ledger.use_voucher(
            tenant_id,
            voucher["code"],
            by=principal.subject,
            at=utc_iso(now),
            valid_after=utc_iso(now),
        ):
            again = self._ledger.voucher(tenant_id, voucher["code"]) or voucher
            raise Conflict(
                f"the voucher is {ledger_rules.voucher_status(again, now)}",
                code="voucher_not_usable",
            )
        count("LoyaltyVoucherUsed")
        return self._ledger.voucher(tenant_id, voucher["code"]) or voucher

    # --- rewards ---

    def rewards(self, principal: Principal) -> list[ledger_rules.Reward]:
        require_role(principal, EVERYONE)
        found = self._ledger.rewards(tenant_of(principal))
        if principal.role == Role.PATIENT:
            return [r for r in found if r["active"]]
        return found

    def put_reward(
        self, principal: Principal, reward_id: str, body: Document
    ) -> ledger_rules.Reward:
        require_role(principal, {Role.ADMIN})
        tenant_id = tenant_of(principal)
        current = self._ledger.reward(tenant_id, reward_id)
        reward = ledger_rules.Reward(
            id=reward_id,
            name=body["name"],
            kind=body["kind"],
            points=body["points"],
            voucher_valid_days=body.get("voucher_valid_days", 90),
            active=body.get("active", True),
            updated_at=utc_iso(clock.now()),
        )
        self._ledger.put_reward(tenant_id, reward, current["updated_at"] if current else None)
        return self._ledger.reward(tenant_id, reward_id) or reward

    def restock(self, principal: Principal, reward_id: str, body: Document) -> ledger_rules.Reward:
        require_role(principal, {Role.ADMIN})
        tenant_id = tenant_of(principal)
        if self._ledger.reward(tenant_id, reward_id) is None:
            raise NotFound("reward not found")
        self._ledger.restock(tenant_id, reward_id, body["quantity"])
        found = self._ledger.reward(tenant_id, reward_id)
        if found is None:
            raise NotFound("reward not found")
        return found


def _attempts(limit: int = ledger_rules.MAX_STORED_ATTEMPTS) -> Iterator[int]:
    """Attempts at a write that may lose a race (DynamoDB cancels one of two transactions on
    the same items): again at once, then after a short jittered pause."""
    for attempt in range(limit):
        if attempt:
            time.sleep(random.uniform(0, min(0.2, 0.01 * 2**attempt)))  # noqa: S311 - jitter
        yield attempt


def _still_racing() -> Retryable:
    return Retryable("the points changed at the same moment; try again")


def _answered_in_time(journey: Mapping[str, Any]) -> set[str]:
    return {
        step["id"]
        for step in journey.get("steps") or []
        if step.get("kind") == StepKind.CHECKIN and step.get("status") == StepStatus.ANSWERED
    }


def _history(ledger: Ledger, *, staff: bool) -> list[HistoryLine]:
    """The ledger newest first (its latest HISTORY_LIMIT entries)."""
    entries = sorted(ledger.entries.values(), key=ledger_rules.history_order, reverse=True)
    return [_line(entry, staff=staff) for entry in entries[:HISTORY_LIMIT]]


def _line(entry: Mapping[str, Any], *, staff: bool) -> HistoryLine:
    entry_id = entry["id"]
    if not staff:  # a referral's entries (its earn, its expiry) never show the friend's id
        entry_id = REFERRAL_ID.sub(
            lambda m: "referral:" + hashlib.sha256(m.group(0).encode()).hexdigest()[:12],
            entry_id,
        )
    line = HistoryLine(
        id=entry_id,
        kind=entry["kind"],
        points=ledger_rules.signed(entry),
        at=entry["at"],
    )
    for key in ("event", "status", "reason", "voucher_code", "reward_id", "expires_at"):
        if key in entry:
            line[key] = entry[key]
    if entry["kind"] == ledger_rules.EntryKind.EARN and entry.get("status") == EarnStatus.PENDING:
        line["pending_points"] = entry["points"]
    if staff:
        for key in ("by", "appointment_id"):
            if key in entry:
                line[key] = entry[key]  # type: ignore[literal-required]
    return line
