"""Care plans, recall rules, care events (discharge, surgery) and a patient's care journeys."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.services.care_config import CARE_PLAN, RECALL_RULE
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="aftercare and recall")


@api.route(
    "/care-plans/{plan_id}",
    "PUT",
    summary="Create or replace a care plan",
    roles={Role.ADMIN},
    request_schema="care-plan-put",
    response_schema="care-plan",
    errors=(400, 401, 403, 409, 413, 415, 428),
    if_match="optional",
)
def put_care_plan(request: ApiRequest, plan_id: str) -> Document:
    return services().care_config.put_plan(
        request.principal, plan_id, request.body, request.header("if-match")
    )


@api.route(
    "/care-plans/{plan_id}",
    "GET",
    summary="Read a care plan",
    roles=CLINIC_ROLES,
    response_schema="care-plan",
    errors=(401, 403, 404),
)
def get_care_plan(request: ApiRequest, plan_id: str) -> Document:
    return services().care_config.get(request.principal, CARE_PLAN, plan_id)


@api.route(
    "/care-plans",
    "GET",
    summary="List care plans",
    roles=CLINIC_ROLES,
    response_schema="care-plan-list",
    errors=(401, 403),
)
def list_care_plans(request: ApiRequest) -> Document:
    return {"items": services().care_config.all(request.principal, CARE_PLAN)}


@api.route(
    "/recall-rules/{rule_id}",
    "PUT",
    summary="Create or replace a recall rule",
    roles={Role.ADMIN},
    request_schema="recall-rule-put",
    response_schema="recall-rule",
    errors=(400, 401, 403, 409, 413, 415, 428),
    if_match="optional",
)
def put_recall_rule(request: ApiRequest, rule_id: str) -> Document:
    return services().care_config.put_rule(
        request.principal, rule_id, request.body, request.header("if-match")
    )


@api.route(
    "/recall-rules/{rule_id}",
    "GET",
    summary="Read a recall rule",
    roles=CLINIC_ROLES,
    response_schema="recall-rule",
    errors=(401, 403, 404),
)
def get_recall_rule(request: ApiRequest, rule_id: str) -> Document:
    rule = services().care_config.get(request.principal, RECALL_RULE, rule_id)
    return {
        **rule,
        "conversion": services().analytics.recall_conversion(request.principal, rule_id),
    }


@api.route(
    "/recall-rules",
    "GET",
    summary="List recall rules",
    roles=CLINIC_ROLES,
    response_schema="recall-rule-list",
    errors=(401, 403),
)
def list_recall_rules(request: ApiRequest) -> Document:
    return {"items": services().care_config.all(request.principal, RECALL_RULE)}


@api.route(
    "/patients/{patient_id}/care-events",
    "POST",
    summary="Record a discharge or surgery (its care plans start)",
    roles=CLINIC_ROLES,
    request_schema="care-event-create",
    response_schema="care-event",
    status=201,
    errors=(400, 401, 403, 404, 413, 415),
    idempotent=True,
)
def record_care_event(request: ApiRequest, patient_id: str) -> Document:
    event = services().aftercare.starting.record_event(request.principal, patient_id, request.body)
    return event


@api.route(
    "/patients/{patient_id}/care-journeys",
    "GET",
    summary="A patient's aftercare journeys and recalls",
    roles=CLINIC_ROLES,
    response_schema="care-journey-list",
    errors=(401, 403, 404),
)
def patient_care_journeys(request: ApiRequest, patient_id: str) -> Document:
    return {"items": services().aftercare.views.for_patient(request.principal, patient_id)}


@api.route(
    "/me/booking-invitations/{ref}",
    "GET",
    summary="What a re-check or recall link asks me to book",
    roles={Role.PATIENT},
    response_schema="booking-invitation",
    errors=(401, 403, 404),
)
def booking_invitation(request: ApiRequest, ref: str) -> Document:
    return services().aftercare.views.invitation(request.principal, ref)
