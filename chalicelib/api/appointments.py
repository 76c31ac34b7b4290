"""Appointments: booking and every change of its life, for patients and staff."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest, ApiResponse, ErrorCode, QueryParam
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.domain.scheduling import BEYOND_BOOKING_HORIZON
from chalicelib.services.registry import services
from chalicelib.services.timelines import AppointmentTimeline

api = ApiBlueprint(__name__, tag="appointments")
EVERYONE = CLINIC_ROLES | {Role.PATIENT}
CHANGE_ERRORS = (401, 403, 404, 409)
WHEN = QueryParam("when", "upcoming (default) or past")
BEYOND_HORIZON = ErrorCode(
    400,
    BEYOND_BOOKING_HORIZON,
    "the slot starts after the tenant's booking horizon (booking.horizon_days, at $.slot.start)",
)


@api.route(
    "/appointments",
    "POST",
    summary="Book an appointment",
    roles=EVERYONE,
    request_schema="appointment-create",
    response_schema="appointment",
    status=201,
    errors=(400, 401, 403, 409, 413, 415),
    codes=(BEYOND_HORIZON,),
    idempotent=True,
)
def book_appointment(request: ApiRequest) -> ApiResponse:
    booked = services().appointments.book(
        request.principal, request.body, request.header("idempotency-key")
    )
    return ApiResponse(booked, 201, {"Location": f"/appointments/{booked['id']}"})


@api.route(
    "/appointments/{appointment_id}",
    "GET",
    summary="Read an appointment",
    roles=EVERYONE,
    response_schema="appointment",
    errors=(401, 403, 404),
)
def get_appointment(request: ApiRequest, appointment_id: str) -> Document:
    return services().appointments.get(request.principal, appointment_id)


@api.route(
    "/appointments/{appointment_id}/timeline",
    "GET",
    summary="An appointment's journeys, step by step, and why",
    roles=EVERYONE,
    response_schema="appointment-timeline",
    errors=(401, 403, 404),
)
def get_appointment_timeline(request: ApiRequest, appointment_id: str) -> AppointmentTimeline:
    # Read from the journeys' compact records, never from Step Functions history.
    return services().timelines.appointment(request.principal, appointment_id)


@api.route(
    "/me/appointments",
    "GET",
    summary="List my appointments",
    roles={Role.PATIENT},
    response_schema="appointment-list",
    errors=(400, 401, 403),
    query=(WHEN,),
)
def my_appointments(request: ApiRequest) -> Document:
    return {
        "items": services().appointments.for_patient(request.principal, None, request.query("when"))
    }


@api.route(
    "/patients/{patient_id}/appointments",
    "GET",
    summary="List a patient's appointments",
    roles=EVERYONE,
    response_schema="appointment-list",
    errors=(400, 401, 403, 404),
    query=(WHEN,),
)
def patient_appointments(request: ApiRequest, patient_id: str) -> Document:
    return {
        "items": services().appointments.for_patient(
            request.principal, patient_id, request.query("when")
        )
    }


@api.route(
    "/departments/{department}/appointments",
    "GET",
    summary="List a department's appointments of a day",
    roles=CLINIC_ROLES,
    response_schema="appointment-list",
    errors=(400, 401, 403, 404),
    query=(QueryParam("date", "Local date at the hospital (default today)"),),
)
def department_day(request: ApiRequest, department: str) -> Document:
    return {
        "items": services().appointments.day_list(
            request.principal, department, request.query("date")
        )
    }


@api.route(
    "/appointments/{appointment_id}/confirm",
    "POST",
    summary="Confirm an appointment",
    roles=EVERYONE,
    response_schema="appointment",
    errors=CHANGE_ERRORS,
)
def confirm_appointment(request: ApiRequest, appointment_id: str) -> Document:
    return services().appointments.confirm(request.principal, appointment_id)


@api.route(
    "/appointments/{appointment_id}/cancel",
    "POST",
    summary="Cancel an appointment",
    roles=EVERYONE,
    response_schema="appointment",
    errors=CHANGE_ERRORS,
)
def cancel_appointment(request: ApiRequest, appointment_id: str) -> Document:
    return services().appointments.cancel(request.principal, appointment_id)


@api.route(
    "/appointments/{appointment_id}/reschedule",
    "POST",
    summary="Move an appointment to another free slot",
    roles=EVERYONE,
    request_schema="appointment-reschedule",
    response_schema="appointment",
    errors=(400, *CHANGE_ERRORS, 413, 415),
    codes=(BEYOND_HORIZON,),
)
def reschedule_appointment(request: ApiRequest, appointment_id: str) -> Document:
    return services().appointments.reschedule(request.principal, appointment_id, request.body)


@api.route(
    "/appointments/{appointment_id}/check-in",
    "POST",
    summary="Check a patient in",
    roles=CLINIC_ROLES,
    response_schema="appointment",
    errors=CHANGE_ERRORS,
)
def check_in(request: ApiRequest, appointment_id: str) -> Document:
    return services().appointments.check_in(request.principal, appointment_id)


@api.route(
    "/appointments/{appointment_id}/fulfil",
    "POST",
    summary="Mark an appointment done",
    roles=CLINIC_ROLES,
    response_schema="appointment",
    errors=CHANGE_ERRORS,
)
def fulfil(request: ApiRequest, appointment_id: str) -> Document:
    return services().appointments.fulfil(request.principal, appointment_id)


@api.route(
    "/appointments/{appointment_id}/no-show",
    "POST",
    summary="Mark a no-show",
    roles=CLINIC_ROLES,
    response_schema="appointment",
    errors=CHANGE_ERRORS,
)
def no_show(request: ApiRequest, appointment_id: str) -> Document:
    return services().appointments.no_show(request.principal, appointment_id)
