"""Segment use cases: list a tenant's segments and a segment's patients; flag a patient high-risk.

Membership itself is kept by `PatientRepository` on every profile write (see
`domain.segments`); reading a segment is a Query on its entries plus a BatchGet of the profiles.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import segments as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, require_role, tenant_of
from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict, invalid
from chalicelib.observability import count
from chalicelib.schemas import validate
from chalicelib.services.patients import parse_limit
from chalicelib.services.tenants import TenantService
from chalicelib.store.patients import PatientRepository
from chalicelib.store.segments import SegmentRepository

RISK_FLAG_ATTEMPTS = 3


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    not_ours = invalid("cursor", "is not a cursor this API returned")
    try:
        sort_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error) as exc:
        raise not_ours from exc
    # It becomes a key attribute: only what this service itself writes there is accepted.
    if not rules.is_entry_sort_key(sort_key):
        raise not_ours
    return sort_key


def tenant_today(tenant: Document) -> date:
    """Ages are counted on the tenant's calendar."""
    return clock.now().astimezone(ZoneInfo(tenant["time_zone"])).date()


class SegmentService:
    def __init__(
        self, repository: SegmentRepository, patients: PatientRepository, tenants: TenantService
    ) -> None:
        self._segments = repository
        self._patients = patients
        self._tenants = tenants

    def definitions(self, principal: Principal) -> list[Document]:
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        return rules.definitions(tenant, self._segments.member_classes(tenant["id"]))

    def check(self, tenant: Document, segment: str) -> str:
        return rules.check_segment(segment, tenant)

    def patients(
        self, principal: Principal, segment: str, *, limit: str | None, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        rules.check_segment(segment, tenant)
        page = parse_limit(limit)
        after = decode_cursor(cursor) if cursor else None
        ids, next_after = self.page(tenant, segment, page, after)
        docs = self._segments.profiles(tenant["id"], ids)
        return docs, encode_cursor(next_after) if next_after else None

    def page(
        self, tenant: Document, segment: str, limit: int, after: str | None
    ) -> tuple[list[str], str | None]:
        """One page of a (checked) segment's patient ids, and the position to continue from."""
        query = rules.query_for(segment, tenant_today(tenant))
        return self._segments.members(tenant["id"], query, limit, after)

    def count(self, tenant: Document, segment: str) -> int:
        """How many patients a (checked) segment has today."""
        return self._segments.count(tenant["id"], rules.query_for(segment, tenant_today(tenant)))

    def flag_high_risk(self, tenant_id: str, patient_id: str, reason: str) -> Document | None:
        """Add the risk flag `reason` (a tag such as `urgent-answer`) to the patient, which puts
        them in the `high-risk` segment. For callers outside the API (an urgent questionnaire
        answer, say): no principal; retried on a concurrent change. None if no such patient."""
        tenant = self._tenants.require(tenant_id)
        for _ in range(RISK_FLAG_ATTEMPTS):
            current = self._patients.get(tenant_id, patient_id)
            if current is None:
                return None
            medical = dict(current.get("medical") or {})
            flags = list(medical.get("risk_flags") or [])
            if reason in flags:
                return current
            medical["risk_flags"] = [*flags, reason]
            changed = {**current, "medical": medical, "updated_at": clock.iso(clock.now())}
            validate("patient", changed)
            try:
                updated = self._patients.replace(tenant["id"], current, changed)
            except Conflict:
                continue
            count("PatientFlaggedHighRisk")
            return updated
        raise Conflict("the patient kept changing; retry", code="concurrent_change")
