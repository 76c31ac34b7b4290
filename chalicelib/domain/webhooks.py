"""Outbound webhooks: where a hospital's system may be called, how a call is signed, which events
it may subscribe to, and what an answer means.

A webhook URL can never reach inside: only HTTPS, no credentials in it, and an address that
resolves to a private, loopback, link-local, shared, multicast or reserved network, or to a
cloud metadata service, is refused, when the webhook is registered and again at every delivery
(the name may resolve elsewhere by then: DNS rebinding). An IPv6 address that carries an IPv4
one (mapped, 6to4, Teredo, NAT64) is judged by the IPv4 address it reaches. The local stage
alone may call its own loopback receiver.

Each delivery carries `CareLoop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
under the webhook's secret, so the receiver can check who sent it and refuse replays older than a
few minutes; `CareLoop-Delivery` names the delivery (the same on every retry and replay, for the
receiver to drop a duplicate) and `CareLoop-Event` the event.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, NotRequired, TypedDict
from urllib.parse import urlsplit

from chalicelib.domain.errors import FieldError

SIGNATURE_HEADER = "CareLoop-Signature"
EVENT_HEADER = "CareLoop-Event"
DELIVERY_HEADER = "CareLoop-Delivery"
SECRET_MIN = 24
# Addresses no webhook may reach, beyond what `ipaddress` calls private/reserved: cloud metadata
# services (AWS IMDS on IPv4 and IPv6, and the link-local range they live in).
METADATA = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fd00:ec2::/32"),
    ipaddress.ip_network("100.64.0.0/10"),  # shared address space (carrier NAT), not public
)
# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the last 32 bits are the IPv4
# address a NAT64 gateway reaches. Python counts 64:ff9b::/96 as global.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Dead letters (and the record of each delivery) are kept this long for staff to replay.
KEEP_DELIVERIES_DAYS = 30


class WebhookEvent(StrEnum):
    APPOINTMENT_STATUS = "appointment.status_changed"
    QUESTIONNAIRE_RESPONSE = "questionnaire_response.submitted"
    URGENT_ALERT = "alert.urgent"


class WebhookStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # being attempted (or retried)
    DELIVERED = "delivered"
    SKIPPED = "skipped"  # nothing to send any more: the webhook or the record is gone
    DEAD = "dead"  # every retry failed, or the receiver refused it: until staff replay it


class Verdict(StrEnum):
    """What one attempt's answer means."""

    DELIVERED = "delivered"
    RETRY = "retry"  # the receiver may take it later: 408, 429, 5xx, timeouts, connections
    REJECTED = "rejected"  # it will not (another 4xx, a redirect) or may not be called at all


# The FHIR resource each event delivers.
RESOURCE_OF_EVENT = {
    WebhookEvent.APPOINTMENT_STATUS: "Appointment",
    WebhookEvent.QUESTIONNAIRE_RESPONSE: "QuestionnaireResponse",
    WebhookEvent.URGENT_ALERT: "Communication",
}


class Webhook(TypedDict):
    """A webhook as the API shows it: never its secret."""

    id: str
    url: str
    events: list[str]  # WebhookEvent values
    status: str  # a WebhookStatus
    created_at: str
    created_by: str
    secret_hint: str  # the secret's last four characters: the secret itself is never shown again


class DeliveryRef(TypedDict):
    """One delivery of one event to one webhook: the webhook state machine's input, and what a
    dead letter keeps to replay it. Ids only, never PHI (Step Functions keeps inputs 90 days)."""

    tenant_id: str
    webhook_id: str
    delivery_id: str
    event: str  # a WebhookEvent
    resource_type: str
    resource_id: str
    patient_id: str  # whom the resource is about (a response lives under its patient)
    replay: int  # 0, then 1, 2, ... for each replay by staff


class DeadLetter(TypedDict):
    id: str  # the delivery's id
    webhook_id: str
    event: str  # a WebhookEvent
    resource: str  # `Appointment/<id>`, `QuestionnaireResponse/<id>`: ids only, never PHI
    status: str  # dead; pending once replayed, until that replay ends
    failed_at: NotRequired[str]
    attempts: int
    last_error: str  # what the last attempt came to, in a few words (never the answer's body)
    replays: int


class AttemptResult(TypedDict):
    """What one attempt to call a webhook came to (the adapter's answer)."""

    status_code: NotRequired[int]  # the receiver's answer, when it answered
    failure: NotRequired[str]  # why there was no answer: timeout, connection, tls
    refused: NotRequired[str]  # why the address may not be called (nothing was sent)


class DeliveryOutcome(TypedDict):
    """The Deliver task's result (`$.delivered.result`): delivered, skipped or rejected."""

    outcome: str  # a Verdict, or "skipped"
    why: NotRequired[str]


class DeadLettered(TypedDict):
    dead: bool  # False: the delivery had been delivered after all, or its webhook is gone


def is_loopback_host(host: str) -> bool:
    return host.lower().strip("[]") in LOOPBACK_HOSTS


