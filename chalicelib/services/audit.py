"""The audit trail's use cases: write one chained entry per request or task that touched patient
data, answer who looked at a record (admins), what one member looked at (admins), who looked at
my record (the patient), verify a day's chain, and let a member read outside their departments
only with a stated reason (break-glass), which alerts the hospital's privacy topic."""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from chalicelib import clock
from chalicelib.adapters.failures import retried
from chalicelib.domain import audit as rules
from chalicelib.domain.access import Principal, Role, require_role, tenant_of
from chalicelib.domain.audit import AccessLogNames, Activity, AuditEntry, ChainVerification
from chalicelib.domain.common import Document, is_valid_id
from chalicelib.domain.errors import DependencyUnavailable, Forbidden, invalid
from chalicelib.observability import count, logger
from chalicelib.services.keyring import Keyring
from chalicelib.services.tenants import TenantService
from chalicelib.settings import get_settings
from chalicelib.store.audit import AuditRepository, ChainMoved
from chalicelib.store.staff import StaffRepository

APPEND_ATTEMPTS = 12  # writers racing for a day's head; each retry reads the head again
PAGE_DEFAULT, PAGE_MAX = 50, 200
REMEMBERED_MAX = 50_000
RETENTION_CACHE_SECONDS = 60
HEADS_MAX = 10_000
# A throttled audit call is tried again briefly here; beyond that the caller's own retry takes
# over (a task's Retry state; a read's 503 with Retry-After), rather than a long wait in-line.
AUDIT_CALL_ATTEMPTS = 3
APPEND_CALL_ATTEMPTS_PERSISTENT = 8
# A pointer's sort key: `<at>#<day>#<shard>#<seq>`.
_PLACE = r"\d{4}-\d\d-\d\dT[0-9:.]+Z#\d{4}-\d\d-\d\d#\d#\d{10}"
SUBJECT_CURSOR = re.compile(_PLACE)
ACTOR_CURSOR = re.compile(r"\d{4}-\d\d-\d\d#\d/\d{10}/" + _PLACE)

Publish = Callable[[str, str, str], None]  # topic ARN, subject, message


def privacy_topic_arn(tenant_id: str) -> str:
    """The hospital stack's privacy topic (infra/hospital.yaml), beside the platform's topics."""
    settings = get_settings()
    prefix = settings.staff_topic_arn.rsplit(":", 1)[0]
    return f"{prefix}:careloop-{settings.stage}-{tenant_id}-privacy"


def _pseudonymised(record_id: str, named: dict[str, str]) -> str:
    """`record_id` with each patient id in it replaced by that patient's pseudonym."""
    for pseudonym, patient_id in named.items():
        record_id = record_id.replace(patient_id, pseudonym)
    return record_id


def _limit(raw: str | None) -> int:
    if raw is None:
        return PAGE_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
        raise invalid("limit", f"must be a whole number from 1 to {PAGE_MAX}")
    return int(raw)


def _cursor(raw: str | None, shape: re.Pattern[str]) -> str | None:
    """The key a page starts after, from the opaque (URL-safe) cursor the last page gave; only
    the shape this service writes is accepted, and the tenant is added by the store."""
    if raw is None:
        return None
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (ValueError, binascii.Error) as exc:
        raise invalid("cursor", "is not a cursor this list gave") from exc
    if not shape.fullmatch(key):
        raise invalid("cursor", "is not a cursor this list gave")
    return key


def _paged(page: tuple[list[Document], str | None]) -> tuple[list[Document], str | None]:
    items, next_key = page
    cursor = base64.urlsafe_b64encode(next_key.encode()).decode().rstrip("=") if next_key else None
    return items, cursor


