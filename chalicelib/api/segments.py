"""Segment routes: staff see a tenant's segments and list a segment's patients."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, QueryParam
from chalicelib.domain.access import CLINIC_ROLES
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="segments")


@api.route(
    "/segments",
    "GET",
    summary="List the patient segments",
    roles=CLINIC_ROLES,
    response_schema="segment-list",
    errors=(401, 403),
)
def list_segments(request: ApiRequest) -> dict[str, object]:
    return {"items": services().segments.definitions(request.principal)}


@api.route(
    "/segments/{segment}/patients",
    "GET",
    summary="List a segment's patients",
    roles=CLINIC_ROLES,
    response_schema="patient-list",
    errors=(400, 401, 403, 404),
    query=(
        QueryParam("limit", "Page size, 1 to 200 (default 50)"),
        QueryParam("cursor", "The next_cursor of the previous page"),
    ),
)
def list_segment_patients(request: ApiRequest, segment: str) -> dict[str, object]:
    items, next_cursor = services().segments.patients(
        request.principal,
        segment,
        limit=request.query("limit"),
        cursor=request.query("cursor"),
    )
    page: dict[str, object] = {"items": items}
    if next_cursor:
        page["next_cursor"] = next_cursor
    return page
