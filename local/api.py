"""Routes that exist only in the local runtime: the virtual clock, the outbox, the dead letters,
an SMS reply, signing in through the emulated user pool, and onboarding hospitals from their
stack template."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.api.http import ApiBlueprint, ApiRequest, ApiResponse, QueryParam
from chalicelib.domain.errors import invalid
from local.identity import TOKEN_SECONDS, UserPool, sign_in, sign_in_invited
from local.outbox import Outbox
from local.vclock import VirtualClock, parse_duration
from local.webhook_receiver import WebhookReceiver

api = ApiBlueprint(__name__, tag="local")


class _Bound:
    clock: VirtualClock | None = None
    outbox: Outbox | None = None
    inbound_sms_topic: str | None = None
    cognito: Any = None
    user_pool: UserPool | None = None
    onboarder: Any = None
    webhook_receiver: WebhookReceiver | None = None


def bind(virtual_clock: VirtualClock, outbox: Outbox) -> None:
    _Bound.clock = virtual_clock
    _Bound.outbox = outbox


def bind_inbound_topic(topic_arn: str) -> None:
    _Bound.inbound_sms_topic = topic_arn


def bind_webhook_receiver(receiver: WebhookReceiver) -> None:
    _Bound.webhook_receiver = receiver


def bind_user_pool(cognito: Any, pool: UserPool) -> None:
    _Bound.cognito, _Bound.user_pool = cognito, pool


def _clock() -> VirtualClock:
    assert _Bound.clock is not None, "local routes used before the runtime started"
    return _Bound.clock


@api.route(
    "/local/clock",
    "GET",
    summary="Read the virtual clock",
    roles=None,
    response_schema="local-clock",
    local_only=True,
)
def get_clock(request: ApiRequest) -> dict[str, Any]:
    return {"now": clock.iso(_clock().now())}


@api.route(
    "/local/clock",
    "POST",
    summary="Move the virtual clock forward",
    roles=None,
    request_schema="local-clock-change",
    response_schema="local-clock",
    errors=(400, 413, 415),
    local_only=True,
)
def change_clock(request: ApiRequest) -> dict[str, Any]:
    try:
        if "advance" in request.body:
            moved = _clock().advance(parse_duration(request.body["advance"]))
        else:
            moved = _clock().set(datetime.fromisoformat(request.body["set"]))
    except (ValueError, OverflowError) as exc:  # OverflowError: a moment at the end of time
        field = "$.advance" if "advance" in request.body else "$.set"
        raise invalid(field, str(exc)) from exc
    return {"now": clock.iso(moved)}


@api.route(
    "/local/outbox",
    "GET",
    summary="Read what was sent",
    roles=None,
    response_schema="local-outbox",
    local_only=True,
    query=(
        QueryParam("to", "Only messages to this phone, address or ARN"),
        QueryParam("channel", "sms, push, topic or email"),
    ),
)
def get_outbox(request: ApiRequest) -> dict[str, Any]:
    assert _Bound.outbox is not None
    found = _Bound.outbox.messages(to=request.query("to"), channel=request.query("channel"))
    return {"items": [m.as_dict() for m in found]}


@api.route(
    "/local/dead-letters",
    "GET",
    summary="List what still failed after Lambda's retries (the dead-letter queue)",
    roles=None,
    response_schema="local-dead-letters",
    local_only=True,
    query=(QueryParam("function", "Only this function's, e.g. inbound_sms or recall_sweep"),),
)
def get_dead_letters(request: ApiRequest) -> dict[str, Any]:
    from local.dead_letters import dead_letters

    return {"items": dead_letters.listing(function=request.query("function"))}


@api.route(
    "/local/webhook-receiver",
    "GET",
    summary="Read what the local webhook receiver (a hospital's system) was sent",
    roles=None,
    response_schema="local-webhook-receiver",
    local_only=True,
)
def get_webhook_receiver(request: ApiRequest) -> dict[str, Any]:
    """Its URL (register a webhook on it, stage local only) and every request it received."""
    receiver = _Bound.webhook_receiver
    assert receiver is not None, "local routes used before the runtime started"
    return {"url": receiver.url(), "items": [r.as_dict() for r in receiver.received()]}


@api.route(
    "/local/sms-reply",
    "POST",
    summary="Receive an SMS reply from a patient",
    roles=None,
    request_schema="local-sms-reply",
    response_schema="local-sms-reply-sent",
    status=202,
    errors=(400, 413, 415),
    local_only=True,
)
def sms_reply(request: ApiRequest) -> ApiResponse:
    """Publishes the reply on the inbound SMS topic, as two-way SMS does on AWS."""
    import json
    import uuid

    from chalicelib.adapters.clients import client

    assert _Bound.inbound_sms_topic is not None
    assert _Bound.outbox is not None
    message_id = str(uuid.uuid4())
    to = request.body.get("to")
    if to is None:
        # As a phone replies in the thread: to whatever the last text to this number came from.
        texts = _Bound.outbox.messages(to=request.body["from"], channel="sms")
        to = texts[-1].sender if texts else None
    notification = {
        "originationNumber": request.body["from"],
        "messageBody": request.body["text"],
        "inboundMessageId": message_id,
    }
    if to and to.startswith("+"):
        notification["destinationNumber"] = to
    client("sns").publish(TopicArn=_Bound.inbound_sms_topic, Message=json.dumps(notification))
    return ApiResponse({"inbound_message_id": message_id}, 202)


@api.route(
    "/local/sign-in",
    "POST",
    summary="Sign in through the emulated user pool as a new user of a role",
    roles=None,
    request_schema="local-sign-in",
    response_schema="local-signed-in",
    errors=(400, 413, 415),
    local_only=True,
)
def local_sign_in(request: ApiRequest) -> dict[str, Any]:
    """What `python -m local token` prints: the pool's ID token for a new user of the role."""
    assert _Bound.user_pool is not None, "local routes used before the runtime started"
    body = request.body
    if "email" in body:
        # An invited account (a hospital's first admin, a staff member): a new password stands
        # in for the temporary one the invitation email carries.
        try:
            token = sign_in_invited(_Bound.cognito, _Bound.user_pool, body["email"])
        except _Bound.cognito.exceptions.UserNotFoundException as exc:
            raise invalid("$.email", "no account has this address") from exc
        return {"id_token": token, "expires_in": TOKEN_SECONDS}
    token = sign_in(
        _Bound.cognito,
        _Bound.user_pool,
        body["role"],
        body.get("tenant_id"),
        body.get("patient_id"),
    )
    return {"id_token": token, "expires_in": TOKEN_SECONDS}