class AuditService:
    def __init__(
        self,
        repository: AuditRepository,
        keyring: Keyring,
        tenants: TenantService,
        staff: StaffRepository,
        publish: Publish,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._entries = repository
        self._keyring = keyring
        self._tenants = tenants
        self._staff = staff
        self._publish = publish
        self._sleep = sleep
        self._remembered: set[tuple[str, str]] = set()
        self._retention: dict[str, tuple[float, int]] = {}
        self._heads: dict[tuple[str, str, int], tuple[int, str]] = {}
        self._chain_locks = [threading.Lock() for _ in range(rules.CHAIN_SHARDS)]

    # -- writing -----------------------------------------------------------------------------

    def pseudonym(self, tenant_id: str, patient_id: str) -> str:
        return rules.pseudonym(self._keyring.keys_for(tenant_id).pseudonym, patient_id)

    def record(
        self,
        tenant_id: str,
        activity: Activity,
        patients: set[str],
        *,
        found: set[str] | None = None,
        persistent: bool = False,
    ) -> AuditEntry:
        """Append one entry to the tenant's chain of today, naming the patients by pseudonym.
        Only the patients `found` (read or written: they exist; default all) are made findable
        by their pseudonym: an id that was only asked for, or a patient just erased, never is.
        `persistent`: a change that already committed, whose entry nobody could write again
        later, so throttled calls are tried longer here.
        Races for the chain's head are settled by reading it again (the put is conditional)."""
        named = {self.pseudonym(tenant_id, p): p for p in patients}
        existing = patients if found is None else found & patients
        self._remember(tenant_id, {s: p for s, p in named.items() if p in existing})
        activity = Activity(
            actor=activity.actor,
            action=activity.action,
            subjects=tuple(sorted(named)),
            # A patient is named by pseudonym only (in subjects), never by id: not as a record,
            # nor inside another record's id (a campaign delivery's key carries it).
            records=tuple(
                {"type": r["type"], "id": _pseudonymised(r["id"], named)}
                for r in activity.records
                if r["type"] != "patient"
            ),
            fields=activity.fields,
            outcome=activity.outcome,
            source=activity.source,
            break_glass=activity.break_glass,
            reason=activity.reason,
        )
        retention = self._retention_years(tenant_id)
        for attempt in range(APPEND_ATTEMPTS):
            attempts = APPEND_CALL_ATTEMPTS_PERSISTENT if persistent else AUDIT_CALL_ATTEMPTS
            entry = self._append_at_head(tenant_id, activity, retention, attempts)
            if entry is None:
                self._sleep(random.uniform(0, min(0.01 * 2**attempt, 0.2)))  # noqa: S311 - jitter
                continue
            count("AuditEntryWritten")
            return entry
        count("AuditChainContended")
        raise DependencyUnavailable("the audit trail is busy; try again", retry_after_seconds=1)

    @staticmethod
    def _summary(entry: AuditEntry) -> dict[str, object]:
        """What a patient's pointer to the entry shows (their record's audit, their log)."""
        return {
            "at": entry["at"],
            "day": entry["day"],
            "shard": entry["shard"],
            "seq": entry["seq"],
            "actor": entry["actor"],
            "action": entry["action"],
            "fields": entry["fields"],
            "outcome": entry["outcome"],
            **({"break_glass": entry["break_glass"]} if "break_glass" in entry else {}),
            **({"reason": entry["reason"]} if "reason" in entry else {}),
        }

    def _append_at_head(
        self, tenant_id: str, activity: Activity, retention: int, attempts: int
    ) -> AuditEntry | None:
        """The entry, appended after the head of one of the day's chains as last seen; None
        when another writer took that place first (the next try looks again). A chain another
        thread of this container is appending to is passed over, and the head this container
        wrote last is remembered, so its own writes neither race nor read before writing."""
        at = clock.now()
        day = at.astimezone(UTC).date().isoformat()
        start = random.randrange(rules.CHAIN_SHARDS)  # noqa: S311 - spreading, not secrecy
        for offset in range(rules.CHAIN_SHARDS):
            shard = (start + offset) % rules.CHAIN_SHARDS
            lock = self._chain_locks[shard]
            if lock.acquire(blocking=offset == rules.CHAIN_SHARDS - 1):
                try:
                    return self._append_to(tenant_id, day, shard, at, activity, retention, attempts)
                finally:
                    lock.release()
        return None

    def _append_to(
        self,
        tenant_id: str,
        day: str,
        shard: int,
        at: datetime,
        activity: Activity,
        retention: int,
        attempts: int,
    ) -> AuditEntry | None:
        chain = (tenant_id, day, shard)
        head = self._heads.get(chain)
        if head is None:
            head = retried(lambda: self._entries.head(tenant_id, day, shard), attempts)
        seq, prev_hash = head
        entry = rules.chained(
            activity,
            tenant_id=tenant_id,
            at=at,
            shard=shard,
            seq=seq + 1,
            prev_hash=prev_hash,
            retention_years=retention,
        )
        try:
            retried(lambda: self._entries.append(entry, self._summary(entry)), attempts)
        except ChainMoved:
            self._heads.pop(chain, None)  # another container wrote: read the head next time
            return None
        if len(self._heads) > HEADS_MAX:
            self._heads.clear()
        self._heads[chain] = (entry["seq"], entry["hash"])
        return entry

    def forget(self, tenant_id: str, patient_id: str) -> None:
        """The patient was erased: their pseudonym's link to their id goes (from here the trail
        names no one), and this container stops thinking it is stored."""
        pseudonym = self.pseudonym(tenant_id, patient_id)
        retried(lambda: self._entries.forget_pseudonym(tenant_id, pseudonym))
        self._remembered.discard((tenant_id, pseudonym))

    def _remember(self, tenant_id: str, named: dict[str, str]) -> None:
        """Keep each pseudonym's patient findable (once per container and patient)."""
        if len(self._remembered) > REMEMBERED_MAX:  # a bound on a long-lived container's memory
            self._remembered.clear()
        for pseudonym in sorted(named):
            if (tenant_id, pseudonym) not in self._remembered:
                self._remember_one(tenant_id, pseudonym, named[pseudonym])
                self._remembered.add((tenant_id, pseudonym))

    def _remember_one(self, tenant_id: str, pseudonym: str, patient_id: str) -> None:
        retried(
            lambda: self._entries.remember_pseudonym(tenant_id, pseudonym, patient_id),
            AUDIT_CALL_ATTEMPTS,
        )

    def _retention_years(self, tenant_id: str) -> int:
        """The tenant's retention, read at most once a minute per container (a changed
        retention applies to the entries written after it, not to a day's chain half-way)."""
        now = time.monotonic()
        cached = self._retention.get(tenant_id)
        if cached is not None and now - cached[0] < RETENTION_CACHE_SECONDS:
            return cached[1]
        tenant = self._tenants.require(tenant_id)
        years: int = (tenant.get("privacy") or {}).get(
            "audit_retention_years", rules.DEFAULT_RETENTION_YEARS
        )
        self._retention[tenant_id] = (now, years)
        return years

    # -- break-glass -------------------------------------------------------------------------

    def check_departments(self, principal: Principal, patient: Document) -> None:
        """A staff member whose hospital assigned them departments reads a patient of other
        departments only with a stated reason; the read is flagged and the privacy topic told."""
        if principal.role is not Role.STAFF:
            return
        tenant_id = tenant_of(principal)
        member = self._staff.get(tenant_id, principal.subject)
        member_departments = member["departments"] if member else []
        if not rules.outside_departments(member_departments, patient.get("departments", [])):
            return
        from chalicelib.audit_trail import glass_broken, stated_reason

        reason = (stated_reason() or "").strip()
        if len(reason) < rules.MIN_BREAK_GLASS_REASON:
            raise Forbidden(
                "this patient is outside your departments: state why you need the record in "
                f"the {rules.BREAK_GLASS_HEADER} header (at least "
                f"{rules.MIN_BREAK_GLASS_REASON} characters)",
                code="break_glass_required",
            )
        glass_broken(reason[:500])
        count("BreakGlassAccess")
        message = {
            "event": "break_glass",
            "tenant_id": tenant_id,
            "staff_id": principal.subject,
            "patient": self.pseudonym(tenant_id, patient["id"]),
            "at": clock.iso(clock.now()),
        }
        try:
            self._publish(
                privacy_topic_arn(tenant_id),
                "CareLoop: a record was read outside its departments",
                json.dumps(message),
            )
        except Exception:  # the read is flagged in the trail either way; the alert is extra
            logger.exception("privacy alert not sent", extra={"tenant_id": tenant_id})
            count("PrivacyAlertFailed")

    # -- reading -----------------------------------------------------------------------------

    def for_patient(
        self, principal: Principal, patient_id: str, limit: str | None, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        require_role(principal, {Role.ADMIN})
        tenant_id = tenant_of(principal)
        if not is_valid_id(patient_id):
            raise invalid("patient_id", "is not an id")
        # Kept after the record is erased: the pseudonym is computed, not looked up.
        return _paged(
            self._entries.for_subject(
                tenant_id,
                self.pseudonym(tenant_id, patient_id),
                _limit(limit),
                _cursor(cursor, SUBJECT_CURSOR),
            )
        )

    def for_actor(
        self, principal: Principal, actor: str | None, limit: str | None, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        require_role(principal, {Role.ADMIN})
        if not actor or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", actor):
            raise invalid("actor", "give the staff member's id")
        tenant_id = tenant_of(principal)
        entries, next_key = self._entries.for_actor(
            tenant_id, actor, _limit(limit), _cursor(cursor, ACTOR_CURSOR)
        )
        # Which patients they were, for those not erased since.
        known = self._entries.patients_of(
            tenant_id, {s for entry in entries for s in entry["subjects"]}
        )
        for entry in entries:
            entry["patients"] = sorted(known[s] for s in entry["subjects"] if s in known)
        return _paged((entries, next_key))

    def access_log(
        self, principal: Principal, limit: str | None, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        """Who accessed my record: staff as the hospital chooses to name them."""
        require_role(principal, {Role.PATIENT})
        tenant_id = tenant_of(principal)
        assert principal.patient_id is not None  # a patient token always names its patient
        pointers, next_cursor = _paged(
            self._entries.for_subject(
                tenant_id,
                self.pseudonym(tenant_id, principal.patient_id),
                _limit(limit),
                _cursor(cursor, SUBJECT_CURSOR),
            )
        )
        tenant = self._tenants.require(tenant_id)
        names = AccessLogNames(
            (tenant.get("privacy") or {}).get("access_log_names", AccessLogNames.ROLE)
        )
        staff_names: dict[str, str] = {}
        if names is AccessLogNames.NAME:
            staff_names = {member["id"]: member["name"] for member in self._staff.all(tenant_id)}
        lines = [
            rules.access_log_line(pointer, names, staff_names)  # type: ignore[arg-type]
            for pointer in pointers
        ]
        return lines, next_cursor

    def verify(self, principal: Principal, day: str | None) -> ChainVerification:
        require_role(principal, {Role.ADMIN})
        tenant_id = tenant_of(principal)
        return self.verify_day(tenant_id, _parse_day(day))

    def verify_day(self, tenant_id: str, day: str) -> ChainVerification:
        return rules.verification(tenant_id, day, self._entries.day(tenant_id, day))


def _parse_day(raw: str | None) -> str:
    if raw is None:
        raise invalid("day", "give the day to verify (YYYY-MM-DD, UTC)")
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError as exc:
        raise invalid("day", "must be a date, YYYY-MM-DD") from exc
