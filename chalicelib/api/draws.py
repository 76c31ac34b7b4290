"""Draw routes: staff announce and close draws among member classes, an admin runs them, anyone
with the revealed seed and list can rerun them; patients see their own draws."""

from __future__ import annotations

from chalicelib.api.http import PAGING, ApiBlueprint, ApiRequest, ApiResponse, ErrorCode, page_of
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="draws")

STATUS_CHANGE = ErrorCode(409, "invalid_status_change", "the draw's status does not allow it")


@api.route(
    "/draws",
    "POST",
    summary="Announce a draw among member classes",
    roles=CLINIC_ROLES,
    request_schema="draw-create",
    response_schema="draw",
    status=201,
    errors=(400, 401, 403, 413, 415),
    idempotent=True,
)
def create_draw(request: ApiRequest) -> ApiResponse:
    draw = services().draws.create(request.principal, request.body)
    return ApiResponse(draw, 201, {"Location": f"/draws/{draw['id']}"})


@api.route(
    "/draws",
    "GET",
    summary="List draws",
    roles=CLINIC_ROLES,
    response_schema="draw-list",
    errors=(400, 401, 403),
    query=PAGING,
)
def list_draws(request: ApiRequest) -> dict[str, object]:
    items, next_cursor = services().draws.listing(
        request.principal, limit=request.query("limit"), cursor=request.query("cursor")
    )
    return page_of(items, next_cursor)


@api.route(
    "/draws/{draw_id}",
    "GET",
    summary="Read a draw",
    roles=CLINIC_ROLES,
    response_schema="draw",
    errors=(401, 403, 404),
)
def get_draw(request: ApiRequest, draw_id: str) -> Document:
    return services().draws.get(request.principal, draw_id)


@api.route(
    "/draws/{draw_id}/close",
    "POST",
    summary="Close a draw: commit its eligible list and seed",
    roles=CLINIC_ROLES,
    response_schema="draw",
    errors=(401, 403, 404, 409),
    codes=(
        STATUS_CHANGE,
        ErrorCode(409, "draw_at_passed", "the draw's time has passed before it was closed"),
    ),
)
def close_draw(request: ApiRequest, draw_id: str) -> Document:
    return services().draws.close(request.principal, draw_id)


@api.route(
    "/draws/{draw_id}/run",
    "POST",
    summary="Run a draw",
    roles={Role.ADMIN},
    response_schema="draw",
    errors=(401, 403, 404, 409),
    codes=(
        STATUS_CHANGE,
        ErrorCode(409, "draw_not_committed", "the draw was not closed: nothing is committed"),
        ErrorCode(409, "draw_not_due", "the draw's time has not come"),
    ),
)
def run_draw(request: ApiRequest, draw_id: str) -> Document:
    """Once: a draw that has run answers its stored result again."""
    return services().draws.run(request.principal, draw_id)


@api.route(
    "/draws/{draw_id}/cancel",
    "POST",
    summary="Cancel a draw",
    roles={Role.ADMIN},
    response_schema="draw",
    errors=(401, 403, 404, 409),
    codes=(STATUS_CHANGE,),
)
def cancel_draw(request: ApiRequest, draw_id: str) -> Document:
    return services().draws.cancel(request.principal, draw_id)


@api.route(
    "/draws/{draw_id}/verification",
    "GET",
    summary="Read what is needed to verify a draw",
    roles=CLINIC_ROLES,
    response_schema="draw-verification",
    errors=(401, 403, 404, 409),
    codes=(ErrorCode(409, "draw_not_drawn", "the draw has not run: nothing is revealed"),),
)
def verify_draw(request: ApiRequest, draw_id: str) -> Document:
    return services().draws.verification(request.principal, draw_id)


@api.route(
    "/me/draws",
    "GET",
    summary="List the draws I take part in",
    roles={Role.PATIENT},
    response_schema="my-draw-list",
    errors=(401, 403),
)
def my_draws(request: ApiRequest) -> Document:
    return {"items": services().draws.mine(request.principal)}
