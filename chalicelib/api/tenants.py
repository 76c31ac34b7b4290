"""Tenant routes: the operator creates tenants; a tenant's admin reads and edits its own."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, ApiResponse
from chalicelib.domain.access import Role
from chalicelib.domain.common import Document
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="tenants")
READERS = {Role.OPERATOR, Role.ADMIN, Role.STAFF}
EDITORS = {Role.OPERATOR, Role.ADMIN}


@api.route(
    "/tenants",
    "POST",
    summary="Create a tenant",
    roles={Role.OPERATOR},
    request_schema="tenant-create",
    response_schema="tenant",
    status=201,
    errors=(400, 401, 403, 409, 413, 415),
    idempotent=True,
)
def create_tenant(request: ApiRequest) -> ApiResponse:
    tenant = services().tenants.create(request.principal, request.body)
    return ApiResponse(tenant, 201, {"Location": f"/tenants/{tenant['id']}"})


@api.route(
    "/tenants/{tenant_id}",
    "GET",
    summary="Read a tenant",
    roles=READERS,
    response_schema="tenant",
    errors=(401, 403, 404),
)
def get_tenant(request: ApiRequest, tenant_id: str) -> Document:
    return services().tenants.get(request.principal, tenant_id)


@api.route(
    "/tenants/{tenant_id}",
    "PATCH",
    summary="Change a tenant",
    roles=EDITORS,
    request_schema="tenant-patch",
    response_schema="tenant",
    errors=(400, 401, 403, 404, 409, 413, 415, 428),
    if_match="required",
)
def patch_tenant(request: ApiRequest, tenant_id: str) -> Document:
    return services().tenants.update(
        request.principal, tenant_id, request.body, request.header("if-match")
    )
