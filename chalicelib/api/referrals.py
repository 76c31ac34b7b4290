"""Referral routes: a patient's own referral code, and the patients they referred."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, ErrorCode
from chalicelib.domain.access import Role
from chalicelib.domain.common import Document
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="referrals")

REFERRALS_DISABLED = ErrorCode(409, "referrals_disabled", "the hospital has referrals switched off")


@api.route(
    "/me/referral-code",
    "GET",
    summary="Read my referral code",
    roles={Role.PATIENT},
    response_schema="referral-code",
    errors=(401, 403, 404, 409),
    codes=(REFERRALS_DISABLED,),
)
def my_referral_code(request: ApiRequest) -> Document:
    """The patient's code, made on first request (once, however many requests race)."""
    return services().referrals.my_code(request.principal)


@api.route(
    "/me/referrals",
    "GET",
    summary="List the patients I referred",
    roles={Role.PATIENT},
    response_schema="referral-list",
    errors=(401, 403),
)
def my_referrals(request: ApiRequest) -> Document:
    return {"items": services().referrals.mine(request.principal)}