def _reached_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for or tunnels to, if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client behind the Teredo server
    if any(ip in network for network in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What makes an address one a webhook may not reach, in the order they are told.
REFUSALS: tuple[tuple[Callable[[IpAddress], bool], str], ...] = (
    (
        lambda ip: any(ip in net for net in METADATA if net.version == ip.version),
        "a link-local, metadata or shared address",
    ),
    (lambda ip: ip.is_link_local, "a link-local address"),
    (lambda ip: ip.is_private, "a private address"),
    (
        lambda ip: ip.is_multicast or ip.is_reserved or ip.is_unspecified,
        "a multicast, reserved or unspecified address",
    ),
    (lambda ip: not ip.is_global, "not a public address"),
)


def refused_address(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why a resolved address may not be called, or None when it may. `allow_loopback` is the
    local stage's, for its own receiver."""
    ip: IpAddress = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _reached_ipv4(ip) or ip
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    return next((why for refuses, why in REFUSALS if refuses(ip)), None)


def _written_problem(url: str, loopback_http: bool) -> str | None:
    """What is wrong with the URL as written, before its host is looked at."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a URL"
    loopback = loopback_http and is_loopback_host(parts.hostname or "")
    checks = (
        (
            parts.scheme != "https" and not (loopback and parts.scheme == "http"),
            "must be an https:// URL",
        ),
        (not parts.hostname, "has no host"),
        (bool(parts.username or parts.password), "must not carry credentials"),
        (bool(parts.fragment), "must not have a fragment"),
        (port is not None and not 1 <= port <= 65535, "has an impossible port"),
    )
    return next((why for failed, why in checks if failed), None)


def url_problems(
    url: str, path: str = "$.url", *, allow_loopback_http: bool = False
) -> list[FieldError]:
    """What is wrong with a webhook URL as written (its addresses are checked when resolved)."""
    problem = _written_problem(url, allow_loopback_http)
    if problem is not None:
        return [FieldError(path, problem)]
    host = urlsplit(url).hostname or ""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return []  # a name: judged by what it resolves to
    loopback = allow_loopback_http and is_loopback_host(host)
    why = refused_address(str(literal), allow_loopback=loopback)
    return [FieldError(path, f"points at {why}")] if why else []


def verdict(attempt: AttemptResult) -> Verdict:
    """2xx delivered; 408, 429, 5xx and no answer at all retried; any other answer (another
    4xx, a redirect we do not follow) and a refused address are final."""
    if "refused" in attempt:
        return Verdict.REJECTED
    code = attempt.get("status_code")
    if code is None:
        return Verdict.RETRY
    if 200 <= code < 300:
        return Verdict.DELIVERED
    if code in (408, 429) or code >= 500:
        return Verdict.RETRY
    return Verdict.REJECTED


def attempt_summary(attempt: AttemptResult) -> str:
    """One attempt in a few words, for the dead letter (never the receiver's answer body)."""
    if "refused" in attempt:
        return f"refused: the host resolves to {attempt['refused']}"
    if "status_code" in attempt:
        return f"the receiver answered {attempt['status_code']}"
    return f"no answer: {attempt.get('failure', 'connection')}"


def subscribed(webhook: Mapping[str, Any], event: WebhookEvent) -> bool:
    return webhook["status"] == WebhookStatus.ACTIVE and event.value in webhook["events"]


def delivery_ref(event: Mapping[str, Any]) -> DeliveryRef:
    """The delivery a task's input names (the input may say more: the error, the execution)."""
    return {
        "tenant_id": str(event["tenant_id"]),
        "webhook_id": str(event["webhook_id"]),
        "delivery_id": str(event["delivery_id"]),
        "event": str(event["event"]),
        "resource_type": str(event["resource_type"]),
        "resource_id": str(event["resource_id"]),
        "patient_id": str(event["patient_id"]),
        "replay": int(event["replay"]),
    }


def delivery_id(tenant_id: str, webhook_id: str, event_id: str) -> str:
    """One delivery per (webhook, event occurrence), whoever reports the event and how often."""
    digest = hashlib.sha256(f"{tenant_id}|{webhook_id}|{event_id}".encode()).hexdigest()
    return "d-" + digest[:20]


def execution_name(ref: DeliveryRef) -> str:
    """Deterministic, so that an event reported twice starts one execution, and each replay
    (numbered) one more. At most 40 + 22 + 6 characters (Step Functions allows 80)."""
    base = f"{ref['tenant_id']}-{ref['delivery_id']}"
    return f"{base}-r{ref['replay']}" if ref["replay"] else base


def secret_hint(secret: str) -> str:
    return "…" + secret[-4:]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def signature_valid(
    secret: str, header: str, body: bytes, now: int, tolerance_seconds: int = 300
) -> bool:
    """The receiver's check (and ours, in tests): the signature matches and is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def signed_headers(
    secret: str, timestamp: int, body: bytes, event: str, delivery: str
) -> dict[str, str]:
    return {
        "Content-Type": "application/fhir+json",
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery,
    }
