"""Patient profiles: normalisation and the rules a profile must satisfy.

Shape is checked by the JSON Schemas first; these are the rules a schema cannot say: phone numbers
in E.164, real IANA zones, a guardian for minors, consent timestamps, and which fields a patient
may edit on their own record.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any

from chalicelib.domain.common import (
    Document,
    check_time_zone,
    merge_patch,
    parse_timestamp,
    to_e164,
    utc_iso,
)
from chalicelib.domain.errors import FieldError, Forbidden, Problems, invalid
from chalicelib.domain.tenants import department_names

ADULT_AGE = 18
# Under this age (the tenant's `minors.own_contact_from_age`) a minor's own phone, email and app
# are not used: every message goes to the guardian.
DEFAULT_OWN_CONTACT_FROM_AGE = 14
READ_ONLY_FIELDS = ("id", "created_at", "updated_at", "version", "deleted_at")

# What identifies a patient or says something of their health: stored encrypted (the store
# seals them under the tenant's key). What stays in the clear runs the journeys without
# naming anyone: language, time zone, channels, consent, departments, member class.
SEALED_FIELDS = (
    "name",
    "birth_date",
    "sex",
    "phone",
    "email",
    "guardian",
    "medical",
    "external_ids",
)

# What a patient may change about themselves from the app. Clinical and administrative fields
# (medical tags, departments, external ids, member class) are the hospital's.
PATIENT_EDITABLE_FIELDS = frozenset(
    {"name", "phone", "email", "language", "time_zone", "preferred_channels", "consent", "guardian"}
)


def age_on(birth_date: date, today: date) -> int:
    before_birthday = (today.month, today.day) < (birth_date.month, birth_date.day)
    return today.year - birth_date.year - int(before_birthday)


def _normalise(doc: Document, tenant: Document, now: datetime) -> Document:
    problems = Problems()
    country = tenant.get("country")
    if "phone" in doc:
        with problems.check():
            doc["phone"] = to_e164("$.phone", doc["phone"], country)
    guardian = doc.get("guardian")
    if guardian:
        _normalise_guardian(guardian, country, now, problems)
    if "email" in doc:
        doc["email"] = doc["email"].strip().lower()
    doc.setdefault("language", tenant["default_language"])
    doc.setdefault("time_zone", tenant["time_zone"])
    with problems.check():
        check_time_zone("$.time_zone", doc["time_zone"])
    _stamp_consent(doc.get("consent", {}), "$.consent", now, problems)
    if "birth_date" in doc:
        born = date.fromisoformat(doc["birth_date"])
        if born > now.date():
            problems.add("$.birth_date", "cannot be in the future")
        elif age_on(born, now.date()) < ADULT_AGE and not doc.get("guardian"):
            problems.add("$.guardian", "a patient under 18 needs a guardian or contact")
    for channel, contact in (("sms", "phone"), ("email", "email")):
        if channel in doc.get("preferred_channels", []) and contact not in doc:
            problems.add("$.preferred_channels", f"{channel} needs {contact}")
    known_departments = department_names(tenant)
    for index, department in enumerate(doc.get("departments", [])):
        if department not in known_departments:
            problems.add(f"$.departments[{index}]", "is not a department of this hospital")
    problems.raise_if_any()
    return doc


def _normalise_guardian(
    guardian: Document, country: str | None, now: datetime, problems: Problems
) -> None:
    if "phone" in guardian:
        with problems.check():
            guardian["phone"] = to_e164("$.guardian.phone", guardian["phone"], country)
    if "email" in guardian:
        guardian["email"] = guardian["email"].strip().lower()
    _stamp_consent(guardian.get("consent", {}), "$.guardian.consent", now, problems)
    for channel, contact in (("sms", "phone"), ("email", "email")):
        if channel in guardian.get("preferred_channels", []) and contact not in guardian:
            problems.add("$.guardian.preferred_channels", f"{channel} needs {contact}")


def _stamp_consent(consent: Document, path: str, now: datetime, problems: Problems) -> None:
    for channel, record in consent.items():
        at_path = f"{path}.{channel}.at"
        with problems.check():
            # Consent without a timestamp is recorded as given (or withdrawn) now.
            given_at = parse_timestamp(at_path, record["at"]) if "at" in record else now
            if given_at > now:
                raise invalid(at_path, "cannot be in the future")
            record["at"] = utc_iso(given_at)


def first_name(patient: Document) -> str:
    name: str = patient["name"].get("preferred") or patient["name"]["given"]
    return name


def own_contact_from_age(tenant: Document) -> int:
    age: int = tenant.get("minors", {}).get("own_contact_from_age", DEFAULT_OWN_CONTACT_FROM_AGE)
    return age


def addressee(
    patient: Document, tenant: Document, today: date, *, guardian_only: bool = False
) -> Document:
    """Who a message about `patient` goes to, as the channels read them. A minor (under 18 on
    `today`) is reached through their guardian: the guardian's name, phone, email, channels,
    consent and language, with `guardian_of` naming the child for the text, and the patient's
    id, zone and the rest kept (replies and records stay the child's). From the tenant's
    `own_contact_from_age` a minor with a phone or email of their own is reached directly.
    `guardian_only` (a campaign to guardians of minors): the guardian whatever the age."""
    guardian = patient.get("guardian")
    if "guardian_of" in patient or not guardian:
        return patient
    if not guardian_only:
        born = patient.get("birth_date")
        if born is None:
            return patient
        age = age_on(date.fromisoformat(born), today)
        if age >= ADULT_AGE:
            return patient
        has_own = bool(patient.get("phone") or patient.get("email"))
        if age >= own_contact_from_age(tenant) and has_own:
            return patient
    replaced = ("name", "phone", "email", "preferred_channels", "consent", "language")
    view: Document = {k: v for k, v in patient.items() if k not in replaced}
    view["name"] = {"given": guardian["name"]}
    view["language"] = guardian.get("language") or patient["language"]
    reachable = []
    for channel, field in (("sms", "phone"), ("email", "email")):
        if guardian.get(field):
            view[field] = guardian[field]
            reachable.append(channel)
    preferred = [c for c in guardian.get("preferred_channels", []) if c in reachable]
    view["preferred_channels"] = preferred or reachable
    view["consent"] = dict(guardian.get("consent") or {})
    view["guardian_of"] = first_name(patient)
    return view


def phone_problems(body: object, country: str | None) -> list[FieldError]:
    """The phone checks of `_normalise`, for a body that failed its schema (and so never reaches
    it): one 400 then names every failing field, also those only the tenant's country can judge.
    Takes whatever was sent: a field of the wrong type is the schema's to report."""
    problems = Problems()
    guardian = body.get("guardian") if isinstance(body, dict) else None
    for path, holder in (("$.phone", body), ("$.guardian.phone", guardian)):
        phone = holder.get("phone") if isinstance(holder, dict) else None
        if isinstance(phone, str):
            with problems.check():
                to_e164(path, phone, country)
    return problems.details


def new_patient(
    body: Document, tenant: Document, patient_id: str, now: datetime, now_iso: str
) -> Document:
    doc: Document = {**body, "id": patient_id, "created_at": now_iso, "updated_at": now_iso}
    doc.setdefault("departments", [])
    return _normalise(doc, tenant, now)


def check_patch_allowed(patch: Document, by_patient: bool) -> None:
    for key in READ_ONLY_FIELDS:
        if key in patch:
            raise invalid(f"$.{key}", "is read-only")
    if by_patient:
        for key in patch:
            if key not in PATIENT_EDITABLE_FIELDS:
                raise Forbidden(f"$.{key} is kept by the hospital; ask the front desk to change it")


def patched_patient(
    current: Document,
    patch: Document,
    tenant: Document,
    now: datetime,
    now_iso: str,
    *,
    by_patient: bool,
) -> Document:
    check_patch_allowed(patch, by_patient)
    patch = copy.deepcopy(patch)
    for consent in (patch.get("consent") or {}).values():
        # A consent change is a new event: unless told otherwise, it happened now, and the time
        # of an earlier grant must not stay on a withdrawal.
        if consent is not None:
            consent.setdefault("at", now_iso)
    doc = merge_patch(current, patch)
    doc["updated_at"] = now_iso
    return _normalise(doc, tenant, now)


def mrn_of(doc: Document) -> str | None:
    ids: dict[str, Any] = doc.get("external_ids", {})
    mrn = ids.get("mrn")
    return str(mrn) if mrn else None
