"""Claims → principal, and the Authorization header's form. No keys or I/O needed."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.auth import _bearer, principal_from_claims
from chalicelib.domain.access import Role
from chalicelib.domain.errors import Unauthenticated


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "u1", "cognito:groups": ["staff"], "custom:tenant_id": "t1", **extra}


def test_staff_claims() -> None:
    principal = principal_from_claims(claims())
    assert (principal.role, principal.tenant_id, principal.patient_id) == (Role.STAFF, "t1", None)


def test_strongest_group_wins() -> None:
    assert (
        principal_from_claims(claims(**{"cognito:groups": ["staff", "admin"]})).role is Role.ADMIN
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"cognito:groups": []},
        {"cognito:groups": ["nurse"]},
        {"custom:tenant_id": ""},
        {"cognito:groups": ["patient"]},  # a patient token must name its patient
        {"custom:tenant_id": "T#other"},  # never a key fragment
        {"cognito:groups": ["patient"], "custom:patient_id": ["p-1"]},
    ],
)
def test_incomplete_claims_are_unauthenticated(bad: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated):
        principal_from_claims(claims(**bad))


def test_operator_needs_no_tenant() -> None:
    principal = principal_from_claims({"sub": "o", "cognito:groups": ["operator"]})
    assert principal.role is Role.OPERATOR and principal.tenant_id is None


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   "])
def test_authorization_header_must_be_bearer(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        _bearer(header)


def test_bearer_is_case_insensitive() -> None:
    assert _bearer("bearer abc.def.ghi") == "abc.def.ghi"
