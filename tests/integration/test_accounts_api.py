"""Staff accounts and patients' app links, through the emulated user pool."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Api, TenantCtx, error_code, payload, unique

CODE = re.compile(r"\b([0-9A-Z]{5}-[0-9A-Z]{5})\b")


def _cognito(runtime: Any) -> Any:
    return runtime.client("cognito-idp")


def _invite(api: Api, tenant: TenantCtx, **body: Any) -> Any:
    body = {"email": f"{unique('nurse')}@renji.example", "name": "王芳", **body}
    return api.call("POST", "/staff", tenant.admin, body)


def _signed_in(runtime: Any, email: str) -> str:
    from local.identity import sign_in_invited

    return sign_in_invited(_cognito(runtime), runtime.pool, email)


def test_an_admin_invites_staff_who_sign_in_with_the_tenant_and_group(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    invited = _invite(api, tenant, departments=["cardiology"], leads=["cardiology"])
    assert invited.status_code == 201, invited.body
    member = payload(invited)
    assert member["role"] == "staff" and member["status"] == "active"
    assert member["leads"] == ["cardiology"] and invited.headers["ETag"] == '"1"'

    user = _cognito(runtime).admin_get_user(UserPoolId=runtime.pool.pool_id, Username=member["id"])
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["custom:tenant_id"] == tenant.id
    token = _signed_in(runtime, member["email"])
    listed = api.call("GET", "/staff", token)
    assert listed.status_code == 200
    assert member["id"] in [m["id"] for m in payload(listed)["items"]]
    # Staff read the list; only admins invite.
    assert _invite(api, TenantCtx(tenant.id, tenant.doc, "", token, token)).status_code == 403

    again = api.call("POST", "/staff", tenant.admin, {"email": member["email"], "name": "x"})
    assert again.status_code == 409 and error_code(again) == "staff_exists"


def test_an_invitation_names_only_the_tenants_departments(api: Api, tenant: TenantCtx) -> None:
    response = _invite(api, tenant, departments=["oncology"], leads=["cardiology"])
    assert response.status_code == 400
    paths = [d["path"] for d in payload(response)["error"]["details"]]
    assert paths == ["$.departments[0]", "$.leads[0]"]


def test_an_email_of_another_hospitals_account_is_taken(
    runtime: Any, api: Api, make_tenant: Any
) -> None:
    first, second = make_tenant(), make_tenant()
    email = f"{unique('dr')}@example.com"
    assert api.call("POST", "/staff", first.admin, {"email": email, "name": "A"}).status_code == 201
    taken = api.call("POST", "/staff", second.admin, {"email": email, "name": "A"})
    assert taken.status_code == 409 and error_code(taken) == "email_taken"


def test_an_account_created_before_its_record_failed_is_adopted(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    """An invitation whose record was not written (the call failed after the pool's account
    was made) is finished by sending it again."""
    from chalicelib.adapters.accounts import Accounts

    email = f"{unique('late')}@example.com"
    Accounts(pool_id=runtime.pool.pool_id).invite(email, "Late", tenant.id, "staff")
    finished = api.call("POST", "/staff", tenant.admin, {"email": email, "name": "Late"})
    assert finished.status_code == 201, finished.body


def test_a_disabled_member_is_refused_at_once_and_cannot_sign_in(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    member = payload(_invite(api, tenant))
    token = _signed_in(runtime, member["email"])
    assert api.call("GET", "/staff", token).status_code == 200  # the marker is cached now

    disabled = api.call(
        "PATCH",
        f"/staff/{member['id']}",
        tenant.admin,
        {"status": "disabled"},
        {"If-Match": '"1"'},
    )
    assert disabled.status_code == 200, disabled.body
    assert payload(disabled)["status"] == "disabled" and "disabled_at" in payload(disabled)
    refused = api.call("GET", "/staff", token)
    assert refused.status_code == 401 and "disabled" in payload(refused)["error"]["message"]
    user = _cognito(runtime).admin_get_user(UserPoolId=runtime.pool.pool_id, Username=member["id"])
    assert user["Enabled"] is False

    enabled = api.call(
        "PATCH", f"/staff/{member['id']}", tenant.admin, {"status": "active"}, {"If-Match": '"2"'}
    )
    assert enabled.status_code == 200
    assert api.call("GET", "/staff", token).status_code == 401  # issued before the disabling


def test_another_container_refuses_a_disabled_token_within_a_minute(
    runtime: Any, api: Api, tenant: TenantCtx, monkeypatch: Any
) -> None:
    """The marker is cached per container: one that looked before the disabling looks again
    after REVOCATION_CACHE_SECONDS."""
    import time

    from chalicelib.adapters.accounts import Accounts
    from chalicelib.domain.staff import REVOCATION_CACHE_SECONDS
    from chalicelib.services.registry import services
    from chalicelib.services.staff import StaffService
    from chalicelib.store.staff import StaffRepository

    member = payload(_invite(api, tenant))
    token = _signed_in(runtime, member["email"])
    other = StaffService(StaffRepository(), services().tenants, Accounts())
    from chalicelib.auth import verify_token

    principal = verify_token(f"Bearer {token}")
    other.check_not_revoked(principal)
    api.call(
        "PATCH", f"/staff/{member['id']}", tenant.admin, {"status": "disabled"}, {"If-Match": '"1"'}
    )
    other.check_not_revoked(principal)  # still the cached look
    later = time.monotonic() + REVOCATION_CACHE_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    try:
        other.check_not_revoked(principal)
        raise AssertionError("a disabled account's token was accepted after the cache lapsed")
    except Exception as refused:
        assert type(refused).__name__ == "Unauthenticated"
    assert REVOCATION_CACHE_SECONDS <= 60


def test_an_admin_cannot_disable_their_own_account(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    admin = payload(_invite(api, tenant, role="admin"))
    token = _signed_in(runtime, admin["email"])
    own = api.call(
        "PATCH", f"/staff/{admin['id']}", token, {"status": "disabled"}, {"If-Match": '"1"'}
    )
    assert own.status_code == 409 and error_code(own) == "own_account"


def test_a_role_change_moves_the_account_between_groups(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    member = payload(_invite(api, tenant))
    promoted = api.call(
        "PATCH", f"/staff/{member['id']}", tenant.admin, {"role": "admin"}, {"If-Match": '"1"'}
    )
    assert promoted.status_code == 200
    groups = _cognito(runtime).admin_list_groups_for_user(
        UserPoolId=runtime.pool.pool_id, Username=member["id"]
    )["Groups"]
    assert [g["GroupName"] for g in groups] == ["admin"]


# --- patients' app accounts -------------------------------------------------------------


def _app_user(runtime: Any) -> tuple[str, str]:
    from local.identity import sign_up

    return sign_up(_cognito(runtime), runtime.pool)


def _token(runtime: Any, email: str, password: str) -> str:
    from local.identity import password_sign_in

    return password_sign_in(_cognito(runtime), runtime.pool, email, password)


def _sent_code(runtime: Any, to: str) -> str:
    message = runtime.outbox.messages(to=to)[-1]
    found = CODE.search(message.body)
    assert found, message.body
    return found.group(1)


def _patient(api: Api, tenant: TenantCtx, phone: str | None = None) -> dict[str, Any]:
    import uuid

    from tests.conftest import patient_body

    body = patient_body(phone=phone or f"+86139{uuid.uuid4().int % 10**8:08d}")
    response = api.call("POST", "/patients", tenant.staff, body)
    assert response.status_code == 201, response.body
    return dict(payload(response))


def test_a_patient_links_their_app_account_with_the_code_staff_sent(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    patient = _patient(api, tenant)
    email, password = _app_user(runtime)
    unlinked = _token(runtime, email, password)
    # Signed in but not linked: only the link routes answer.
    assert api.call("GET", "/me/appointments", unlinked).status_code == 403
    assert payload(api.call("GET", "/me/links", unlinked))["items"] == []

    sent = api.call(
        "POST", f"/patients/{patient['id']}/link-invitations", tenant.staff, {"channel": "sms"}
    )
    assert sent.status_code == 201, sent.body
    assert payload(sent)["sent_to"].endswith(patient["phone"][-4:])
    code = _sent_code(runtime, patient["phone"])
    assert code not in sent.body.decode()

    linked = api.call("POST", "/me/link", unlinked, {"code": code.lower().replace("-", " ")})
    assert linked.status_code == 200, linked.body
    assert payload(linked)["patient_id"] == patient["id"] and payload(linked)["current"]

    # The app refreshes its tokens: the new one speaks for the patient.
    import jwt

    token = _token(runtime, email, password)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["custom:patient_id"] == patient["id"]
    assert claims["custom:tenant_id"] == tenant.id and claims["cognito:groups"] == ["patient"]
    assert api.call("GET", "/me/appointments", token).status_code == 200

    # Single use: another account cannot redeem it; the same account may again (a retry).
    other_email, other_password = _app_user(runtime)
    other = _token(runtime, other_email, other_password)
    reused = api.call("POST", "/me/link", other, {"code": code})
    assert reused.status_code == 400 and error_paths_of(reused) == ["$.code"]
    assert api.call("POST", "/me/link", unlinked, {"code": code}).status_code == 200


def error_paths_of(response: Any) -> list[str]:
    return [d["path"] for d in payload(response)["error"]["details"]]


def test_codes_are_stored_hashed_and_expire(runtime: Any, api: Api, tenant: TenantCtx) -> None:
    import hashlib
    from datetime import timedelta

    patient = _patient(api, tenant)
    api.call(
        "POST", f"/patients/{patient['id']}/link-invitations", tenant.staff, {"channel": "sms"}
    )
    code = _sent_code(runtime, patient["phone"]).replace("-", "")
    table = runtime.client("dynamodb")
    from chalicelib.settings import get_settings

    digest = hashlib.sha256(code.encode()).hexdigest()
    item = table.get_item(
        TableName=get_settings().table_name,
        Key={"PK": {"S": f"LINKCODE#{digest}"}, "SK": {"S": "CODE"}},
    )["Item"]
    assert code not in str(item)

    from chalicelib import clock
    from chalicelib.domain.errors import ValidationFailed
    from chalicelib.store.account_links import AccountLinkRepository

    late = clock.now() + timedelta(hours=73)
    try:
        AccountLinkRepository().redeem(digest, "someone", late, clock.iso(late))
        raise AssertionError("an expired code linked an account")
    except ValidationFailed as refused:
        assert refused.details[0].path == "$.code"


def test_wrong_codes_are_limited_per_account(runtime: Any, api: Api) -> None:
    email, password = _app_user(runtime)
    token = _token(runtime, email, password)
    answers = [
        api.call("POST", "/me/link", token, {"code": "00000-0000" + str(n)}).status_code
        for n in range(6)
    ]
    assert answers == [400] * 5 + [429]
    limited = api.call("POST", "/me/link", token, {"code": "ABCDE-FGHJK"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_a_patient_of_two_hospitals_links_both_and_chooses(
    runtime: Any, api: Api, make_tenant: Any
) -> None:
    first, second = make_tenant(), make_tenant(name="Second Hospital")
    phone = "+8613900007777"
    at_first, at_second = _patient(api, first, phone), _patient(api, second, phone)
    email, password = _app_user(runtime)
    for tenant, patient in ((first, at_first), (second, at_second)):
        api.call(
            "POST", f"/patients/{patient['id']}/link-invitations", tenant.staff, {"channel": "sms"}
        )
        code = _sent_code(runtime, phone)
        token = _token(runtime, email, password)
        assert api.call("POST", "/me/link", token, {"code": code}).status_code == 200

    token = _token(runtime, email, password)
    links = payload(api.call("GET", "/me/links", token))["items"]
    assert {x["tenant_id"]: x["current"] for x in links} == {first.id: False, second.id: True}
    chosen = api.call("PUT", "/me/hospital", token, {"tenant_id": first.id})
    assert chosen.status_code == 200
    import jwt

    claims = jwt.decode(_token(runtime, email, password), options={"verify_signature": False})
    assert (claims["custom:tenant_id"], claims["custom:patient_id"]) == (first.id, at_first["id"])
    elsewhere = api.call("PUT", "/me/hospital", token, {"tenant_id": "t-nowhere"})
    assert elsewhere.status_code == 409 and error_code(elsewhere) == "not_linked"


def test_an_opted_out_number_gets_no_code(runtime: Any, api: Api, tenant: TenantCtx) -> None:
    patient = _patient(api, tenant)
    from chalicelib.store.contacts import ContactRepository

    ContactRepository().opt_out(
        patient["phone"], {"at": "2026-01-01T00:00:00Z", "keyword": "STOP"}, tenant.id
    )
    refused = api.call(
        "POST", f"/patients/{patient['id']}/link-invitations", tenant.staff, {"channel": "sms"}
    )
    assert refused.status_code == 409 and error_code(refused) == "channel_unavailable"


def test_staff_are_invited_into_the_new_pool_after_a_reset(
    own_runtime: Any, api: Api, make_tenant: Any
) -> None:
    # A reset makes a new user pool with a new id; the functions must call that one, not the
    # last (CI failed here when a year-long test had reset the runtime before onboarding).
    tenant = make_tenant()
    invited = _invite(api, tenant)
    assert invited.status_code == 201, invited.body
    user = _cognito(own_runtime).admin_get_user(
        UserPoolId=own_runtime.pool.pool_id, Username=payload(invited)["id"]
    )
    assert user["Enabled"]
