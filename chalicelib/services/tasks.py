"""The staff queue and the delivery log, as staff see them."""

from __future__ import annotations

import re

from chalicelib import clock
from chalicelib.domain.access import CLINIC_ROLES, Principal, require_role, tenant_of
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.services.patients import PatientService
from chalicelib.store.messages import DeliveryRepository, StaffTaskRepository

TASK_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,100}")  # <appointment>-v<n>-<kind>


class TaskService:
    def __init__(
        self, tasks: StaffTaskRepository, deliveries: DeliveryRepository, patients: PatientService
    ) -> None:
        self._tasks = tasks
        self._deliveries = deliveries
        self._patients = patients

    def open_tasks(self, principal: Principal) -> list[Document]:
        require_role(principal, CLINIC_ROLES)
        return self._tasks.open_tasks(tenant_of(principal))

    def close(self, principal: Principal, task_id: str) -> Document:
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        task = self._tasks.get(tenant_id, task_id) if TASK_ID.fullmatch(task_id) else None
        if task is None:
            raise NotFound("task not found")
        if task["status"] != "open":
            raise Conflict("the task is closed already", code="task_closed")
        closed = {
            **task,
            "status": "closed",
            "closed_at": utc_iso(clock.now()),
            "closed_by": principal.subject,
        }
        return self._tasks.close(tenant_id, task, closed)

    def deliveries(self, principal: Principal, patient_id: str) -> list[Document]:
        # 404s for what the caller cannot see
        patient = self._patients.require(principal, patient_id)
        return self._deliveries.for_patient(tenant_of(principal), patient["id"])
