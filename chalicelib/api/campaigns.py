"""Campaign routes: staff start a campaign on a segment and follow its progress."""

from __future__ import annotations

from chalicelib.api.http import PAGING, ApiBlueprint, ApiRequest, ApiResponse, page_of
from chalicelib.domain.access import CLINIC_ROLES
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="campaigns")


@api.route(
    "/campaigns",
    "POST",
    summary="Start a campaign on a segment",
    roles=CLINIC_ROLES,
    request_schema="campaign-create",
    response_schema="campaign",
    status=201,
    errors=(400, 401, 403, 404, 409, 413, 415),
    idempotent=True,
)
def create_campaign(request: ApiRequest) -> ApiResponse:
    campaign = services().campaigns.create(request.principal, request.body)
    return ApiResponse(campaign, 201, {"Location": f"/campaigns/{campaign['id']}"})


@api.route(
    "/campaigns",
    "GET",
    summary="List campaigns",
    roles=CLINIC_ROLES,
    response_schema="campaign-list",
    errors=(400, 401, 403),
    query=PAGING,
)
def list_campaigns(request: ApiRequest) -> dict[str, object]:
    items, next_cursor = services().campaigns.list(
        request.principal, limit=request.query("limit"), cursor=request.query("cursor")
    )
    return page_of(items, next_cursor)


@api.route(
    "/campaigns/{campaign_id}",
    "GET",
    summary="Read a campaign and its progress",
    roles=CLINIC_ROLES,
    response_schema="campaign",
    errors=(401, 403, 404),
)
def get_campaign(request: ApiRequest, campaign_id: str) -> dict[str, object]:
    return services().campaigns.get(request.principal, campaign_id)
