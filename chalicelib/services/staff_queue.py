"""Opening a task in the staff queue and telling the tenant's staff topic, once."""

from __future__ import annotations

import json

from chalicelib import clock
from chalicelib.domain.common import Document, utc_iso
from chalicelib.messaging import channels
from chalicelib.observability import count
from chalicelib.settings import get_settings
from chalicelib.store.messages import StaffTaskRepository


class StaffQueue:
    def __init__(self, tasks: StaffTaskRepository) -> None:
        self._tasks = tasks

    @staticmethod
    def task_id(appointment: Document, kind: str) -> str:
        version = appointment["journey_version"]
        return f"{appointment['id']}-v{version}-{kind.replace('_', '-')}"

    def resolve(self, tenant_id: str, appointment: Document, kind: str, why: str) -> None:
        """Close a task the patient has made moot (a late answer), if it is open."""
        task = self._tasks.get(tenant_id, self.task_id(appointment, kind))
        if task is not None and task["status"] == "open":
            closed = {
                **task,
                "status": "closed",
                "closed_at": utc_iso(clock.now()),
                "closed_by": why,
            }
            self._tasks.close(tenant_id, task, closed)

    def open(self, tenant_id: str, appointment: Document, kind: str) -> Document:
        """Idempotent: the task id comes from the appointment, its journey version and kind."""
        now = utc_iso(clock.now())
        task = self._tasks.create(
            tenant_id,
            {
                "id": self.task_id(appointment, kind),
                "kind": kind,
                "status": "open",
                "appointment_id": appointment["id"],
                "patient_id": appointment["patient_id"],
                "department": appointment["department"],
                "appointment_start": appointment["start"],
                "created_at": now,
            },
        )
        topic = get_settings().staff_topic_arn
        if task["created_at"] == now and task["version"] == 1:
            count("StaffTaskOpened")
            if topic:
                # Ids only: the staff console shows the rest to those allowed to see it.
                channels.publish(
                    topic,
                    f"CareLoop task: {kind}",
                    json.dumps({"tenant_id": tenant_id, "task_id": task["id"], "kind": kind}),
                )
        return task
