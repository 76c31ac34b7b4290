"""Clinicians, schedules and free slots."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, QueryParam
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="scheduling")
ADMINS = {Role.ADMIN}
EVERYONE = CLINIC_ROLES | {Role.PATIENT}
PUT_ERRORS = (400, 401, 403, 409, 413, 415, 428)


@api.route(
    "/clinicians/{clinician_id}",
    "PUT",
    summary="Create or replace a clinician",
    roles=ADMINS,
    request_schema="clinician-put",
    response_schema="clinician",
    errors=PUT_ERRORS,
    if_match="optional",
)
def put_clinician(request: ApiRequest, clinician_id: str) -> Document:
    return services().scheduling.put_clinician(
        request.principal, clinician_id, request.body, request.header("if-match")
    )


@api.route(
    "/clinicians",
    "GET",
    summary="List clinicians",
    roles=CLINIC_ROLES,
    response_schema="clinician-list",
    errors=(401, 403),
)
def list_clinicians(request: ApiRequest) -> Document:
    return {"items": services().scheduling.records(request.principal, "CLINICIAN")}


@api.route(
    "/schedules/{schedule_id}",
    "PUT",
    summary="Create or replace a schedule",
    roles=ADMINS,
    request_schema="schedule-put",
    response_schema="schedule",
    errors=PUT_ERRORS,
    if_match="optional",
)
def put_schedule(request: ApiRequest, schedule_id: str) -> Document:
    return services().scheduling.put_schedule(
        request.principal, schedule_id, request.body, request.header("if-match")
    )


@api.route(
    "/schedules",
    "GET",
    summary="List schedules",
    roles=CLINIC_ROLES,
    response_schema="schedule-list",
    errors=(401, 403),
)
def list_schedules(request: ApiRequest) -> Document:
    return {"items": services().scheduling.records(request.principal, "SCHEDULE")}


@api.route(
    "/schedules/{schedule_id}",
    "GET",
    summary="Read a schedule",
    roles=CLINIC_ROLES,
    response_schema="schedule",
    errors=(401, 403, 404),
)
def get_schedule(request: ApiRequest, schedule_id: str) -> Document:
    return services().scheduling.schedule(request.principal, schedule_id)


@api.route(
    "/slots",
    "GET",
    summary="List free slots (none past the tenant's booking horizon)",
    roles=EVERYONE,
    response_schema="slot-list",
    errors=(400, 401, 403),
    query=(
        QueryParam("department", "Department id (required)"),
        QueryParam("from", "Date (hospital midnight) or date-time (required)"),
        QueryParam("to", "Date or date-time, at most 31 days after from (required)"),
        QueryParam("type", "Only schedules taking this appointment type"),
    ),
)
def list_slots(request: ApiRequest) -> Document:
    return {
        "items": services().scheduling.free_slots(
            request.principal,
            request.query("department"),
            request.query("from"),
            request.query("to"),
            request.query("type"),
        )
    }
