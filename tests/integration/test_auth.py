"""Every way a token can be wrong gets 401; a role without the right gets 403."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local.keys import LocalKeys, ensure_keys
from tests.conftest import Api, TenantCtx, payload


def _mint(keys: LocalKeys, **kwargs: Any) -> str:
    from chalicelib.settings import get_settings

    settings = get_settings()
    params: dict[str, Any] = {
        "issuer": settings.jwt_issuer,
        "audience": settings.jwt_audience,
        "role": "staff",
        "tenant_id": "t-x",
    }
    params.update(kwargs)
    return keys.mint(**params)


def assert_401(response: Any) -> None:
    assert response.status_code == 401, response.body
    assert payload(response)["error"]["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_missing_token(api: Api) -> None:
    assert_401(api.call("GET", "/patients"))


@pytest.mark.parametrize("header", ["Bearer", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer x"])
def test_malformed_header_or_token(api: Api, header: str) -> None:
    assert_401(api.call("GET", "/patients", headers={"Authorization": header}))


def test_expired_token(runtime: Any, api: Api) -> None:
    assert_401(api.call("GET", "/patients", _mint(runtime.keys, lifetime_seconds=-120)))


def test_token_signed_by_another_key_with_a_known_kid(
    runtime: Any, api: Api, tmp_path: Path
) -> None:
    other = ensure_keys(tmp_path)
    forged = LocalKeys(other.private_key_path, other.jwks_path, kid=runtime.keys.kid)
    assert_401(api.call("GET", "/patients", _mint(forged)))


def test_token_with_an_unknown_kid(runtime: Any, api: Api, tmp_path: Path) -> None:
    assert_401(api.call("GET", "/patients", _mint(ensure_keys(tmp_path))))


@pytest.mark.parametrize("claim", ["issuer", "audience"])
def test_wrong_issuer_or_audience(runtime: Any, api: Api, claim: str) -> None:
    assert_401(api.call("GET", "/patients", _mint(runtime.keys, **{claim: "https://x"})))


def test_access_token_is_not_an_id_token(runtime: Any, api: Api) -> None:
    token = _mint(runtime.keys, extra={"token_use": "access"})
    assert_401(api.call("GET", "/patients", token))


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
