"""Webhooks' pure rules: which URLs and addresses may be called, how a delivery is signed, what
an answer means, and how deliveries are named."""

from __future__ import annotations

import pytest

from chalicelib.domain import webhooks as rules
from chalicelib.domain.appointments import status_changed

SECRET = "whsec-7Hq2mZ9xVb4Lr8Kp3Nt6Wd1Y"
BODY = b'{"resourceType":"Appointment","id":"a-1"}'


def problems(url: str, *, allow_loopback_http: bool = False) -> list[str]:
    found = rules.url_problems(url, allow_loopback_http=allow_loopback_http)
    return [f"{p.path}: {p.message}" for p in found]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.org/careloop", "must be an https:// URL"),
        ("ftp://hooks.example.org/careloop", "must be an https:// URL"),
        ("https://user:pass@hooks.example.org/careloop", "must not carry credentials"),
        ("https://hooks.example.org/careloop#part", "must not have a fragment"),
        ("https:///careloop", "has no host"),
        ("https://hooks.example.org:99999/", "is not a URL"),
        ("https://10.1.2.3/hooks", "points at a private address"),
        ("https://172.16.0.9/hooks", "points at a private address"),
        ("https://192.168.1.20/hooks", "points at a private address"),
        ("https://127.0.0.1/hooks", "points at a loopback address"),
        ("https://127.8.9.10:8443/hooks", "points at a loopback address"),
        ("https://169.254.169.254/latest/meta-data/", "points at a link-local, metadata"),
        ("https://[::1]/hooks", "points at a loopback address"),
        ("https://[fd00:ec2::254]/hooks", "points at a link-local, metadata"),
        ("https://[::ffff:10.0.0.1]/hooks", "points at a private address"),
        ("https://100.64.0.7/hooks", "points at a link-local, metadata or shared address"),
        ("https://0.0.0.0/hooks", "points at a private address"),
        ("https://[fe80::1]/hooks", "points at a link-local address"),
        ("https://224.0.0.1/hooks", "points at a multicast, reserved or unspecified address"),
    ],
)
def test_a_url_that_could_reach_inside_is_refused(url: str, why: str) -> None:
    found = problems(url)
    assert len(found) == 1 and found[0].startswith(f"$.url: {why}"), found


def test_a_public_https_url_is_taken() -> None:
    assert problems("https://hooks.renji-east.example.com/careloop?tenant=1") == []
    assert problems("https://93.184.215.14/careloop") == []
    assert problems("https://[2606:4700:4700::1111]:8443/careloop") == []


def test_only_the_local_stage_may_call_its_own_loopback_receiver() -> None:
    loopback = "http://127.0.0.1:8471/hooks"
    assert problems(loopback, allow_loopback_http=True) == []
    assert problems("https://localhost/hooks", allow_loopback_http=True) == []
    assert problems(loopback) == ["$.url: must be an https:// URL"]
    # Loopback only: a private address stays refused, and http stays refused elsewhere.
    assert problems("http://10.0.0.1/hooks", allow_loopback_http=True)
    assert problems("http://hooks.example.org/", allow_loopback_http=True)


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.31.255.1",
        "192.168.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "::1",
        "fd00:ec2::254",
        "::ffff:10.0.0.1",
        "100.64.0.1",
        "fc00::1",
        "64:ff9b::a9fe:a9fe",  # NAT64 to 169.254.169.254
        "2002:a00:1::",  # 6to4 from 10.0.0.1
        "192.0.2.10",  # documentation: not routed
        "255.255.255.255",
    ],
)
def test_a_resolved_inside_address_is_refused(address: str) -> None:
    assert rules.refused_address(address) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_a_public_address_may_be_called(address: str) -> None:
    assert rules.refused_address(address) is None


def test_loopback_allowed_locally_is_loopback_only() -> None:
    assert rules.refused_address("127.0.0.1", allow_loopback=True) is None
    assert rules.refused_address("::1", allow_loopback=True) is None
    assert rules.refused_address("10.0.0.1", allow_loopback=True) is not None
    assert rules.refused_address("169.254.169.254", allow_loopback=True) is not None


