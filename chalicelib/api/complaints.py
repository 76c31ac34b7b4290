"""Complaints: filed by patients (their own) or staff (for a patient), recovery tasks opened by
low satisfaction scores, worked by staff through their statuses."""

from __future__ import annotations

from chalicelib.api.http import (
    PAGING,
    ApiBlueprint,
    ApiRequest,
    ApiResponse,
    ErrorCode,
    QueryParam,
    page_of,
)
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="complaints")

INVALID_STATUS_CHANGE = ErrorCode(
    409,
    "invalid_status_change",
    "the complaint cannot go to that status from its own (open → in_progress → resolved | "
    "closed_without_resolution; an ended complaint stays ended)",
)
DEPARTMENTS_ONLY = ErrorCode(
    403,
    "departments_only",
    "staff assigned to departments list their departments' complaints only",
)


@api.route(
    "/complaints",
    "POST",
    summary="File a complaint",
    roles=CLINIC_ROLES | {Role.PATIENT},
    request_schema="complaint-create",
    response_schema="complaint",
    status=201,
    errors=(400, 401, 403, 404, 413, 415),
    idempotent=True,
)
def file_complaint(request: ApiRequest) -> ApiResponse:
    complaint = services().complaints.file(request.principal, request.body)
    return ApiResponse(complaint, 201, {"Location": f"/complaints/{complaint['id']}"})


@api.route(
    "/complaints",
    "GET",
    summary="List complaints",
    roles=CLINIC_ROLES,
    response_schema="complaint-list",
    errors=(400, 401, 403),
    codes=(DEPARTMENTS_ONLY,),
    query=(
        QueryParam("status", "Only complaints with this status"),
        QueryParam("department", "Only this department's complaints"),
        *PAGING,
    ),
)
def list_complaints(request: ApiRequest) -> dict[str, object]:
    items, next_cursor = services().complaints.listing(
        request.principal,
        status=request.query("status"),
        department=request.query("department"),
        limit=request.query("limit"),
        cursor=request.query("cursor"),
    )
    return page_of(items, next_cursor)


@api.route(
    "/complaints/{complaint_id}",
    "GET",
    summary="Read a complaint",
    roles=CLINIC_ROLES,
    response_schema="complaint",
    errors=(401, 403, 404),
)
def get_complaint(request: ApiRequest, complaint_id: str) -> Document:
    return services().complaints.get(request.principal, complaint_id)


@api.route(
    "/complaints/{complaint_id}/status",
    "POST",
    summary="Change a complaint's status, with a note",
    roles=CLINIC_ROLES,
    request_schema="complaint-status-change",
    response_schema="complaint",
    errors=(400, 401, 403, 404, 409, 413, 415),
    codes=(INVALID_STATUS_CHANGE,),
)
def change_complaint_status(request: ApiRequest, complaint_id: str) -> Document:
    return services().complaints.change_status(request.principal, complaint_id, request.body)


@api.route(
    "/me/complaints",
    "GET",
    summary="List my complaints",
    roles={Role.PATIENT},
    response_schema="complaint-list",
    errors=(401, 403),
)
def my_complaints(request: ApiRequest) -> Document:
    return {"items": services().complaints.mine(request.principal)}
