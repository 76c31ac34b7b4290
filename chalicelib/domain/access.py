"""Who may do what. Pure rules over a verified principal; no I/O.

Tenant and patient scope come only from verified token claims. Another tenant's or another
patient's record is reported as not found, so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chalicelib.domain.common import is_valid_id
from chalicelib.domain.errors import Forbidden, NotFound


class Role(StrEnum):
    PATIENT = "patient"
    STAFF = "staff"
    ADMIN = "admin"
    OPERATOR = "operator"
    # Signed up in the app but not yet linked to a patient record: no group, no tenant. Allowed
    # only on the routes that name it (redeeming a link code).
    UNLINKED = "unlinked"


# When a user is in several groups, the strongest one applies.
ROLE_PRECEDENCE = (Role.OPERATOR, Role.ADMIN, Role.STAFF, Role.PATIENT)
CLINIC_ROLES = frozenset({Role.STAFF, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    tenant_id: str | None = None
    patient_id: str | None = None
    username: str = ""  # the user pool's name for the account (`cognito:username`)
    issued_at: int = 0  # the token's `iat`, epoch seconds: compared with revocation markers
    # A patient's SMS reply acted on: the word they wrote (`C`, `确认`), for the figures.
    reply_keyword: str | None = None

    @property
    def account(self) -> str:
        return self.username or self.subject


def require_role(principal: Principal, allowed: frozenset[Role] | set[Role]) -> None:
    if principal.role not in allowed:
        raise Forbidden(f"role {principal.role} may not do this")


def tenant_of(principal: Principal) -> str:
    """The tenant a clinic or patient principal acts in."""
    if principal.tenant_id is None:
        raise Forbidden("this action needs a tenant-scoped token")
    return principal.tenant_id


def check_tenant_visible(principal: Principal, tenant_id: str) -> None:
    """Operators see every tenant; a clinic user only its own, and others look absent."""
    if not is_valid_id(tenant_id):
        raise NotFound("tenant not found")
    if principal.role is Role.OPERATOR:
        return
    if principal.tenant_id != tenant_id:
        raise NotFound("tenant not found")


def check_patient_visible(principal: Principal, patient_id: str) -> None:
    """A patient token reaches only that patient's own records. An id that cannot exist is
    simply not found (and never reaches a key)."""
    if not is_valid_id(patient_id):
        raise NotFound("patient not found")
    if principal.role is Role.PATIENT and principal.patient_id != patient_id:
        raise NotFound("patient not found")
