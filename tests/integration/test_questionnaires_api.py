"""Questionnaire definitions through the API: starters for everyone, the hospital's own checked
when saved."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, TenantCtx, error_paths, payload

OWN = {
    "title": {"zh-CN": "白内障术后第1天", "en": "Day 1 after cataract surgery"},
    "items": [
        {
            "linkId": "vision",
            "type": "choice",
            "required": True,
            "text": {"en": "Your sight compared with yesterday"},
            "answerOption": [
                {"value": "better", "text": {"en": "Better"}},
                {"value": "worse", "text": {"en": "Worse"}},
            ],
        },
    ],
    "scoring": [{"linkId": "vision", "operator": "=", "value": "worse", "risk": "urgent"}],
}


def test_starters_are_there_for_every_tenant(runtime: Any, api: Api, tenant: TenantCtx) -> None:
    listed = payload(api.call("GET", "/questionnaires", tenant.staff))["items"]
    assert [q["id"] for q in listed] == [
        "chronic-check-in",
        "post-discharge",
        "post-operative",
        "satisfaction",
    ]
    patient = runtime.token("patient", tenant.id, "p-someone")
    one = api.call("GET", "/questionnaires/post-operative", patient)
    assert one.status_code == 200 and payload(one)["source"] == "starter"
    assert api.call("GET", "/questionnaires/nope", tenant.staff).status_code == 404


def test_the_hospitals_own_is_checked_and_may_override_a_starter(
    api: Api, tenant: TenantCtx
) -> None:
    saved = api.call("PUT", "/questionnaires/cataract-day1", tenant.admin, OWN)
    assert saved.status_code == 200, saved.body
    override = api.call("PUT", "/questionnaires/satisfaction", tenant.admin, OWN)
    assert override.status_code == 200
    listed = payload(api.call("GET", "/questionnaires", tenant.staff))["items"]
    by_id = {q["id"]: q["source"] for q in listed}
    assert by_id["cataract-day1"] == "tenant" and by_id["satisfaction"] == "tenant"
    bad = {**OWN, "scoring": [{"linkId": "ghost", "operator": "=", "value": 1, "risk": "urgent"}]}
    refused = api.call(
        "PUT", "/questionnaires/cataract-day1", tenant.admin, bad, headers={"If-Match": '"1"'}
    )
    assert refused.status_code == 400
    assert error_paths(refused) == ["$.scoring[0].linkId"]
    shapeless = api.call(
        "PUT",
        "/questionnaires/x2",
        tenant.admin,
        {
            "title": {"en": "T"},
            "items": [{"linkId": "Bad Id", "type": "note", "text": {"en": "?"}}],
        },
    )
    assert set(error_paths(shapeless)) == {
        "$.items[0].linkId",
        "$.items[0].type",
    }
    assert api.call("PUT", "/questionnaires/x3", tenant.staff, OWN).status_code == 403


def test_a_patient_answers_saves_partially_and_submits(
    runtime: Any, api: Api, tenant: TenantCtx, make_patient: Any
) -> None:
    patient = make_patient(tenant)
    token = runtime.token("patient", tenant.id, patient["id"])
    started = api.call(
        "POST", "/questionnaires/post-operative/responses", token, {"answers": {"pain": 8}}
    )
    assert started.status_code == 201, started.body
    response = payload(started)
    assert response["status"] == "in-progress" and "risk" not in response
    path = f"/me/questionnaire-responses/{response['id']}"
    wrong = api.call("PATCH", path, token, {"answers": {"wound": "purple", "fever_since": "x"}})
    assert wrong.status_code == 400
    assert error_paths(wrong) == [
        "$.answers.wound",
        "$.answers.fever_since",
    ]
    incomplete = api.call("POST", f"{path}/submit", token)
    assert incomplete.status_code == 400
    assert error_paths(incomplete) == [
        "$.answers.fever",
        "$.answers.mobility",
        "$.answers.wound",
    ]
    api.call(
        "PATCH",
        path,
        token,
        {"answers": {"wound": "healing", "fever": False, "mobility": "normal"}},
    )
    submitted = api.call("POST", f"{path}/submit", token)
    assert submitted.status_code == 200
    assert (payload(submitted)["status"], payload(submitted)["risk"]) == ("completed", "urgent")
    again = api.call("POST", f"{path}/submit", token)
    assert again.status_code == 409
    staff_view = payload(
        api.call("GET", f"/patients/{patient['id']}/questionnaire-responses", tenant.staff)
    )["items"]
    assert [r["risk"] for r in staff_view] == ["urgent"]
    other = runtime.token("patient", tenant.id, make_patient(tenant)["id"])
    assert api.call("POST", f"{path}/submit", other).status_code == 404
