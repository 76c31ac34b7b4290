"""Hospitals onboarded from infra/hospital.yaml in the emulator, as an operator would on AWS:
two hospitals, their admins and staff signed in through the user pool, a linked patient, a
booking journey, replies routed by the number they were sent to, and one stack deleted."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, payload

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "infra" / "hospitals" / "example.json").read_text(encoding="utf-8"))


def _hospital(tenant_id: str, **changes: Any) -> dict[str, Any]:
    hospital: dict[str, Any] = copy.deepcopy(EXAMPLE)
    hospital.update(
        tenant_id=tenant_id,
        email_domain=f"{tenant_id}.example.com",
        first_admin_email=f"admin@{tenant_id}.example.com",
        alert_email=f"nurses@{tenant_id}.example.com",
        **changes,
    )
    return hospital


def _onboard(api: Api, hospital: dict[str, Any]) -> dict[str, Any]:
    response = api.call("POST", "/local/hospitals", None, hospital)
    assert response.status_code == 200, response.body
    stack: dict[str, Any] = payload(response)
    return stack


def _sign_in(api: Api, email: str) -> str:
    response = api.call("POST", "/local/sign-in", None, {"email": email})
    assert response.status_code == 200, response.body
    return str(payload(response)["id_token"])


@pytest.fixture(scope="module")
def hospitals(runtime: Any, api: Api) -> dict[str, dict[str, Any]]:
    import uuid

    suffix = uuid.uuid4().hex[:6]
    return {
        name: _onboard(api, _hospital(f"{name}-{suffix}", hospital_name=f"{name} hospital"))
        for name in ("north", "south")
    }


def test_a_hospital_stack_makes_the_tenant_its_identities_and_topics(
    runtime: Any, api: Api, hospitals: dict[str, dict[str, Any]]
) -> None:
    north = hospitals["north"]
    assert north["request"] == "Create"
    assert [a["status"] for a in north["provisioner_answers"]] == ["SUCCESS"]
    tenant_id = north["tenant_id"]
    admin = _sign_in(api, f"admin@{tenant_id}.example.com")
    tenant = payload(api.call("GET", f"/tenants/{tenant_id}", admin))
    assert tenant["name"] == "north hospital" and tenant["active"] is True
    assert [d["id"] for d in tenant["departments"]] == ["cardiology", "endocrinology"]
    topics = {d["alert_topic_arn"] for d in tenant["departments"]}
    assert topics == {
        north["resources"]["AlertTopiccardiology"],
        north["resources"]["AlertTopicendocrinology"],
    }
    assert tenant["sender"]["sms_reply_number"] == north["outputs"]["SmsReplyNumber"]
    assert tenant["sender"]["email_configuration_set"] == f"careloop-local-{tenant_id}"
    assert north["outputs"]["DkimRecord1"].endswith(".dkim.amazonses.com")
    # The first admin has a staff record, made by the provisioner.
    staff = payload(api.call("GET", "/staff", admin))["items"]
    assert [(m["email"], m["role"]) for m in staff] == [(f"admin@{tenant_id}.example.com", "admin")]
    identities = runtime.client("sesv2").list_email_identities()["EmailIdentities"]
    assert f"{tenant_id}.example.com" in {i["IdentityName"] for i in identities}
    subscriptions = runtime.client("sns").list_subscriptions_by_topic(
        TopicArn=north["resources"]["AlertTopiccardiology"]
    )["Subscriptions"]
    assert [s["Endpoint"] for s in subscriptions] == [f"nurses@{tenant_id}.example.com"]
    # The hospital's integration user may put import files in its own folder only.
    from chalicelib.settings import get_settings

    iam = runtime.client("iam")
    policy_arn = north["outputs"]["ImportUploadPolicyArn"]
    version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]
    [statement] = document["Document"]["Statement"]
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"] == f"arn:aws:s3:::{get_settings().import_bucket}/{tenant_id}/*"


def test_each_hospital_runs_its_own_staff_patients_and_journeys(
    runtime: Any, api: Api, hospitals: dict[str, dict[str, Any]]
) -> None:
    from local.identity import password_sign_in, sign_in_invited, sign_up
    from tests.conftest import ALL_WEEK, free_slots, slot_ref

    cognito = runtime.client("cognito-idp")
    for name, stack in hospitals.items():
        tenant_id = stack["tenant_id"]
        admin = _sign_in(api, f"admin@{tenant_id}.example.com")
        invited = api.call(
            "POST",
            "/staff",
            admin,
            {
                "email": f"nurse@{tenant_id}.example.com",
                "name": "Nurse",
                "departments": ["cardiology"],
            },
        )
        assert invited.status_code == 201, invited.body
        staff = sign_in_invited(cognito, runtime.pool, f"nurse@{tenant_id}.example.com")
        clinician = api.call(
            "PUT", "/clinicians/dr-wang", admin, {"name": "Dr Wang", "department": "cardiology"}
        )
        assert clinician.status_code in (200, 201), clinician.body
        schedule = {
            "clinician": "dr-wang",
            "department": "cardiology",
            "location": "Building 1",
            "slot_minutes": 30,
            "capacity": 1,
            "weekly_hours": ALL_WEEK,
        }
        put = api.call("PUT", "/schedules/dr-wang-week", admin, schedule)
        assert put.status_code in (200, 201), put.body
        phone = "+8613900001111"  # one person, a patient at both hospitals
        patient = api.call(
            "POST",
            "/patients",
            staff,
            {
                "name": {"given": "Wei", "family": "Zhang"},
                "phone": phone,
                "preferred_channels": ["sms"],
            },
        )
        assert patient.status_code == 201, patient.body
        patient_id = payload(patient)["id"]
        api.call("POST", f"/patients/{patient_id}/link-invitations", staff, {"channel": "sms"})
        code = re.search(r"[0-9A-Z]{5}-[0-9A-Z]{5}", runtime.outbox.messages(to=phone)[-1].body)
        assert code
        email, password = sign_up(cognito, runtime.pool, f"wei.{name}.{tenant_id}@example.com")
        app = password_sign_in(cognito, runtime.pool, email, password)
        assert api.call("POST", "/me/link", app, {"code": code.group(0)}).status_code == 200
        app = password_sign_in(cognito, runtime.pool, email, password)
        slots = free_slots(api, staff, "cardiology")
        booked = api.call(
            "POST", "/appointments", app, {"slot": slot_ref(slots[0]), "type": "follow_up"}
        )
        assert booked.status_code == 201, booked.body
        runtime.settle()
        texts = runtime.outbox.messages(to=phone, channel="sms")
        confirmation = texts[-1]
        assert confirmation.sender == stack["outputs"]["SmsReplyNumber"], confirmation
        # The patient answers C to this hospital's number: it reaches this hospital's booking.
        reply = api.call(
            "POST",
            "/local/sms-reply",
            None,
            {"from": phone, "text": "C", "to": confirmation.sender},
        )
        assert reply.status_code == 202
        runtime.settle()
        appointment = payload(api.call("GET", f"/appointments/{payload(booked)['id']}", staff))
        assert appointment["patient_response"] == "confirmed", appointment


def test_updating_a_stack_changes_the_tenant_and_keeps_the_rest(
    runtime: Any, api: Api, hospitals: dict[str, dict[str, Any]]
) -> None:
    south = hospitals["south"]
    tenant_id = south["tenant_id"]
    admin = _sign_in(api, f"admin@{tenant_id}.example.com")
    changed = api.call(
        "PATCH",
        f"/tenants/{tenant_id}",
        admin,
        {"quiet_hours": {"start": "22:00", "end": "07:00"}},
        {"If-Match": f'"{payload(api.call("GET", f"/tenants/{tenant_id}", admin))["version"]}"'},
    )
    assert changed.status_code == 200, changed.body
    departments = [*EXAMPLE["departments"][:1], {"id": "ophthalmology", "name": "眼科"}]
    updated = _onboard(
        api, _hospital(tenant_id, hospital_name="south hospital", departments=departments)
    )
    assert updated["request"] == "Update"
    assert [a["request"] for a in updated["provisioner_answers"]] == ["Create", "Update"]
    assert "AlertTopicendocrinology" not in updated["resources"]
    tenant = payload(api.call("GET", f"/tenants/{tenant_id}", admin))
    assert [d["id"] for d in tenant["departments"]] == ["cardiology", "ophthalmology"]
    assert tenant["quiet_hours"] == {"start": "22:00", "end": "07:00"}  # the admin's, kept


def test_deleting_a_stack_deactivates_the_hospital_and_keeps_its_patients(
    runtime: Any, api: Api, make_tenant: Any
) -> None:
    import uuid

    tenant_id = f"gone-{uuid.uuid4().hex[:6]}"
    stack = _onboard(api, _hospital(tenant_id))
    admin = _sign_in(api, f"admin@{tenant_id}.example.com")
    staff_token = runtime.token("staff", tenant_id)
    patient = api.call(
        "POST",
        "/patients",
        staff_token,
        {"name": {"given": "Li", "family": "Lei"}, "phone": "+8613900002222"},
    )
    assert patient.status_code == 201

    deleted = api.call("DELETE", f"/local/hospitals/{tenant_id}", None)
    assert deleted.status_code == 200, deleted.body
    answers = payload(deleted)["provisioner_answers"]
    assert [(a["request"], a["status"]) for a in answers] == [
        ("Create", "SUCCESS"),
        ("Delete", "SUCCESS"),
    ]
    tenant = payload(api.call("GET", f"/tenants/{tenant_id}", admin))
    assert tenant["active"] is False
    kept = api.call("GET", f"/patients/{payload(patient)['id']}", staff_token)
    assert kept.status_code == 200
    topics = {t["TopicArn"] for t in runtime.client("sns").list_topics()["Topics"]}
    assert stack["resources"]["AlertTopiccardiology"] not in topics
    # Onboarded again, the same hospital is active again with its patients.
    again = _onboard(api, _hospital(tenant_id))
    assert again["request"] == "Create"
    assert payload(api.call("GET", f"/tenants/{tenant_id}", admin))["active"] is True
