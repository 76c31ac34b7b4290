"""Outbound webhooks end to end, against the local receiver (a hospital's system on 127.0.0.1):
status changes, responses and urgent alerts arrive as signed FHIR; a receiver that is down is
retried until it answers; one that refuses (or never comes back) ends in the dead-letter list
staff replay from; a name that resolves inside at delivery time is never called; and no tenant
sees or touches another's webhooks."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Api, ClinicCtx, TenantCtx, error_code, error_paths, free_slots, payload
from tests.journeys.support import Journey, local_moment, move_to

pytestmark = pytest.mark.journey

SECRET = "whsec-" + "k7Hq2mZ9xVb4Lr8Kp3Nt6Wd1"
EVERY_EVENT = ["appointment.status_changed", "questionnaire_response.submitted", "alert.urgent"]
RETRIES = 8  # the Deliver state's MaxAttempts


def receiver_path() -> str:
    return f"/hooks/{uuid.uuid4().hex[:12]}"


def register(
    api: Api, tenant: TenantCtx, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    response = api.call(
        "POST",
        "/webhooks",
        tenant.admin,
        {"url": url, "events": events or EVERY_EVENT, "secret": SECRET},
    )
    assert response.status_code == 201, response.body
    created: dict[str, Any] = payload(response)
    return created


def book(api: Api, clinic: ClinicCtx, patient_token: str, days_ahead: int = 2) -> dict[str, Any]:
    slot = free_slots(api, patient_token, days_ahead=days_ahead)[0]
    response = api.call(
        "POST",
        "/appointments",
        patient_token,
        {"slot": {"schedule_id": slot["schedule_id"], "start": slot["start"]}, "type": "follow_up"},
    )
    assert response.status_code == 201, response.body
    booked: dict[str, Any] = payload(response)
    return booked


def act(api: Api, token: str, appointment: dict[str, Any], action: str) -> None:
    response = api.call("POST", f"/appointments/{appointment['id']}/{action}", token)
    assert response.status_code == 200, response.body


def submit(api: Api, token: str, answers: dict[str, Any]) -> dict[str, Any]:
    started = api.call(
        "POST", "/questionnaires/post-operative/responses", token, {"answers": answers}
    )
    assert started.status_code == 201, started.body
    response_id = payload(started)["id"]
    submitted = api.call("POST", f"/me/questionnaire-responses/{response_id}/submit", token)
    assert submitted.status_code == 200, submitted.body
    done: dict[str, Any] = payload(submitted)
    return done


def dead_letters(api: Api, token: str) -> list[dict[str, Any]]:
    response = api.call("GET", "/webhooks/dead-letters", token)
    assert response.status_code == 200, response.body
    items: list[dict[str, Any]] = payload(response)["items"]
    return items


def check_signed_fhir(received: Any) -> dict[str, Any]:
    """What a hospital's system checks: our signature, fresh, over the body; a valid resource."""
    from chalicelib.domain.fhir import validate_resource
    from chalicelib.domain.webhooks import SIGNATURE_HEADER, signature_valid

    header = received.header(SIGNATURE_HEADER)
    assert header and signature_valid(
        SECRET, header, received.body, int(received.received_at.timestamp())
    ), received.headers
    assert received.header("Content-Type") == "application/fhir+json"
    resource: dict[str, Any] = json.loads(received.body)
    validate_resource(resource)
    return resource


