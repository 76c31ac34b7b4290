"""Questionnaire definitions."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="questionnaires")


@api.route(
    "/questionnaires/{questionnaire_id}",
    "PUT",
    summary="Create or replace a questionnaire",
    roles={Role.ADMIN},
    request_schema="questionnaire-put",
    response_schema="questionnaire",
    errors=(400, 401, 403, 409, 413, 415, 428),
    if_match="optional",
)
def put_questionnaire(request: ApiRequest, questionnaire_id: str) -> Document:
    return services().questionnaires.put(
        request.principal, questionnaire_id, request.body, request.header("if-match")
    )


@api.route(
    "/questionnaires/{questionnaire_id}",
    "GET",
    summary="Read a questionnaire",
    roles=CLINIC_ROLES | {Role.PATIENT},
    response_schema="questionnaire",
    errors=(401, 403, 404),
)
def get_questionnaire(request: ApiRequest, questionnaire_id: str) -> Document:
    return services().questionnaires.get(request.principal, questionnaire_id)


@api.route(
    "/questionnaires",
    "GET",
    summary="List questionnaires",
    roles=CLINIC_ROLES,
    response_schema="questionnaire-list",
    errors=(401, 403),
)
def list_questionnaires(request: ApiRequest) -> Document:
    return {"items": services().questionnaires.all(request.principal)}


@api.route(
    "/questionnaires/{questionnaire_id}/responses",
    "POST",
    summary="Start answering a questionnaire",
    roles={Role.PATIENT},
    request_schema="questionnaire-answers",
    response_schema="questionnaire-response",
    status=201,
    errors=(400, 401, 403, 404, 413, 415),
    idempotent=True,
)
def start_response(request: ApiRequest, questionnaire_id: str) -> Document:
    started = services().responses.start(
        request.principal, questionnaire_id, request.body["answers"]
    )
    return started


@api.route(
    "/me/questionnaire-responses/{response_id}",
    "GET",
    summary="Open one of my questionnaire responses (a check-in's link leads here)",
    roles={Role.PATIENT},
    response_schema="questionnaire-response",
    errors=(401, 403, 404),
)
def get_response(request: ApiRequest, response_id: str) -> Document:
    return services().responses.get_own(request.principal, response_id)


@api.route(
    "/me/questionnaire-responses/{response_id}",
    "PATCH",
    summary="Save answers so far",
    roles={Role.PATIENT},
    request_schema="questionnaire-answers",
    response_schema="questionnaire-response",
    errors=(400, 401, 403, 404, 409, 413, 415),
)
def save_response(request: ApiRequest, response_id: str) -> Document:
    return services().responses.save(request.principal, response_id, request.body["answers"])


@api.route(
    "/me/questionnaire-responses/{response_id}/submit",
    "POST",
    summary="Submit a questionnaire",
    roles={Role.PATIENT},
    response_schema="questionnaire-response",
    errors=(400, 401, 403, 404, 409),
)
def submit_response(request: ApiRequest, response_id: str) -> Document:
    return services().responses.submit(request.principal, response_id)


@api.route(
    "/patients/{patient_id}/questionnaire-responses",
    "GET",
    summary="List a patient's questionnaire responses",
    roles=CLINIC_ROLES | {Role.PATIENT},
    response_schema="questionnaire-response-list",
    errors=(401, 403, 404),
)
def patient_responses(request: ApiRequest, patient_id: str) -> Document:
    return {"items": services().responses.for_patient(request.principal, patient_id)}
