"""A tenant's message templates."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="messaging")


@api.route(
    "/templates/{step}/{channel}/{language}",
    "PUT",
    summary="Save the wording of a journey message",
    roles={Role.ADMIN},
    request_schema="template-put",
    response_schema="template",
    errors=(400, 401, 403, 404, 409, 413, 415, 428),
    if_match="optional",
)
def put_template(request: ApiRequest, step: str, channel: str, language: str) -> Document:
    return services().templates.put(
        request.principal, step, channel, language, request.body, request.header("if-match")
    )


@api.route(
    "/templates",
    "GET",
    summary="List the tenant's templates",
    roles=CLINIC_ROLES,
    response_schema="template-list",
    errors=(401, 403),
)
def list_templates(request: ApiRequest) -> Document:
    return {"items": services().templates.all(request.principal)}
