"""Messaging around the patient: the staff queue (escalations from journeys), a patient's
delivery log, and the devices the app registers for push."""

from __future__ import annotations

from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.domain.access import CLINIC_ROLES, Role
from chalicelib.domain.common import Document
from chalicelib.services.registry import services

api = ApiBlueprint(__name__, tag="staff")


@api.route(
    "/tasks",
    "GET",
    summary="List open staff tasks",
    roles=CLINIC_ROLES,
    response_schema="task-list",
    errors=(401, 403),
)
def list_tasks(request: ApiRequest) -> Document:
    return {"items": services().tasks.open_tasks(request.principal)}


@api.route(
    "/tasks/{task_id}/close",
    "POST",
    summary="Close a staff task",
    roles=CLINIC_ROLES,
    response_schema="task",
    errors=(401, 403, 404, 409),
)
def close_task(request: ApiRequest, task_id: str) -> Document:
    return services().tasks.close(request.principal, task_id)


@api.route(
    "/patients/{patient_id}/deliveries",
    "GET",
    summary="Read a patient's delivery log",
    roles=CLINIC_ROLES,
    response_schema="delivery-list",
    errors=(401, 403, 404),
)
def patient_deliveries(request: ApiRequest, patient_id: str) -> Document:
    return {"items": services().tasks.deliveries(request.principal, patient_id)}


@api.route(
    "/me/devices",
    "POST",
    summary="Register this device for push messages",
    roles={Role.PATIENT},
    request_schema="device-register",
    response_schema="device",
    status=201,
    errors=(400, 401, 403, 413, 415, 503),
    idempotent=True,
)
def register_device(request: ApiRequest) -> Document:
    return services().devices.register(request.principal, request.body)
