"""The custom resource of a hospital's stack (infra/hospital.yaml): Create and Update write the
tenant record and give the first admin's account its staff record; Delete deactivates the
tenant and keeps its data."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.cloudformation import respond
from chalicelib.domain.common import is_valid_id
from chalicelib.domain.errors import Conflict, DomainError
from chalicelib.domain.staff import StaffRole
from chalicelib.observability import logger
from chalicelib.services.registry import services

STACK_ACTOR = "cloudformation"


def tenant_provisioner(event: dict[str, Any], context: Any = None) -> dict[str, str]:
    request = event.get("RequestType")
    props = event.get("ResourceProperties", {})
    physical_id = event.get("PhysicalResourceId") or str(props.get("TenantId", ""))
    try:
        if request in ("Create", "Update"):
            physical_id = _provision(props)
        elif request == "Delete":
            # A failed Create's rollback deletes a resource that never held a tenant.
            if is_valid_id(physical_id):
                services().tenants.deactivate(physical_id)
        else:
            raise ValueError(f"unknown RequestType {request!r}")
    except Exception as exc:
        # The stack shows this reason; the tenant's configuration holds no patient data.
        reason = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
        logger.exception("tenant provisioning failed", extra={"request": request})
        respond(event, "FAILED", physical_id or f"failed-{event.get('RequestId', '')}", reason)
        return {"status": "FAILED", "reason": reason}
    respond(event, "SUCCESS", physical_id, data={"TenantId": physical_id})
    return {"status": "SUCCESS", "tenant_id": physical_id}


def _provision(props: dict[str, Any]) -> str:
    tenant = services().tenants.provision(props)
    admin = {
        "email": props["FirstAdminEmail"],
        "name": props["FirstAdminName"],
        "role": StaffRole.ADMIN,
    }
    try:
        services().staff.add(tenant["id"], admin, by=STACK_ACTOR)
    except Conflict as exc:
        if exc.code != "staff_exists":
            raise
    return str(tenant["id"])
