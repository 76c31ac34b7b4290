"""Erasure: an admin erases a patient (with a reason); a patient asks for it from the app."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, ApiResponse
from chalicelib.domain.access import Role
from chalicelib.services.erasure import ErasureResult
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="privacy")


@api.route(
    "/patients/{patient_id}/erasure",
    "POST",
    summary="Erase a patient",
    roles={Role.ADMIN},
    request_schema="erasure-create",
    response_schema="erasure",
    errors=(400, 401, 403, 404, 413, 415),
)
def erase_patient(request: ApiRequest, patient_id: str) -> ErasureResult:
    return services().erasure.request(request.principal, patient_id, request.body)


@api.route(
    "/me/erasure-request",
    "POST",
    summary="Ask the hospital to erase my data",
    roles={Role.PATIENT},
    response_schema="erasure-requested",
    status=202,
    errors=(401, 403, 404),
)
def request_erasure(request: ApiRequest) -> ApiResponse:
    return ApiResponse(services().erasure.requested_by_patient(request.principal), 202)
