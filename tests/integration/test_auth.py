"""Every way a token can be wrong gets 401; a role without the right gets 403."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, TenantCtx, payload

# The emulated pool signs with moto's bundled key under this kid, as Cognito signs with its own.
POOL_KID = "dummy"


def _pool_key() -> Any:
    """The key the emulated user pool signs its ID tokens with: forging with it is how a test
    makes a token the pool would have signed, but with one claim wrong."""
    import json

    import jwt
    from moto.utilities.utils import load_resource

    return jwt.algorithms.RSAAlgorithm.from_jwk(
        json.dumps(load_resource("cognitoidp/resources/jwks-private.json"))
    )


def _other_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _mint(key: Any = None, kid: str = POOL_KID, **claims: Any) -> str:
    """An ID token shaped as the pool's (a staff member of t-x), with `claims` changed."""
    import time

    import jwt

    from chalicelib.settings import get_settings

    settings = get_settings()
    now = int(time.time())
    payload_claims: dict[str, Any] = {
        "sub": "00000000-0000-0000-0000-000000000001",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "token_use": "id",
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
        "cognito:groups": ["staff"],
        "custom:tenant_id": "t-x",
    }
    payload_claims.update(claims)
    return jwt.encode(payload_claims, key or _pool_key(), algorithm="RS256", headers={"kid": kid})


def assert_401(response: Any) -> None:
    assert response.status_code == 401, response.body
    assert payload(response)["error"]["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_missing_token(api: Api) -> None:
    assert_401(api.call("GET", "/patients"))


@pytest.mark.parametrize("header", ["Bearer", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer x"])
def test_malformed_header_or_token(api: Api, header: str) -> None:
    assert_401(api.call("GET", "/patients", headers={"Authorization": header}))


def test_a_token_minted_like_the_pools_is_accepted(runtime: Any, api: Api) -> None:
    """The forgeries below differ from an accepted token in one claim or the key only."""
    response = api.call("GET", "/patients", _mint())
    assert response.status_code != 401, response.body


def test_expired_token(runtime: Any, api: Api) -> None:
    import time

    expired = int(time.time()) - 120
    assert_401(api.call("GET", "/patients", _mint(exp=expired, iat=expired - 3600)))


def test_token_signed_by_another_key_with_a_known_kid(runtime: Any, api: Api) -> None:
    assert_401(api.call("GET", "/patients", _mint(_other_key())))


def test_token_with_an_unknown_kid(runtime: Any, api: Api) -> None:
    assert_401(api.call("GET", "/patients", _mint(_other_key(), kid="not-the-pools")))


@pytest.mark.parametrize("claim", ["iss", "aud"])
def test_wrong_issuer_or_audience(runtime: Any, api: Api, claim: str) -> None:
    assert_401(api.call("GET", "/patients", _mint(**{claim: "https://x"})))


def test_access_token_is_not_an_id_token(runtime: Any, api: Api) -> None:
    assert_401(api.call("GET", "/patients", _mint(token_use="access")))


def test_a_signed_in_users_token_carries_its_role_tenant_and_patient(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    """Through the emulated pool: the claims the API reads, as Cognito puts them."""
    import jwt

    from chalicelib.settings import get_settings

    token = runtime.token("patient", tenant.id, "p-0123456789abcdef")
    claims = jwt.decode(token, options={"verify_signature": False})
    settings = get_settings()
    assert claims["iss"] == settings.jwt_issuer == runtime.pool.issuer
    assert claims["aud"] == settings.jwt_audience == runtime.pool.client_id
    assert claims["iss"].startswith("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_")
    assert claims["cognito:groups"] == ["patient"]
    assert (claims["custom:tenant_id"], claims["custom:patient_id"]) == (
        tenant.id,
        "p-0123456789abcdef",
    )
    assert claims["token_use"] == "id"


def test_the_app_client_cannot_write_the_tenant_or_the_patient(runtime: Any) -> None:
    """The template's app client reads custom:tenant_id and custom:patient_id, never writes
    them: a user cannot name their own hospital or record."""
    cognito = runtime.client("cognito-idp")
    described = cognito.describe_user_pool_client(
        UserPoolId=runtime.pool.pool_id, ClientId=runtime.pool.client_id
    )["UserPoolClient"]
    assert {"custom:tenant_id", "custom:patient_id"} <= set(described["ReadAttributes"])
    assert not {"custom:tenant_id", "custom:patient_id"} & set(described["WriteAttributes"])
    assert described["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    groups = cognito.list_groups(UserPoolId=runtime.pool.pool_id)["Groups"]
    assert sorted(g["GroupName"] for g in groups) == ["admin", "operator", "patient", "staff"]


def test_unsigned_token_is_refused(runtime: Any, api: Api) -> None:
    import jwt

    token = jwt.encode({"sub": "x", "cognito:groups": ["operator"]}, key=None, algorithm="none")  # type: ignore[arg-type]
    assert_401(api.call("GET", "/tenants/anything", token))


def test_role_without_the_right_gets_403(runtime: Any, api: Api, tenant: TenantCtx) -> None:
    staff_creating_tenant = api.call("POST", "/tenants", tenant.staff, {"id": "zz"})
    assert staff_creating_tenant.status_code == 403
    patient = runtime.token("patient", tenant.id, "p-1")
    assert api.call("GET", "/patients", patient).status_code == 403
    assert payload(api.call("GET", "/patients", patient))["error"]["code"] == "forbidden"


def test_auth_is_checked_before_the_body(api: Api) -> None:
    response = api.call("POST", "/patients", body=b"{not json", headers={})
    assert response.status_code == 401
