"""Previews of what the journeys would do under the tenant's current settings."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.domain.access import CLINIC_ROLES
from chalicelib.services.journey_previews import CarePlanPreview, JourneyPreview, RecallPreview
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="previews")


@api.route(
    "/journeys/preview",
    "POST",
    summary="Preview an appointment's journey",
    roles=CLINIC_ROLES,
    request_schema="journey-preview-create",
    response_schema="journey-preview",
    errors=(400, 401, 403, 413, 415),
)
def preview_appointment_journey(request: ApiRequest) -> JourneyPreview:
    # A POST for its body only: nothing is stored or sent (services/journey_previews.py).
    return services().journey_previews.appointment(request.principal, request.body)


@api.route(
    "/care-plans/{plan_id}/preview",
    "POST",
    summary="Preview a care plan after an event",
    roles=CLINIC_ROLES,
    request_schema="care-plan-preview-create",
    response_schema="care-plan-preview",
    errors=(400, 401, 403, 404, 413, 415),
)
def preview_care_plan(request: ApiRequest, plan_id: str) -> CarePlanPreview:
    return services().journey_previews.care_plan(request.principal, plan_id, request.body)


@api.route(
    "/recall-rules/{rule_id}/preview",
    "POST",
    summary="Preview a recall rule's cycle",
    roles=CLINIC_ROLES,
    request_schema="recall-rule-preview-create",
    response_schema="recall-rule-preview",
    errors=(400, 401, 403, 404, 413, 415),
)
def preview_recall_rule(request: ApiRequest, rule_id: str) -> RecallPreview:
    return services().journey_previews.recall_rule(request.principal, rule_id, request.body)
