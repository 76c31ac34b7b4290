"""Loyalty routes: the published rules, a patient's points, history, redemptions and vouchers,
staff adjustments and vouchers taken at the desk, and the rewards catalogue."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, ApiResponse, QueryParam
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.domain.errors import invalid
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="loyalty")
PATIENTS = frozenset({Role.PATIENT})
ADMINS = frozenset({Role.ADMIN})
EVERYONE = CLINIC_ROLES | PATIENTS


@api.route(
    "/loyalty/rules",
    "GET",
    summary="Read the hospital's published loyalty rules (or one earlier version)",
    roles=EVERYONE,
    response_schema="loyalty-rules",
    errors=(400, 401, 403, 404),
    query=(QueryParam("version", "An earlier published version (default: the current one)"),),
)
def get_loyalty_rules(request: ApiRequest) -> Document:
    raw = request.query("version")
    if raw is not None and not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        raise invalid("$.version", "must be a whole number")
    return dict(services().loyalty.rules(request.principal, int(raw) if raw else None))


@api.route(
    "/loyalty/rules",
    "PUT",
    summary="Publish a new version of the loyalty rules",
    roles=ADMINS,
    request_schema="loyalty-rules-put",
    response_schema="loyalty-rules",
    errors=(400, 401, 403, 409, 413, 415),
)
def put_loyalty_rules(request: ApiRequest) -> Document:
    return dict(services().loyalty.publish(request.principal, request.body))


@api.route(
    "/me/points",
    "GET",
    summary="My points: balance, pending points and points expiring soon",
    roles=PATIENTS,
    response_schema="points",
    errors=(401, 403),
)
def my_points(request: ApiRequest) -> Document:
    return dict(services().loyalty.my_points(request.principal))


@api.route(
    "/me/points/history",
    "GET",
    summary="My points' history, newest first",
    roles=PATIENTS,
    response_schema="points-history",
    errors=(401, 403),
)
def my_points_history(request: ApiRequest) -> Document:
    return {"items": services().loyalty.my_history(request.principal)}


@api.route(
    "/me/redemptions",
    "POST",
    summary="Redeem points for a reward: a single-use voucher",
    roles=PATIENTS,
    request_schema="redemption-create",
    response_schema="voucher",
    status=201,
    errors=(400, 401, 403, 404, 409, 413, 415),
    idempotent=True,
)
def redeem(request: ApiRequest) -> ApiResponse:
    return ApiResponse(dict(services().loyalty.redeem(request.principal, request.body)), 201)


@api.route(
    "/me/vouchers",
    "GET",
    summary="My vouchers",
    roles=PATIENTS,
    response_schema="voucher-list",
    errors=(401, 403),
)
def my_vouchers(request: ApiRequest) -> Document:
    return {"items": services().loyalty.my_vouchers(request.principal)}


@api.route(
    "/patients/{patient_id}/points",
    "GET",
    summary="A patient's points and their whole history (staff)",
    roles=CLINIC_ROLES,
    response_schema="patient-points",
    errors=(401, 403, 404),
)
def patient_points(request: ApiRequest, patient_id: str) -> Document:
    return services().loyalty.patient_points(request.principal, patient_id)


@api.route(
    "/patients/{patient_id}/points/adjustments",
    "POST",
    summary="Adjust a patient's points, with a reason (kept in the ledger with who made it)",
    roles=CLINIC_ROLES,
    request_schema="points-adjustment-create",
    response_schema="points-history-line",
    status=201,
    errors=(400, 401, 403, 404, 409, 413, 415),
    idempotent=True,
)
def adjust_points(request: ApiRequest, patient_id: str) -> ApiResponse:
    line = services().loyalty.adjust(request.principal, patient_id, request.body)
    return ApiResponse(dict(line), 201)


@api.route(
    "/vouchers/{code}/use",
    "POST",
    summary="Take a voucher at the desk (once, before it expires)",
    roles=CLINIC_ROLES,
    response_schema="voucher",
    errors=(401, 403, 404, 409),
)
def use_voucher(request: ApiRequest, code: str) -> Document:
    return dict(services().loyalty.use_voucher(request.principal, code))


@api.route(
    "/rewards",
    "GET",
    summary="The rewards catalogue (patients see the active rewards)",
    roles=EVERYONE,
    response_schema="reward-list",
    errors=(401, 403),
)
def list_rewards(request: ApiRequest) -> Document:
    return {"items": services().loyalty.rewards(request.principal)}


@api.route(
    "/rewards/{reward_id}",
    "PUT",
    summary="Create or change a reward (its stock changes by restocking)",
    roles=ADMINS,
    request_schema="reward-put",
    response_schema="reward",
    errors=(400, 401, 403, 409, 413, 415),
)
def put_reward(request: ApiRequest, reward_id: str) -> Document:
    return dict(services().loyalty.put_reward(request.principal, reward_id, request.body))


@api.route(
    "/rewards/{reward_id}/restock",
    "POST",
    summary="Add to (or take from) a reward's stock",
    roles=ADMINS,
    request_schema="reward-restock",
    response_schema="reward",
    errors=(400, 401, 403, 404, 409, 413, 415),
)
def restock_reward(request: ApiRequest, reward_id: str) -> Document:
    return dict(services().loyalty.restock(request.principal, reward_id, request.body))
