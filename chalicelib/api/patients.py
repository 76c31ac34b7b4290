"""Patient routes: staff manage a tenant's patients; a patient reads and edits their own record."""

from __future__ import annotations

from typing import Any

from chalicelib.api.http import (
    PAGING,
    ApiBlueprint,
    ApiRequest,
    ApiResponse,
    QueryParam,
    page_of,
)
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role
from chalicelib.domain.common import Document
from chalicelib.domain.errors import FieldError
from chalicelib.services.registry import services
from chalicelib.services.timelines import PatientTimeline

api = ApiBlueprint(__name__, tag="patients")
CLINIC_OR_SELF = CLINIC_ROLES | {Role.PATIENT}


def phone_checks(principal: Principal, body: Any) -> list[FieldError]:
    return services().patients.field_problems(principal, body)


@api.route(
    "/patients",
    "POST",
    summary="Register a patient",
    roles=CLINIC_ROLES,
    request_schema="patient-create",
    response_schema="patient",
    status=201,
    errors=(400, 401, 403, 409, 413, 415),
    idempotent=True,
    field_checks=phone_checks,
)
def create_patient(request: ApiRequest) -> ApiResponse:
    patient = services().patients.create(request.principal, request.body)
    return ApiResponse(patient, 201, {"Location": f"/patients/{patient['id']}"})


@api.route(
    "/patients",
    "GET",
    summary="List or look up patients",
    roles=CLINIC_ROLES,
    response_schema="patient-list",
    errors=(400, 401, 403),
    query=PAGING,
)
def list_patients(request: ApiRequest) -> dict[str, object]:
    items, next_cursor = services().patients.list(
        request.principal, limit=request.query("limit"), cursor=request.query("cursor")
    )
    return page_of(items, next_cursor)


@api.route(
    "/patients/search",
    "POST",
    summary="Find patients by phone or medical record number",
    roles=CLINIC_ROLES,
    request_schema="patient-search",
    response_schema="patient-list",
    errors=(400, 401, 403, 413, 415),
)
def search_patients(request: ApiRequest) -> dict[str, object]:
    # A phone number or an MRN in a URL would be in every access log: they come in the body.
    return {"items": services().patients.search(request.principal, request.body)}


@api.route(
    "/patients/{patient_id}",
    "GET",
    summary="Read a patient",
    roles=CLINIC_OR_SELF,
    response_schema="patient",
    errors=(401, 403, 404),
)
def get_patient(request: ApiRequest, patient_id: str) -> Document:
    return services().patients.get(request.principal, patient_id)


@api.route(
    "/patients/{patient_id}",
    "PATCH",
    summary="Change a patient",
    roles=CLINIC_OR_SELF,
    request_schema="patient-patch",
    response_schema="patient",
    errors=(400, 401, 403, 404, 409, 413, 415, 428),
    if_match="required",
    field_checks=phone_checks,
)
def patch_patient(request: ApiRequest, patient_id: str) -> Document:
    return services().patients.update(
        request.principal, patient_id, request.body, request.header("if-match")
    )


@api.route(
    "/patients/{patient_id}",
    "DELETE",
    summary="Delete a patient",
    roles=CLINIC_ROLES,
    status=204,
    errors=(400, 401, 403, 404, 409),
    if_match="optional",
)
def delete_patient(request: ApiRequest, patient_id: str) -> None:
    services().patients.delete(request.principal, patient_id, request.header("if-match"))


TIMELINE_WINDOW = (
    QueryParam("from", "The window's start, a moment with its offset (default: 90 days ago)"),
    QueryParam("to", "The window's end (default: 90 days after now); at most 400 days after from"),
)


@api.route(
    "/patients/{patient_id}/timeline",
    "GET",
    summary="A patient's journeys in time order, and why",
    roles=CLINIC_OR_SELF,
    response_schema="patient-timeline",
    errors=(400, 401, 403, 404),
    query=TIMELINE_WINDOW,
)
def get_patient_timeline(request: ApiRequest, patient_id: str) -> PatientTimeline:
    # Read from the journeys' compact records, never from Step Functions history.
    return services().timelines.patient(
        request.principal, patient_id, request.query("from"), request.query("to")
    )


@api.route(
    "/me/timeline",
    "GET",
    summary="My journeys in time order",
    roles={Role.PATIENT},
    response_schema="patient-timeline",
    errors=(400, 401, 403, 404),
    query=TIMELINE_WINDOW,
)
def get_my_timeline(request: ApiRequest) -> PatientTimeline:
    return services().timelines.patient(
        request.principal, None, request.query("from"), request.query("to")
    )
