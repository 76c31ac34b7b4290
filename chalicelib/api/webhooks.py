"""Webhook routes: a hospital's admins register where its own systems hear of appointment
status changes, questionnaire responses and urgent alerts; staff replay what never got through."""

from __future__ import annotations

from typing import Any

from chalicelib.api.http import PAGING, ApiBlueprint, ApiRequest, ApiResponse, page_of
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role
from chalicelib.domain.errors import FieldError
from chalicelib.domain.webhooks import url_problems
from chalicelib.services.registry import services
from chalicelib.settings import get_settings

api = ApiBlueprint(__name__, tag="webhooks")
ADMINS = frozenset({Role.ADMIN})


def url_checks(principal: Principal, body: Any) -> list[FieldError]:
    """The URL's own rules, named beside the schema's failures (its addresses are judged once
    the body is valid)."""
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str):
        return []
    return url_problems(url, allow_loopback_http=get_settings().allow_loopback_webhooks)


@api.route(
    "/webhooks",
    "POST",
    summary="Register a webhook",
    roles=ADMINS,
    request_schema="webhook-create",
    response_schema="webhook",
    status=201,
    errors=(400, 401, 403, 409, 413, 415),
    idempotent=True,
    field_checks=url_checks,
)
def create_webhook(request: ApiRequest) -> ApiResponse:
    webhook = services().webhooks.register(request.principal, request.body)
    return ApiResponse(webhook, 201, {"Location": f"/webhooks/{webhook['id']}"})


@api.route(
    "/webhooks",
    "GET",
    summary="List webhooks",
    roles=ADMINS,
    response_schema="webhook-list",
    errors=(401, 403),
)
def list_webhooks(request: ApiRequest) -> dict[str, object]:
    return {"items": services().webhooks.registered(request.principal)}


@api.route(
    "/webhooks/{webhook_id}",
    "DELETE",
    summary="Delete a webhook",
    roles=ADMINS,
    status=204,
    errors=(401, 403, 404),
)
def delete_webhook(request: ApiRequest, webhook_id: str) -> None:
    services().webhooks.delete(request.principal, webhook_id)


@api.route(
    "/webhooks/dead-letters",
    "GET",
    summary="List webhook deliveries that never got through",
    roles=CLINIC_ROLES,
    response_schema="webhook-dead-letter-list",
    errors=(400, 401, 403),
    query=PAGING,
)
def list_webhook_dead_letters(request: ApiRequest) -> dict[str, object]:
    items, next_cursor = services().webhooks.dead_letters(
        request.principal, limit=request.query("limit"), cursor=request.query("cursor")
    )
    return page_of(items, next_cursor)


@api.route(
    "/webhooks/dead-letters/{delivery_id}/replay",
    "POST",
    summary="Deliver a dead letter again",
    roles=CLINIC_ROLES,
    response_schema="webhook-dead-letter",
    status=202,
    errors=(401, 403, 404, 409),
)
def replay_webhook_dead_letter(request: ApiRequest, delivery_id: str) -> ApiResponse:
    return ApiResponse(services().webhooks.replay(request.principal, delivery_id), 202)
