"""Patient use cases: who may do what is decided here from the principal, rules come from
`domain.patients`, storage from the repository."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable, Sequence

from chalicelib import clock
from chalicelib.domain import patients as rules
from chalicelib.domain.access import (
    CLINIC_ROLES,
    Principal,
    Role,
    check_patient_visible,
    require_role,
    tenant_of,
)
from chalicelib.domain.appointments import ACTIVE
from chalicelib.domain.common import Document, is_valid_id, to_e164
from chalicelib.domain.errors import Conflict, FieldError, NotFound, invalid
from chalicelib.domain.opt_outs import ContactOptOut, email_state, sms_state
from chalicelib.domain.referrals import Referral
from chalicelib.observability import count, run_hooks
from chalicelib.schemas import validate
from chalicelib.services.tenants import TenantService
from chalicelib.services.versions import check_expected_version
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.contacts import ContactRepository
from chalicelib.store.patients import ListingPosition, PatientRepository

LISTING_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z#[a-z0-9-]{2,40}")
PAGE_DEFAULT = 50
PAGE_MAX = 200


def new_patient_id() -> str:
    return "p-" + secrets.token_hex(8)


def encode_cursor(position: ListingPosition) -> str:
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> ListingPosition:
    not_ours = invalid("cursor", "is not a cursor this API returned")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        sort_key, patient_id = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise not_ours from exc
    # Both parts become key attributes: only what this API itself writes there is accepted.
    if not (
        isinstance(sort_key, str)
        and isinstance(patient_id, str)
        and is_valid_id(patient_id)
        and LISTING_KEY.fullmatch(sort_key)
        and sort_key.endswith(f"#{patient_id}")
    ):
        raise not_ours
    return sort_key, patient_id


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return PAGE_DEFAULT
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= PAGE_MAX:
        raise invalid("limit", f"must be a whole number from 1 to {PAGE_MAX}")
    return int(raw)


class PatientService:
    def __init__(
        self,
        repository: PatientRepository,
        tenants: TenantService,
        appointments: AppointmentRepository,
        contacts: ContactRepository,
        # Told of each profile change as {"before", "after"} (recalls by condition tag).
        on_changed: Sequence[Callable[[str, Document], None]] = (),
        # Refuses (or flags) a member's read outside their departments: break-glass.
        check_access: Callable[[Principal, Document], None] | None = None,
        # The referral a registration's `referral_code` brings (ReferralService), or a 400.
        referral_of: Callable[[Document, str | None, Document], Referral | None] | None = None,
    ) -> None:
        self._referral_of = referral_of
        self._check_access = check_access
        self._on_changed = on_changed
        self._patients = repository
        self._tenants = tenants
        self._appointments = appointments
        self._contacts = contacts

    def create(self, principal: Principal, body: Document) -> Document:
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        now = clock.now()
        fields = {k: v for k, v in body.items() if k != "referral_code"}
        doc = rules.new_patient(fields, tenant, new_patient_id(), now, clock.iso(now))
        referral = None
        if self._referral_of is not None:  # the referral code is never part of the profile
            referral = self._referral_of(tenant, body.get("referral_code"), doc)
        created = self._patients.create(tenant["id"], doc, referral)
        count("PatientRegistered")
        run_hooks(self._on_changed, tenant["id"], {"before": None, "after": created})
        return self._shown(tenant["id"], created)

    def field_problems(self, principal: Principal, body: object) -> list[FieldError]:
        """What the domain would also refuse in a body its schema already refused."""
        tenant = self._tenants.require(tenant_of(principal))
        return rules.phone_problems(body, tenant.get("country"))

    def get(self, principal: Principal, patient_id: str) -> Document:
        """The record as staff and the patient read it: with its contacts' opt-outs."""
        return self._shown(tenant_of(principal), self.require(principal, patient_id))

    def require(self, principal: Principal, patient_id: str) -> Document:
        """The stored record, or 404 for what the caller cannot see."""
        require_role(principal, CLINIC_ROLES | {Role.PATIENT})
        check_patient_visible(principal, patient_id)
        patient = self._patients.get(tenant_of(principal), patient_id)
        if patient is None:
            raise NotFound("patient not found")
        if self._check_access is not None:
            self._check_access(principal, patient)
        return patient

    def update(
        self, principal: Principal, patient_id: str, patch: Document, if_match: str | None
    ) -> Document:
        current = self.require(principal, patient_id)
        check_expected_version(current, if_match)
        tenant = self._tenants.require(tenant_of(principal))
        now = clock.now()
        changed = rules.patched_patient(
            current, patch, tenant, now, clock.iso(now), by_patient=principal.role is Role.PATIENT
        )
        # The patch was valid as a patch; the record it makes must be a valid record too (a
        # removed required field, say).
        validate("patient", changed)
        saved = self._patients.replace(tenant["id"], current, changed)
        run_hooks(self._on_changed, tenant["id"], {"before": current, "after": saved})
        return self._shown(tenant["id"], saved)

    def _shown(self, tenant_id: str, patient: Document) -> Document:
        """A STOP belongs to the number, not to the record (a reply arrives before we know
        whose it is), so the record shows each of its contacts' state as read now: one Query
        per phone, one read per address."""
        opt_outs: list[ContactOptOut] = []
        guardian = patient.get("guardian") or {}
        for whose, contact in (("patient", patient), ("guardian", guardian)):
            if contact.get("phone"):
                records = self._contacts.sms_opt_records(contact["phone"], tenant_id)
                opt_outs.append(sms_state(contact["phone"], whose, records))
            if contact.get("email"):
                suppression = self._contacts.suppression(contact["email"])
                opt_outs.append(email_state(contact["email"], whose, suppression))
        return {**patient, "opt_outs": opt_outs}

    def delete(self, principal: Principal, patient_id: str, if_match: str | None) -> None:
        """Soft delete: the record leaves every list and lookup but is kept for the audit trail."""
        require_role(principal, CLINIC_ROLES)
        current = self.require(principal, patient_id)
        if if_match is not None:
            check_expected_version(current, if_match)
        if any(
            a["status"] in ACTIVE
            for a in self._appointments.for_patient(
                tenant_of(principal), patient_id, after=clock.iso(clock.now())
            )
        ):
            # Their places would stay taken and their journeys would fall silent.
            raise Conflict(
                "cancel the patient's booked appointments first", code="patient_has_appointments"
            )
        deleted = {**current, "deleted_at": clock.iso(clock.now())}
        self._patients.replace(tenant_of(principal), current, deleted)
        count("PatientDeleted")

    def search(self, principal: Principal, body: Document) -> list[Document]:
        """The patients with this phone number (several may share one), or the one with this
        medical record number (the body's schema checked the rest)."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        if ("phone" in body) == ("mrn" in body):
            raise invalid("phone", "give either a phone or an mrn")
        if "mrn" in body:
            found = self._patients.find_by_mrn(tenant_id, body["mrn"])
            return [found] if found else []
        tenant = self._tenants.require(tenant_id)
        e164 = to_e164("phone", body["phone"], tenant.get("country"))
        return self._patients.find_by_phone(tenant_id, e164, body.get("limit", PAGE_DEFAULT))

    def list(
        self,
        principal: Principal,
        *,
        limit: str | None,
        cursor: str | None,
    ) -> tuple[list[Document], str | None]:
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        page = parse_limit(limit)
        after = decode_cursor(cursor) if cursor else None
        docs, position = self._patients.page(tenant_id, page, after)
        return docs, encode_cursor(position) if position else None
