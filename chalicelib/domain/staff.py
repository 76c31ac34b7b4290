"""A hospital's staff accounts: who they are in CareLoop (role, departments, the departments
they lead) beside their sign-in account in the user pool, and whether they may still act."""

from __future__ import annotations

from enum import StrEnum
from typing import NotRequired, TypedDict

from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict, Problems, invalid


class StaffRole(StrEnum):
    """The user-pool group a staff account is in (the token's `cognito:groups`)."""

    STAFF = "staff"
    ADMIN = "admin"


class StaffStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


# Where a staff account may go next. A disabled account may be enabled again: its sign-in
# account is re-enabled, and tokens issued before the disabling stay refused (see Revocation).
NEXT_STATUSES: dict[StaffStatus, frozenset[StaffStatus]] = {
    StaffStatus.ACTIVE: frozenset({StaffStatus.DISABLED}),
    StaffStatus.DISABLED: frozenset({StaffStatus.ACTIVE}),
}

# A revocation marker says "refuse this account's tokens issued before `not_before`" (epoch
# seconds, the clock the identity provider stamps `iat` with). Disabling an account sets it;
# enabling keeps it, so only tokens issued afterwards work.
# How long an API container trusts its last look at an account's revocation marker: a disabled
# account's tokens stop working within this (plus a request's own time), not when they expire.
REVOCATION_CACHE_SECONDS = 30


class StaffRecord(TypedDict):
    id: str  # the user pool's `sub`
    email: str
    name: str
    role: StaffRole
    departments: list[str]
    leads: list[str]  # departments this member leads: where overdue work escalates
    status: StaffStatus
    created_at: str
    updated_at: str
    created_by: str
    disabled_at: NotRequired[str]
    version: NotRequired[int]


def normalised_email(address: str) -> str:
    """The form an address is stored and compared in (the pool's usernames ignore case)."""
    return address.strip().lower()


def _check_departments(doc: Document, known_departments: set[str]) -> None:
    problems = Problems()
    for index, department in enumerate(doc["departments"]):
        if department not in known_departments:
            problems.add(f"$.departments[{index}]", f"the tenant has no department {department}")
    for index, department in enumerate(doc["leads"]):
        if department not in doc["departments"]:
            problems.add(f"$.leads[{index}]", "a member leads only departments they belong to")
    problems.raise_if_any()


def new_staff(
    body: Document, *, subject: str, known_departments: set[str], by: str, now_iso: str
) -> StaffRecord:
    """A staff record from a schema-valid invitation, for the account the pool created."""
    record = StaffRecord(
        id=subject,
        email=normalised_email(body["email"]),
        name=body["name"],
        role=StaffRole(body.get("role", StaffRole.STAFF)),
        departments=sorted(set(body.get("departments", []))),
        leads=sorted(set(body.get("leads", []))),
        status=StaffStatus.ACTIVE,
        created_at=now_iso,
        updated_at=now_iso,
        created_by=by,
    )
    _check_departments(dict(record), known_departments)
    return record


PATCHABLE = frozenset({"name", "role", "departments", "leads", "status"})


def patched_staff(
    current: StaffRecord, patch: Document, *, known_departments: set[str], by: str, now_iso: str
) -> StaffRecord:
    """The record after a change an admin asked for. An admin cannot disable or demote their own
    account (a hospital must not lock itself out by one click)."""
    for key in set(patch) - PATCHABLE:
        raise invalid(f"$.{key}", "is read-only")
    changed: Document = {**current, **patch, "updated_at": now_iso}
    changed["role"] = StaffRole(changed["role"])
    changed["status"] = StaffStatus(changed["status"])
    changed["departments"] = sorted(set(changed["departments"]))
    changed["leads"] = sorted(set(changed["leads"]))
    if changed["status"] != current["status"]:
        if changed["status"] not in NEXT_STATUSES[current["status"]]:
            raise Conflict(
                f"a staff account that is {current['status']} cannot become {changed['status']}",
                code="invalid_status_change",
            )
        if changed["status"] is StaffStatus.DISABLED:
            changed["disabled_at"] = now_iso
        else:
            changed.pop("disabled_at", None)
    if by == current["id"] and (
        changed["status"] is StaffStatus.DISABLED or changed["role"] is not StaffRole.ADMIN
    ):
        raise Conflict("an admin cannot disable or demote their own account", code="own_account")
    _check_departments(changed, known_departments)
    return StaffRecord(**changed)  # type: ignore[typeddict-item,no-any-return]