def test_changes_responses_and_alerts_arrive_signed_as_fhir(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    tenant = clinic.tenant
    path = receiver_path()
    webhook = register(api, tenant, runtime.webhooks.url(path))
    assert "secret" not in webhook and webhook["secret_hint"] == "…" + SECRET[-4:]
    patient = make_patient(tenant, phone="13900139001")
    token = runtime.token("patient", tenant.id, patient["id"])

    kept = book(api, clinic, token)
    act(api, token, kept, "confirm")
    dropped = book(api, clinic, token, days_ahead=3)
    act(api, token, dropped, "cancel")
    calm = submit(api, token, {"pain": 1, "wound": "healing", "fever": False, "mobility": "normal"})
    urgent = submit(
        api, token, {"pain": 9, "wound": "healing", "fever": False, "mobility": "normal"}
    )
    assert urgent["risk"] == "urgent"
    runtime.settle()

    received = runtime.webhooks.received(path)
    assert all(r.delivered for r in received)
    by_event: dict[str, list[dict[str, Any]]] = {}
    for r in received:
        by_event.setdefault(r.header("CareLoop-Event"), []).append(check_signed_fhir(r))
    deliveries = [r.header("CareLoop-Delivery") for r in received]
    assert len(set(deliveries)) == len(deliveries) == 7, "one each: 2 + 2 + 2 + 1"

    appointments = by_event["appointment.status_changed"]
    assert sorted(a["id"] for a in appointments) == sorted([kept["id"]] * 2 + [dropped["id"]] * 2)
    assert {a["resourceType"] for a in appointments} == {"Appointment"}
    # Each delivery is the appointment as it is when delivered: the last says what became of it.
    last = {a["id"]: a for a in sorted(appointments, key=lambda a: int(a["meta"]["versionId"]))}
    assert last[dropped["id"]]["status"] == "cancelled"
    assert last[kept["id"]]["status"] == "booked"
    assert last[kept["id"]]["participant"][0]["status"] == "accepted"

    responses = by_event["questionnaire_response.submitted"]
    assert sorted(r["id"] for r in responses) == sorted([calm["id"], urgent["id"]])
    assert all(r["status"] == "completed" and r["item"] for r in responses)
    (alert,) = by_event["alert.urgent"]
    assert alert["resourceType"] == "Communication" and alert["priority"] == "urgent"
    assert alert["about"][0]["reference"] == f"QuestionnaireResponse/{urgent['id']}"
    assert alert["subject"]["reference"] == f"Patient/{patient['id']}"
    assert dead_letters(api, tenant.staff) == []


def test_a_journeys_sms_answer_and_no_show_reach_the_hospital(
    runtime: Any, api: Api, journey: Any
) -> None:
    """Changes made outside the API (an SMS reply, the journey's visit check) are told too."""
    j: Journey = journey()
    path = receiver_path()
    register(api, j.clinic.tenant, runtime.webhooks.url(path), ["appointment.status_changed"])
    start = local_moment(days=2, hour=10)
    appointment = j.book(start)
    reply = api.call("POST", "/local/sms-reply", None, {"from": f"+86{j.phone}", "text": "C"})
    assert reply.status_code == 202, reply.body
    move_to(runtime, start + timedelta(hours=2, minutes=1))
    assert j.appointment(appointment)["status"] == "noshow"

    received = runtime.webhooks.received(path)
    resources = [check_signed_fhir(r) for r in received]
    assert [r["meta"]["versionId"] for r in resources][-1] == str(
        j.appointment(appointment)["version"]
    )
    assert resources[-1]["status"] == "noshow"
    answered = [r for r in resources if r["participant"][0]["status"] == "accepted"]
    assert answered, "the SMS confirmation was delivered"
    assert len({r.header("CareLoop-Delivery") for r in received}) == 3  # booked, confirmed, no-show


def test_a_receiver_that_is_down_gets_it_once_it_is_back(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    path = receiver_path()
    register(api, clinic.tenant, runtime.webhooks.url(path), ["appointment.status_changed"])
    runtime.webhooks.answer(path, 503, 429, 500)
    patient = make_patient(clinic.tenant, phone="13900139002")
    booked = book(api, clinic, runtime.token("patient", clinic.tenant.id, patient["id"]))
    runtime.settle()

    received = runtime.webhooks.received(path)
    assert [r.answered for r in received] == [503, 429, 500, 200]
    assert len({r.header("CareLoop-Delivery") for r in received}) == 1, "one delivery, retried"
    assert check_signed_fhir(received[-1])["id"] == booked["id"]
    assert dead_letters(api, clinic.tenant.staff) == []


@pytest.mark.parametrize(
    ("answers", "attempts", "last_error"),
    [
        ([400], 1, "the receiver answered 400"),  # refused for good: not retried
        ([500] * (RETRIES + 1), RETRIES + 1, "the receiver answered 500"),  # never came back
    ],
    ids=["refused", "always-500"],
)
def test_what_never_gets_through_is_a_dead_letter_staff_replay(
    runtime: Any,
    api: Api,
    make_clinic: Any,
    make_patient: Any,
    answers: list[int],
    attempts: int,
    last_error: str,
) -> None:
    clinic: ClinicCtx = make_clinic()
    tenant = clinic.tenant
    path = receiver_path()
    webhook = register(api, tenant, runtime.webhooks.url(path), ["appointment.status_changed"])
    runtime.webhooks.answer(path, *answers)
    patient = make_patient(tenant, phone="13900139003")
    booked = book(api, clinic, runtime.token("patient", tenant.id, patient["id"]))
    runtime.settle()
    assert [r.answered for r in runtime.webhooks.received(path)] == answers

    (dead,) = dead_letters(api, tenant.staff)
    assert dead["webhook_id"] == webhook["id"] and dead["status"] == "dead"
    assert dead["resource"] == f"Appointment/{booked['id']}"
    assert (dead["attempts"], dead["last_error"], dead["replays"]) == (attempts, last_error, 0)
    assert dead["event"] == "appointment.status_changed" and "failed_at" in dead

    replayed = api.call("POST", f"/webhooks/dead-letters/{dead['id']}/replay", tenant.staff)
    assert replayed.status_code == 202, replayed.body
    assert (payload(replayed)["status"], payload(replayed)["replays"]) == ("pending", 1)
    runtime.settle()
    received = runtime.webhooks.received(path)
    assert received[-1].answered == 200 and len(received) == len(answers) + 1
    assert received[-1].header("CareLoop-Delivery") == dead["id"], "the same delivery, again"
    assert check_signed_fhir(received[-1])["id"] == booked["id"]
    assert dead_letters(api, tenant.staff) == []
    again = api.call("POST", f"/webhooks/dead-letters/{dead['id']}/replay", tenant.admin)
    assert again.status_code == 409, again.body


def test_a_name_that_resolves_inside_at_delivery_time_is_never_called(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: public when registered, private when delivered. The address is judged
    where the connection is made, so nothing is sent, and it is not retried."""
    from chalicelib.adapters import webhooks as adapter

    clinic: ClinicCtx = make_clinic()
    tenant = clinic.tenant
    answers = {"hooks.rebinding.example.org": ["93.184.215.14"]}
    monkeypatch.setattr(adapter, "resolve_host", lambda host, port: answers[host])
    connected: list[str] = []

    def no_connection(self: Any) -> None:
        connected.append(self.host)
        raise AssertionError("an inside address was connected to")

    monkeypatch.setattr(adapter._PinnedHTTPSConnection, "connect", no_connection)
    webhook = register(api, tenant, "https://hooks.rebinding.example.org/careloop")

    inside = {
        "url": "https://hooks.inside.example.org/careloop",
        "events": EVERY_EVENT,
        "secret": SECRET,
    }
    answers["hooks.inside.example.org"] = ["93.184.215.14", "10.0.0.5"]
    refused = api.call("POST", "/webhooks", tenant.admin, inside)
    assert refused.status_code == 400 and error_paths(refused) == ["$.url"], refused.body
    assert "private address" in payload(refused)["error"]["details"][0]["message"]

    answers["hooks.rebinding.example.org"] = ["169.254.169.254"]
    patient = make_patient(tenant, phone="13900139004")
    booked = book(api, clinic, runtime.token("patient", tenant.id, patient["id"]))
    runtime.settle()

    assert connected == []
    (dead,) = dead_letters(api, tenant.admin)
    assert dead["webhook_id"] == webhook["id"] and dead["resource"] == f"Appointment/{booked['id']}"
    assert dead["attempts"] == 1
    assert dead["last_error"].startswith("refused: the host resolves to a link-local")


def test_registration_refuses_what_could_reach_inside_and_keeps_the_secret_sealed(
    runtime: Any, api: Api, tenant: TenantCtx
) -> None:
    for url in (
        "http://hooks.example.org/careloop",
        "https://10.1.2.3/careloop",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]:8443/careloop",
        "https://[::ffff:192.168.0.9]/careloop",
        "https://admin:pw@hooks.example.org/careloop",
    ):
        body = {"url": url, "events": EVERY_EVENT, "secret": SECRET}
        response = api.call("POST", "/webhooks", tenant.admin, body)
        assert response.status_code == 400 and error_paths(response) == ["$.url"], (
            url,
            response.body,
        )
    short = api.call(
        "POST",
        "/webhooks",
        tenant.admin,
        {"url": "http://ftp.example.org", "events": [], "secret": "short"},
    )
    assert short.status_code == 400
    assert sorted(error_paths(short)) == ["$.events", "$.secret", "$.url"]
    assert api.call("POST", "/webhooks", tenant.staff, {"url": "x"}).status_code == 403

    webhook = register(api, tenant, runtime.webhooks.url(receiver_path()))
    listed = payload(api.call("GET", "/webhooks", tenant.admin))["items"]
    assert [w["id"] for w in listed] == [webhook["id"]] and "secret" not in listed[0]
    item = runtime.client("dynamodb").get_item(
        TableName="careloop-local",
        Key={"PK": {"S": f"T#{tenant.id}#CONFIG"}, "SK": {"S": f"WEBHOOK#{webhook['id']}"}},
    )["Item"]
    assert SECRET not in json.dumps(item) and "sealed" in item["doc"]["M"]


def test_another_tenant_cannot_see_replay_or_delete_them(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any, make_tenant: Any
) -> None:
    clinic: ClinicCtx = make_clinic()
    ours = clinic.tenant
    path = receiver_path()
    webhook = register(api, ours, runtime.webhooks.url(path), ["appointment.status_changed"])
    runtime.webhooks.answer(path, 404)
    patient = make_patient(ours, phone="13900139005")
    book(api, clinic, runtime.token("patient", ours.id, patient["id"]))
    runtime.settle()
    (dead,) = dead_letters(api, ours.staff)

    theirs: TenantCtx = make_tenant()
    assert payload(api.call("GET", "/webhooks", theirs.admin))["items"] == []
    assert dead_letters(api, theirs.admin) == dead_letters(api, theirs.staff) == []
    for token in (theirs.admin, theirs.staff):
        replay = api.call("POST", f"/webhooks/dead-letters/{dead['id']}/replay", token)
        assert replay.status_code == 404 and error_code(replay) == "not_found", replay.body
    deleted = api.call("DELETE", f"/webhooks/{webhook['id']}", theirs.admin)
    assert deleted.status_code == 404 and error_code(deleted) == "not_found"
    patient_token = runtime.token("patient", ours.id, patient["id"])
    assert api.call("GET", "/webhooks/dead-letters", patient_token).status_code == 403
    assert api.call("DELETE", f"/webhooks/{webhook['id']}", ours.staff).status_code == 403

    # Ours still there; deleting it takes its dead letters out of the list.
    assert [w["id"] for w in payload(api.call("GET", "/webhooks", ours.admin))["items"]] == [
        webhook["id"]
    ]
    assert api.call("DELETE", f"/webhooks/{webhook['id']}", ours.admin).status_code == 204
    assert dead_letters(api, ours.staff) == []
    replay = api.call("POST", f"/webhooks/dead-letters/{dead['id']}/replay", ours.staff)
    assert replay.status_code == 404