def bind_onboarder(onboarder: Any) -> None:
    _Bound.onboarder = onboarder


def _stack_view(stack: Any, request: str) -> dict[str, Any]:
    return {
        "tenant_id": stack.parameters["TenantId"],
        "stack": stack.name,
        "request": request,
        "resources": dict(sorted(stack.physical_ids.items())),
        "outputs": stack.outputs,
        "provisioner_answers": [
            {"request": a["RequestType"], "status": a["Status"], "reason": a.get("Reason", "")}
            for a in stack.responses
        ],
    }


@api.route(
    "/local/hospitals",
    "POST",
    summary="Onboard a hospital (or update its stack) from infra/hospital.yaml",
    roles=None,
    request_schema="local-hospital",
    response_schema="local-hospital-stack",
    errors=(400, 409, 413, 415),
    local_only=True,
)
def onboard_hospital(request: ApiRequest) -> dict[str, Any]:
    """What `make onboard HOSPITAL=<file>` sends: the hospital file, deployed as its stack."""
    from chalicelib.domain.errors import Conflict
    from infra.hospital_parameters import stack_parameters
    from local.onboard import OnboardingFailed

    onboarder = _Bound.onboarder
    assert onboarder is not None, "local routes used before the runtime started"
    parameters = stack_parameters(request.body, stage=onboarder.stage)
    updating = parameters["TenantId"] in onboarder.stacks
    try:
        stack = onboarder.deploy(parameters)
    except OnboardingFailed as exc:
        raise Conflict(str(exc), code="conflict") from exc
    return _stack_view(stack, "Update" if updating else "Create")


@api.route(
    "/local/hospitals/{tenant_id}",
    "DELETE",
    summary="Delete a hospital's stack (its data is kept; the tenant is deactivated)",
    roles=None,
    response_schema="local-hospital-stack",
    status=200,
    errors=(404, 409),
    local_only=True,
)
def offboard_hospital(request: ApiRequest, tenant_id: str) -> dict[str, Any]:
    from chalicelib.domain.errors import Conflict, NotFound
    from local.onboard import OnboardingFailed

    onboarder = _Bound.onboarder
    assert onboarder is not None, "local routes used before the runtime started"
    try:
        stack = onboarder.delete(tenant_id)
    except KeyError as exc:
        raise NotFound("no stack for this hospital") from exc
    except OnboardingFailed as exc:
        raise Conflict(str(exc), code="conflict") from exc
    return _stack_view(stack, "Delete")


@api.route(
    "/local/analytics/rebuild",
    "POST",
    summary="Check or rebuild a tenant's analytics counters from its records",
    roles=None,
    request_schema="local-analytics-rebuild",
    response_schema="local-analytics-rebuilt",
    errors=(400, 413, 415),
    local_only=True,
)
def rebuild_analytics(request: ApiRequest) -> Any:
    from chalicelib.services.registry import services

    return services().analytics.rebuild(
        request.body["tenant_id"], check_only=bool(request.body.get("check_only", False))
    )