def test_a_signature_round_trips() -> None:
    header = rules.signature(SECRET, 1_790_000_000, BODY)
    assert header.startswith("t=1790000000,v1=") and len(header.split("v1=")[1]) == 64
    assert rules.signature_valid(SECRET, header, BODY, now=1_790_000_030)


def test_a_tampered_body_wrong_secret_or_stale_signature_is_refused() -> None:
    header = rules.signature(SECRET, 1_790_000_000, BODY)
    now = 1_790_000_010
    assert not rules.signature_valid(SECRET, header, BODY.replace(b"a-1", b"a-2"), now)
    assert not rules.signature_valid(SECRET + "x", header, BODY, now)
    forged = header.replace("t=1790000000", "t=1790000009")  # a fresher time, same digest
    assert not rules.signature_valid(SECRET, forged, BODY, now)
    assert not rules.signature_valid(SECRET, header, BODY, now=1_790_000_000 + 301)
    assert not rules.signature_valid(SECRET, header, BODY, now=1_790_000_000 - 301)
    assert not rules.signature_valid(SECRET, "v1=abc", BODY, now)
    assert not rules.signature_valid(SECRET, "t=soon,v1=abc", BODY, now)


def test_signed_headers_name_the_event_and_the_delivery() -> None:
    headers = rules.signed_headers(SECRET, 1_790_000_000, BODY, "alert.urgent", "d-1")
    assert headers[rules.EVENT_HEADER] == "alert.urgent"
    assert headers[rules.DELIVERY_HEADER] == "d-1"
    assert rules.signature_valid(SECRET, headers[rules.SIGNATURE_HEADER], BODY, 1_790_000_000)


@pytest.mark.parametrize(
    ("attempt", "verdict"),
    [
        ({"status_code": 200}, rules.Verdict.DELIVERED),
        ({"status_code": 204}, rules.Verdict.DELIVERED),
        ({"status_code": 408}, rules.Verdict.RETRY),
        ({"status_code": 429}, rules.Verdict.RETRY),
        ({"status_code": 500}, rules.Verdict.RETRY),
        ({"status_code": 503}, rules.Verdict.RETRY),
        ({"failure": "timed out"}, rules.Verdict.RETRY),
        ({"status_code": 400}, rules.Verdict.REJECTED),
        ({"status_code": 410}, rules.Verdict.REJECTED),
        ({"status_code": 302}, rules.Verdict.REJECTED),  # redirects are not followed
        ({"refused": "a private address"}, rules.Verdict.REJECTED),
    ],
)
def test_what_an_answer_means(attempt: rules.AttemptResult, verdict: rules.Verdict) -> None:
    assert rules.verdict(attempt) is verdict


def test_deliveries_and_executions_are_named_deterministically() -> None:
    first = rules.delivery_id("renji-east", "wh-1", "appointment#a-1#v2")
    assert first == rules.delivery_id("renji-east", "wh-1", "appointment#a-1#v2")
    assert first != rules.delivery_id("renji-east", "wh-2", "appointment#a-1#v2")
    assert first != rules.delivery_id("renji-east", "wh-1", "appointment#a-1#v3")
    ref: rules.DeliveryRef = {
        "tenant_id": "t-" + "x" * 38,  # the longest tenant id
        "webhook_id": "wh-1",
        "delivery_id": first,
        "event": rules.WebhookEvent.APPOINTMENT_STATUS.value,
        "resource_type": "Appointment",
        "resource_id": "a-1",
        "patient_id": "p-1",
        "replay": 0,
    }
    assert rules.execution_name(ref) == f"{ref['tenant_id']}-{first}"
    replayed = rules.execution_name({**ref, "replay": 12})
    assert replayed.endswith("-r12") and len(replayed) <= 80


def test_an_appointment_status_change_is_its_status_its_answer_or_its_time() -> None:
    booked = {"status": "booked", "patient_response": "pending", "start": "2027-01-04T01:00:00Z"}
    assert status_changed(None, booked)
    assert status_changed(booked, {**booked, "status": "cancelled"})
    assert status_changed(booked, {**booked, "patient_response": "confirmed"})
    assert status_changed(booked, {**booked, "start": "2027-01-05T01:00:00Z"})
    assert not status_changed(booked, {**booked, "updated_at": "2027-01-01T00:00:00Z"})
