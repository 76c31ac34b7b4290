"""Staff accounts: an admin invites, lists, changes and disables them; every clinic request is
checked against the account's revocation marker.

A change is committed to the staff record first and then made in the user pool; a failure in
between answers 503, and the same request sent again (its If-Match is the new version) makes
the pool match the record: every change re-applies the record's group and status.
"""

from __future__ import annotations

import time

from chalicelib import clock
from chalicelib.adapters.accounts import AccountExists, Accounts
from chalicelib.domain import staff as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id
from chalicelib.domain.errors import Conflict, NotFound, Unauthenticated
from chalicelib.domain.staff import StaffRecord, StaffRole, StaffStatus
from chalicelib.observability import count
from chalicelib.services.tenants import TenantService
from chalicelib.services.versions import check_expected_version
from chalicelib.store.staff import StaffRepository

MAX_CACHED_MARKERS = 10_000


class StaffService:
    def __init__(
        self, repository: StaffRepository, tenants: TenantService, accounts: Accounts
    ) -> None:
        self._staff = repository
        self._tenants = tenants
        self._accounts = accounts
        # (tenant, account) → (revoked before, when looked at, monotonic seconds)
        self._markers: dict[tuple[str, str], tuple[int, float]] = {}

    def _departments(self, tenant_id: str) -> set[str]:
        return {d["id"] for d in self._tenants.require(tenant_id).get("departments", [])}

    def invite(self, principal: Principal, body: Document) -> StaffRecord:
        require_role(principal, {Role.ADMIN})
        return self.add(tenant_of(principal), body, by=principal.subject)

    def add(self, tenant_id: str, body: Document, *, by: str) -> StaffRecord:
        """A new staff member's sign-in account and record (also the first admin a hospital's
        stack creates). An account whose record an earlier attempt did not write is adopted."""
        known = self._departments(tenant_id)
        now_iso = clock.iso(clock.now())
        rules.new_staff(body, subject="-", known_departments=known, by=by, now_iso=now_iso)
        email = rules.normalised_email(body["email"])
        role = StaffRole(body.get("role", StaffRole.STAFF))
        try:
            account = self._accounts.invite(email, body["name"], tenant_id, role)
        except AccountExists as exc:
            found = self._accounts.find(email)
            if found is None or found.tenant_id != tenant_id or found.groups - set(StaffRole):
                raise Conflict(
                    "an account with this email exists for someone else", code="email_taken"
                ) from exc
            if self._staff.get(tenant_id, found.subject) is not None:
                raise Conflict("this email is a staff member already", code="staff_exists") from exc
            self._accounts.add_to_group(found.username, role)
            account = found
        record = rules.new_staff(
            body, subject=account.subject, known_departments=known, by=by, now_iso=now_iso
        )
        try:
            saved = self._staff.save(tenant_id, record, expected_version=None)
        except Conflict as exc:
            raise Conflict("this email is a staff member already", code="staff_exists") from exc
        count("StaffInvited")
        return saved

    def list(self, principal: Principal) -> list[StaffRecord]:
        require_role(principal, CLINIC_ROLES)
        return sorted(self._staff.all(tenant_of(principal)), key=lambda r: r["created_at"])

    def get(self, principal: Principal, staff_id: str) -> StaffRecord:
        require_role(principal, CLINIC_ROLES)
        record = self._staff.get(tenant_of(principal), staff_id) if is_valid_id(staff_id) else None
        if record is None:
            raise NotFound("staff member not found")
        return record

    def update(
        self, principal: Principal, staff_id: str, patch: Document, if_match: str | None
    ) -> StaffRecord:
        require_role(principal, {Role.ADMIN})
        tenant_id = tenant_of(principal)
        current = self.get(principal, staff_id)
        check_expected_version(dict(current), if_match)
        changed = rules.patched_staff(
            current,
            patch,
            known_departments=self._departments(tenant_id),
            by=principal.subject,
            now_iso=clock.iso(clock.now()),
        )
        disabling = changed["status"] == StaffStatus.DISABLED != current["status"]
        # Compared with the tokens' `iat`, which the identity provider stamps in real time.
        revoke_before = int(time.time()) + 1 if disabling else None
        saved = self._staff.save(
            tenant_id, changed, expected_version=current["version"], revoke_before=revoke_before
        )
        if revoke_before is not None:
            self._markers[(tenant_id, staff_id)] = (revoke_before, time.monotonic())
            count("StaffDisabled")
        self._apply_to_account(saved)
        return saved

    def _apply_to_account(self, record: StaffRecord) -> None:
        # Cognito's username for an account of an email-username pool is its `sub`.
        username = record["id"]
        self._accounts.add_to_group(username, record["role"])
        for role in StaffRole:
            if role != record["role"]:
                self._accounts.remove_from_group(username, role)
        if record["status"] == StaffStatus.DISABLED:
            self._accounts.disable(username)
        else:
            self._accounts.enable(username)

    def check_not_revoked(self, principal: Principal) -> None:
        """Refuse a clinic token issued before its account was disabled. The marker is read at
        most every REVOCATION_CACHE_SECONDS per account and container."""
        if principal.role not in CLINIC_ROLES or principal.tenant_id is None:
            return
        key = (principal.tenant_id, principal.subject)
        cached = self._markers.get(key)
        now = time.monotonic()
        if cached is None or now - cached[1] > rules.REVOCATION_CACHE_SECONDS:
            if len(self._markers) >= MAX_CACHED_MARKERS:
                self._markers.clear()
            cached = (self._staff.revoked_before(*key), now)
            self._markers[key] = cached
        if principal.issued_at < cached[0]:
            raise Unauthenticated("this account was disabled; sign in again once it is enabled")
