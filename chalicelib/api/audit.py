"""Audit routes: who read or changed a patient's record (admins), what one staff member looked
at (admins), whether a day's chain is intact (admins), and the patient's own access log."""

from __future__ import annotations

from chalicelib.api.http import PAGING, ApiBlueprint, ApiRequest, QueryParam, page_of
from chalicelib.domain.access import Role
from chalicelib.domain.audit import ChainVerification
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="audit")


@api.route(
    "/patients/{patient_id}/audit",
    "GET",
    summary="Read who accessed a patient's record",
    roles={Role.ADMIN},
    response_schema="record-audit",
    errors=(400, 401, 403),
    query=PAGING,
)
def get_patient_audit(request: ApiRequest, patient_id: str) -> dict[str, object]:
    return page_of(
        *services().audit.for_patient(
            request.principal, patient_id, request.query("limit"), request.query("cursor")
        )
    )


@api.route(
    "/audit",
    "GET",
    summary="Read what one staff member accessed",
    roles={Role.ADMIN},
    response_schema="audit-entry-list",
    errors=(400, 401, 403),
    query=(QueryParam("actor", "The staff member's id (their account's sub)"), *PAGING),
)
def list_audit(request: ApiRequest) -> dict[str, object]:
    return page_of(
        *services().audit.for_actor(
            request.principal,
            request.query("actor"),
            request.query("limit"),
            request.query("cursor"),
        )
    )


@api.route(
    "/audit/verification",
    "GET",
    summary="Verify a day's audit chain",
    roles={Role.ADMIN},
    response_schema="audit-verification",
    errors=(400, 401, 403),
    query=(QueryParam("day", "The UTC day of the chain, YYYY-MM-DD"),),
)
def verify_audit(request: ApiRequest) -> ChainVerification:
    return services().audit.verify(request.principal, request.query("day"))


@api.route(
    "/me/access-log",
    "GET",
    summary="Read who accessed my record",
    roles={Role.PATIENT},
    response_schema="access-log",
    errors=(400, 401, 403),
    query=PAGING,
)
def get_access_log(request: ApiRequest) -> dict[str, object]:
    return page_of(
        *services().audit.access_log(
            request.principal, request.query("limit"), request.query("cursor")
        )
    )
