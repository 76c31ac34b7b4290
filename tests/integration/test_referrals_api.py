"""Referrals through the API: the tenant's switch, a patient's code (made once, even when asked
for twice at the same moment), a new patient linked in their own registration, and the refusals
that link nothing."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import timedelta
from typing import Any

from tests.conftest import Api, TenantCtx, error_code, error_paths, patient_body, payload

ON = {"referrals": {"enabled": True}}


def code_of(api: Api, token: str) -> str:
    response = api.call("GET", "/me/referral-code", token)
    assert response.status_code == 200, response.body
    code: str = payload(response)["code"]
    return code


def register(api: Api, tenant: TenantCtx, **overrides: Any) -> Any:
    return api.call("POST", "/patients", tenant.staff, patient_body(**overrides))


def referrer_of(tenant_id: str, patient_id: str) -> Any:
    from chalicelib.services.registry import services
    from chalicelib.tenant_scope import acting_for

    with acting_for(tenant_id):
        return services().referrals.referrer_of(tenant_id, patient_id)


def test_a_new_patient_registered_with_a_code_is_linked_to_its_owner(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    tenant = make_tenant(**ON)
    referrer = make_patient(tenant, name={"given": "Wei"}, phone="13800138001")
    token = runtime.token("patient", tenant.id, referrer["id"])
    code = code_of(api, token)
    assert code == code_of(api, token), "made once"
    typed = f" {code[:4].lower()}-{code[4:]} "
    created = register(
        api, tenant, name={"given": "Li", "family": "Na"}, phone="13900139002", referral_code=typed
    )
    assert created.status_code == 201, created.body
    new = payload(created)
    assert "referral_code" not in new
    link = referrer_of(tenant.id, new["id"])
    assert link is not None
    assert (link["referrer_id"], link["referred_id"], link["code"], link["status"]) == (
        referrer["id"],
        new["id"],
        code,
        "linked",
    )
    assert link["linked_at"] == new["created_at"]
    assert referrer_of(tenant.id, referrer["id"]) is None
    mine = payload(api.call("GET", "/me/referrals", token))["items"]
    assert mine == [{"referred": "L***", "linked_at": new["created_at"], "status": "linked"}]
    assert new["id"] not in json.dumps(mine)
    # The referred patient referred nobody.
    theirs = runtime.token("patient", tenant.id, new["id"])
    assert payload(api.call("GET", "/me/referrals", theirs))["items"] == []


def test_unknown_codes_self_and_same_phone_are_refused_and_link_nothing(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    tenant = make_tenant(**ON)
    referrer = make_patient(tenant, phone="13800138003")
    token = runtime.token("patient", tenant.id, referrer["id"])
    code = code_of(api, token)
    for body in (
        {"referral_code": "22222222", "phone": "13900139004"},  # nobody's
        {"referral_code": "not a code", "phone": "13900139004"},
        {"referral_code": code, "phone": "+86 138 0013 8003"},  # the referrer's own phone
    ):
        before = payload(api.call("GET", "/patients?limit=200", tenant.staff))["items"]
        refused = register(api, tenant, **body)
        assert refused.status_code == 400, refused.body
        assert error_paths(refused) == ["$.referral_code"]
        after = payload(api.call("GET", "/patients?limit=200", tenant.staff))["items"]
        assert len(after) == len(before), "nobody registered"
    assert payload(api.call("GET", "/me/referrals", token))["items"] == []
    # Another tenant's code is unknown here.
    other = make_tenant(**ON)
    assert register(api, other, referral_code=code).status_code == 400


def test_referrals_off_by_default_refuse_codes_and_registrations_with_one(
    runtime: Any, api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    assert "referrals" not in tenant.doc
    patient = make_patient(tenant)
    token = runtime.token("patient", tenant.id, patient["id"])
    response = api.call("GET", "/me/referral-code", token)
    assert response.status_code == 409 and error_code(response) == "referrals_disabled"
    refused = register(api, tenant, referral_code="K7M2QX9R", phone="13900139005")
    assert refused.status_code == 400 and error_paths(refused) == ["$.referral_code"]
    # Switched on by an admin, a code is handed out; switched off again, it is refused.
    on = api.call("PATCH", f"/tenants/{tenant.id}", tenant.admin, ON, headers={"If-Match": '"1"'})
    assert on.status_code == 200, on.body
    code = code_of(api, token)
    off = api.call(
        "PATCH",
        f"/tenants/{tenant.id}",
        tenant.admin,
        {"referrals": {"enabled": False}},
        headers={"If-Match": f'"{payload(on)["version"]}"'},
    )
    assert off.status_code == 200, off.body
    refused = register(api, tenant, referral_code=code, phone="13900139006")
    assert refused.status_code == 400 and error_paths(refused) == ["$.referral_code"]


def test_roles(runtime: Any, api: Api, make_tenant: Any) -> None:
    tenant = make_tenant(**ON)
    for path in ("/me/referral-code", "/me/referrals"):
        assert api.call("GET", path, tenant.staff).status_code == 403
        assert api.call("GET", path, tenant.admin).status_code == 403
        assert api.call("GET", path, None).status_code == 401


def test_two_requests_at_once_make_one_code(
    runtime: Any, app_url: str, make_tenant: Any, make_patient: Any
) -> None:
    tenant = make_tenant(**ON)
    patient = make_patient(tenant)
    token = runtime.token("patient", tenant.id, patient["id"])
    codes: list[str] = []
    start = threading.Barrier(6)

    def ask() -> None:
        start.wait()
        request = urllib.request.Request(
            f"{app_url}/me/referral-code", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            codes.append(json.loads(response.read())["code"])

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(codes) == 6 and len(set(codes)) == 1, codes


def test_a_claim_race_leaves_the_first_code() -> None:
    """The repository's transaction itself: a second code for the same patient is not taken,
    and the code the patient holds is answered."""
    from chalicelib.store.referrals import ReferralRepository
    from chalicelib.tenant_scope import acting_for
    from tests.conftest import unique

    tenant_id = unique("t")
    with acting_for(tenant_id):
        repository = ReferralRepository()
        first = repository.claim_code(tenant_id, "p-race", "AAAA2222", "2026-11-23T01:00:00Z")
        second = repository.claim_code(tenant_id, "p-race", "BBBB3333", "2026-11-23T01:00:00Z")
        assert first == second == "AAAA2222"
        assert repository.owner_of_code(tenant_id, "BBBB3333") is None
        assert repository.owner_of_code(tenant_id, "AAAA2222") == "p-race"


def test_erasure_forgets_the_code_and_the_referrers_line(
    runtime: Any, api: Api, make_tenant: Any, make_patient: Any
) -> None:
    """Erasing the referred patient takes them out of the referrer's list; erasing a referrer
    frees nothing anyone can use: their code is no longer known."""
    from chalicelib.store.referrals import ReferralRepository
    from chalicelib.tenant_scope import acting_for

    tenant = make_tenant(**ON)
    referrer = make_patient(tenant, phone="13800138011")
    token = runtime.token("patient", tenant.id, referrer["id"])
    code = code_of(api, token)
    new = payload(register(api, tenant, phone="13900139012", referral_code=code))
    assert len(payload(api.call("GET", "/me/referrals", token))["items"]) == 1
    reason = {"reason": "the patient asked to be forgotten"}
    erased = api.call("POST", f"/patients/{new['id']}/erasure", tenant.admin, reason)
    assert erased.status_code in (200, 202), erased.body
    runtime.settle()
    assert payload(api.call("GET", "/me/referrals", token))["items"] == []
    assert referrer_of(tenant.id, new["id"]) is None
    erased = api.call("POST", f"/patients/{referrer['id']}/erasure", tenant.admin, reason)
    assert erased.status_code in (200, 202), erased.body
    runtime.settle()
    with acting_for(tenant.id):
        assert ReferralRepository().owner_of_code(tenant.id, code) is None
    refused = register(api, tenant, phone="13900139013", referral_code=code)
    assert refused.status_code == 400 and error_paths(refused) == ["$.referral_code"]


def test_the_referrer_earns_when_the_referred_patients_first_visit_takes_place(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    """End to end with the loyalty ledger: the link written at registration is what the ledger
    reads when the referred patient's visit is fulfilled; the referrer earns once."""
    from datetime import datetime

    from tests.conftest import free_slots, slot_ref

    clinic = make_clinic(capacity=1, **ON)
    tenant = clinic.tenant
    rules = {"enabled": True, "points": {"referral_first_visit": 100}, "expiry_days": 365}
    published = api.call("PUT", "/loyalty/rules", tenant.admin, rules)
    assert published.status_code == 200, published.body
    referrer = make_patient(tenant, phone="13800138021")
    referrer_token = runtime.token("patient", tenant.id, referrer["id"])
    code = code_of(api, referrer_token)
    new = payload(register(api, tenant, phone="13900139022", referral_code=code))
    new_token = runtime.token("patient", tenant.id, new["id"])
    slot = free_slots(api, tenant.staff)[0]
    booked = api.call(
        "POST", "/appointments", new_token, {"slot": slot_ref(slot), "type": "first_visit"}
    )
    assert booked.status_code == 201, booked.body
    visit = f"/appointments/{payload(booked)['id']}"
    runtime.settle()
    assert payload(api.call("GET", "/me/points", referrer_token))["balance"] == 0
    runtime.clock.set(datetime.fromisoformat(slot["start"]) + timedelta(minutes=5))
    for action in ("check-in", "fulfil"):
        done = api.call("POST", f"{visit}/{action}", tenant.staff)
        assert done.status_code == 200, done.body
        runtime.settle()
    assert payload(api.call("GET", "/me/points", referrer_token))["balance"] == 100
    assert payload(api.call("GET", "/me/points", new_token))["balance"] == 0
