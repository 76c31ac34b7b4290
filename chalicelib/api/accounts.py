"""Accounts: a hospital's admins manage staff; staff send patients link codes; the app redeems
them and chooses the hospital its tokens speak for."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, ApiResponse
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.services.account_links import APP_ROLES
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="accounts")


@api.route(
    "/staff",
    "POST",
    summary="Invite a staff member",
    roles={Role.ADMIN},
    request_schema="staff-invite",
    response_schema="staff",
    status=201,
    errors=(400, 401, 403, 409, 413, 415, 503),
    idempotent=True,
)
def invite_staff(request: ApiRequest) -> ApiResponse:
    record = services().staff.invite(request.principal, request.body)
    return ApiResponse(dict(record), 201, {"Location": f"/staff/{record['id']}"})


@api.route(
    "/staff",
    "GET",
    summary="List staff members",
    roles=CLINIC_ROLES,
    response_schema="staff-list",
    errors=(401, 403),
)
def list_staff(request: ApiRequest) -> Document:
    return {"items": [dict(r) for r in services().staff.list(request.principal)]}


@api.route(
    "/staff/{staff_id}",
    "GET",
    summary="Read a staff member",
    roles=CLINIC_ROLES,
    response_schema="staff",
    errors=(401, 403, 404),
)
def get_staff(request: ApiRequest, staff_id: str) -> Document:
    return dict(services().staff.get(request.principal, staff_id))


@api.route(
    "/staff/{staff_id}",
    "PATCH",
    summary="Change or disable a staff member",
    roles={Role.ADMIN},
    request_schema="staff-patch",
    response_schema="staff",
    errors=(400, 401, 403, 404, 409, 413, 415, 428, 503),
    if_match="required",
)
def patch_staff(request: ApiRequest, staff_id: str) -> Document:
    return dict(
        services().staff.update(
            request.principal, staff_id, request.body, request.header("if-match")
        )
    )


@api.route(
    "/patients/{patient_id}/link-invitations",
    "POST",
    summary="Send a patient a code that links their app account",
    roles=CLINIC_ROLES,
    request_schema="link-invitation-create",
    response_schema="link-invitation",
    status=201,
    errors=(400, 401, 403, 404, 409, 413, 415, 429, 503),
)
def invite_patient(request: ApiRequest, patient_id: str) -> ApiResponse:
    sent = services().account_links.invite(request.principal, patient_id, request.body)
    return ApiResponse(sent, 201)


@api.route(
    "/me/link",
    "POST",
    summary="Link this app account to a patient record with a code",
    roles=APP_ROLES,
    request_schema="link-redeem",
    response_schema="account-link",
    errors=(400, 401, 403, 409, 413, 415, 429, 503),
)
def redeem_link_code(request: ApiRequest) -> Document:
    return services().account_links.redeem(request.principal, request.body)


@api.route(
    "/me/links",
    "GET",
    summary="List the hospitals this app account is linked at",
    roles=APP_ROLES,
    response_schema="account-link-list",
    errors=(401, 403),
)
def list_links(request: ApiRequest) -> Document:
    return {"items": services().account_links.links(request.principal)}


@api.route(
    "/me/hospital",
    "PUT",
    summary="Choose the hospital this account's next tokens speak for",
    roles=APP_ROLES,
    request_schema="hospital-choice",
    response_schema="account-link",
    errors=(400, 401, 403, 409, 413, 415, 503),
)
def choose_hospital(request: ApiRequest) -> Document:
    return services().account_links.choose(request.principal, request.body)
