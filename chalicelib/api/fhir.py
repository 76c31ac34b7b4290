"""FHIR R4 routes (`/fhir/...`, FHIR_VERSION 4.3.0) and a patient's export as a FHIR Bundle.

The hospital and the patient come from the token, as on every route: a URL carries ids only
(never a name, phone or MRN), and another tenant's or another patient's id is a 404.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Request

from chalicelib.api.http import PAGING, ApiBlueprint, ApiRequest, ApiResponse, QueryParam, page_of
from chalicelib.api.openapi import VERSION
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role
from chalicelib.domain.errors import FieldError
from chalicelib.domain.fhir import Resource
from chalicelib.domain.fhir_imports import ImportJob, path_problems
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="fhir")
CLINIC_OR_SELF = CLINIC_ROLES | {Role.PATIENT}
BY_PATIENT = (QueryParam("patient", "The patient's id, as Patient/<id> or <id>", required=True),)


def fhir_base(raw: Request) -> str:
    """This API's FHIR base as the caller reached it (`https://<host>[/<prefix>]/fhir`), so each
    entry's fullUrl is an address the caller can read it at. API Gateway's own host names put
    the stage before the route's path, a custom domain its base path: whatever the full path
    has before the route's own path is that prefix."""
    context = raw.context or {}
    host = context.get("domainName") or raw.headers.get("host") or "localhost"
    forwarded = raw.headers.get("x-forwarded-proto")  # API Gateway says https
    scheme = forwarded if forwarded in ("http", "https") else "http"
    route_path = str(context.get("resourcePath") or "").format(**(raw.uri_params or {}))
    full_path = str(context.get("path") or route_path)
    prefix = full_path.removesuffix(route_path) if full_path.endswith(route_path) else ""
    return f"{scheme}://{host}{prefix}/fhir"


@api.route(
    "/fhir/metadata",
    "GET",
    summary="Read the FHIR CapabilityStatement",
    roles=None,
    response_schema="fhir-resource",
)
def get_fhir_metadata(request: ApiRequest) -> Resource:
    return services().fhir.metadata(fhir_base(request.raw), VERSION)


@api.route(
    "/fhir",
    "POST",
    summary="Import patients and appointments from a FHIR transaction Bundle",
    roles={Role.ADMIN},
    request_schema="fhir-transaction",
    response_schema="fhir-transaction-response",
    errors=(400, 401, 403, 409, 413, 415, 503),
)
def post_fhir_transaction(request: ApiRequest) -> Resource:
    return services().fhir_import.transaction(request.principal, request.body)


def import_path_checks(principal: Principal, body: Any) -> list[FieldError]:
    """Each file's path as written, named beside the schema's failures: relative to the
    caller's own import folder only (whether the file exists is checked once the body is
    valid)."""
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, list):
        return []
    return [
        problem
        for index, path in enumerate(files)
        if isinstance(path, str)
        for problem in path_problems(path, f"$.files[{index}]")
    ]


@api.route(
    "/fhir/imports",
    "POST",
    summary="Import a hospital's history from NDJSON files in its import folder",
    roles={Role.ADMIN},
    request_schema="fhir-import-create",
    response_schema="fhir-import",
    status=202,
    errors=(400, 401, 403, 413, 415, 503),
    idempotent=True,
    field_checks=import_path_checks,
)
def post_fhir_import(request: ApiRequest) -> ApiResponse:
    job = services().fhir_bulk_import.start(request.principal, request.body)
    return ApiResponse(job, 202, {"Location": f"/fhir/imports/{job['id']}"})


@api.route(
    "/fhir/imports/{import_id}",
    "GET",
    summary="Read a bulk import's status and progress",
    roles={Role.ADMIN},
    response_schema="fhir-import",
    errors=(401, 403, 404),
)
def get_fhir_import(request: ApiRequest, import_id: str) -> ImportJob:
    return services().fhir_bulk_import.get(request.principal, import_id)


@api.route(
    "/fhir/imports/{import_id}/rejections",
    "GET",
    summary="List the lines a bulk import refused, and why",
    roles={Role.ADMIN},
    response_schema="fhir-import-rejection-list",
    errors=(400, 401, 403, 404),
    query=PAGING,
)
def list_fhir_import_rejections(request: ApiRequest, import_id: str) -> dict[str, object]:
    items, next_cursor = services().fhir_bulk_import.rejections(
        request.principal,
        import_id,
        limit=request.query("limit"),
        cursor=request.query("cursor"),
    )
    return page_of(items, next_cursor)


@api.route(
    "/fhir/Patient/{patient_id}",
    "GET",
    summary="Read a patient as a FHIR Patient",
    roles=CLINIC_OR_SELF,
    response_schema="fhir-resource",
    errors=(401, 403, 404),
)
def get_fhir_patient(request: ApiRequest, patient_id: str) -> Resource:
    return services().fhir.patient(request.principal, patient_id)


@api.route(
    "/fhir/Appointment",
    "GET",
    summary="Search a patient's appointments as a FHIR Bundle",
    roles=CLINIC_OR_SELF,
    response_schema="fhir-bundle",
    errors=(400, 401, 403, 404),
    query=BY_PATIENT,
)
def search_fhir_appointments(request: ApiRequest) -> Resource:
    return services().fhir.appointments(
        request.principal, request.query("patient"), fhir_base(request.raw)
    )


@api.route(
    "/fhir/Questionnaire/{questionnaire_id}",
    "GET",
    summary="Read a questionnaire as a FHIR Questionnaire",
    roles=CLINIC_OR_SELF,
    response_schema="fhir-resource",
    errors=(401, 403, 404),
)
def get_fhir_questionnaire(request: ApiRequest, questionnaire_id: str) -> Resource:
    return services().fhir.questionnaire(request.principal, questionnaire_id)


@api.route(
    "/fhir/Questionnaire/{questionnaire_id}",
    "PUT",
    summary="Create or replace a questionnaire from a FHIR Questionnaire",
    roles={Role.ADMIN},
    request_schema="fhir-questionnaire",
    response_schema="fhir-resource",
    errors=(400, 401, 403, 409, 413, 415, 428),
    if_match="optional",
)
def put_fhir_questionnaire(request: ApiRequest, questionnaire_id: str) -> Resource:
    return services().fhir.import_questionnaire(
        request.principal, questionnaire_id, request.body, request.header("if-match")
    )


@api.route(
    "/fhir/QuestionnaireResponse",
    "GET",
    summary="Search a patient's questionnaire responses as a FHIR Bundle",
    roles=CLINIC_OR_SELF,
    response_schema="fhir-bundle",
    errors=(400, 401, 403, 404),
    query=BY_PATIENT,
)
def search_fhir_questionnaire_responses(request: ApiRequest) -> Resource:
    return services().fhir.questionnaire_responses(
        request.principal, request.query("patient"), fhir_base(request.raw)
    )


@api.route(
    "/patients/{patient_id}/export",
    "GET",
    summary="Export everything held on a patient as a FHIR Bundle",
    roles=CLINIC_ROLES,
    response_schema="fhir-bundle",
    errors=(401, 403, 404),
)
def export_patient(request: ApiRequest, patient_id: str) -> Resource:
    return services().fhir.export(request.principal, patient_id, fhir_base(request.raw))


@api.route(
    "/me/export",
    "GET",
    summary="Export everything held on me as a FHIR Bundle",
    roles={Role.PATIENT},
    response_schema="fhir-bundle",
    errors=(401, 403, 404),
)
def export_my_record(request: ApiRequest) -> Resource:
    return services().fhir.export(request.principal, None, fhir_base(request.raw))
