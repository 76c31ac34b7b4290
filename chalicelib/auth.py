"""Verifies Cognito-shaped ID tokens and turns their claims into a `Principal`.

The same code runs on AWS (keys from the user pool's JWKS) and locally (keys from the file the
local runtime writes). Claims used: `sub`, `custom:tenant_id`, `custom:patient_id`,
`cognito:groups` (patient | staff | admin | operator), `token_use` = id, `iss`, `aud`, `exp`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from chalicelib.domain.access import ROLE_PRECEDENCE, Principal, Role
from chalicelib.domain.common import is_valid_id
from chalicelib.domain.errors import DependencyUnavailable, Unauthenticated
from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:
    from jwt import PyJWKClient

ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 30


@cache
def _jwks_client(url: str) -> PyJWKClient:
    from jwt import PyJWKClient

    # Keys are cached for the container's life; an unknown kid refetches once (key rotation).
    return PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)


def _bearer(header: str | None) -> str:
    if not header:
        raise Unauthenticated("send Authorization: Bearer <token>")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def _role(claims: dict[str, Any]) -> Role:
    groups = claims.get("cognito:groups") or []
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        raise Unauthenticated("cognito:groups must be a list")
    for role in ROLE_PRECEDENCE:
        if role.value in groups:
            return role
    if not groups and not claims.get("custom:tenant_id"):
        # A patient who signed up in the app and has not redeemed a link code yet.
        return Role.UNLINKED
    raise Unauthenticated("the token names no CareLoop role")


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    role = _role(claims)
    tenant_id = claims.get("custom:tenant_id") or None
    patient_id = claims.get("custom:patient_id") or None
    if role not in (Role.OPERATOR, Role.UNLINKED) and not tenant_id:
        raise Unauthenticated("the token has no tenant")
    for claimed in (tenant_id, patient_id):
        if claimed is not None and not (isinstance(claimed, str) and is_valid_id(claimed)):
            raise Unauthenticated("the token names a malformed tenant or patient id")
    if role is Role.PATIENT and not patient_id:
        raise Unauthenticated("a patient token must name its patient")
    if role is Role.UNLINKED and patient_id:
        raise Unauthenticated("the token names a patient but no tenant")
    issued_at = claims.get("iat", 0)
    return Principal(
        subject=str(claims["sub"]),
        role=role,
        tenant_id=tenant_id,
        patient_id=patient_id,
        username=str(claims.get("cognito:username") or ""),
        issued_at=issued_at if isinstance(issued_at, int) else 0,
    )


def verify_token(authorization: str | None, settings: Settings | None = None) -> Principal:
    import jwt

    settings = settings or get_settings()
    token = _bearer(authorization)
    try:
        key = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token).key
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "iss", "aud", "token_use"]},
        )
    except jwt.PyJWKClientConnectionError as exc:
        raise DependencyUnavailable("the identity provider's signing keys are unreachable") from exc
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("the token has expired") from exc
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise Unauthenticated("the token is not valid") from exc
    if claims.get("token_use") != "id":
        raise Unauthenticated("send the ID token, not an access token")
    return principal_from_claims(claims)
