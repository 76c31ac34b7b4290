"""Opening a task in the staff queue and telling the department's staff, once."""

from __future__ import annotations

import json

from chalicelib import clock
from chalicelib.domain.common import Document, utc_iso
from chalicelib.messaging import channels
from chalicelib.observability import count
from chalicelib.settings import get_settings
from chalicelib.store.messages import StaffTaskRepository


def alert_topic(tenant: Document | None, department: str | None) -> str:
    """The department's own alert topic if it has one, else the platform's staff topic (whose
    subscribers filter on the tenant_id and department attributes)."""
    for known in (tenant or {}).get("departments", []):
        if known["id"] == department and known.get("alert_topic_arn"):
            return str(known["alert_topic_arn"])
    return get_settings().staff_topic_arn


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

    def open(
        self, tenant_id: str, appointment: Document, kind: str, tenant: Document | None = None
    ) -> Document:
        """A task about an appointment, once per appointment, journey version and kind."""
        return self.open_task(
            tenant_id,
            self.task_id(appointment, kind),
            kind,
            {
                "appointment_id": appointment["id"],
                "patient_id": appointment["patient_id"],
                "department": appointment["department"],
                "appointment_start": appointment["start"],
            },
            tenant=tenant,
        )

    def open_task(
        self,
        tenant_id: str,
        task_id: str,
        kind: str,
        about: Document,
        *,
        tenant: Document | None = None,
        priority: str = "normal",
    ) -> Document:
        """Idempotent: the caller derives `task_id` from what the task is about, so a replayed
        step finds the task it opened. The topic hears of a task once, when it is opened."""
        task, is_new = self._tasks.create(
            tenant_id,
            {
                "id": task_id,
                "kind": kind,
                "status": "open",
                "priority": priority,
                **about,
                "created_at": utc_iso(clock.now()),
            },
        )
        topic = alert_topic(tenant, about.get("department"))
        if is_new:
            count("StaffTaskOpened")
        # An urgent alert is told again when asked again while the task is open (the patient
        # resubmits after a failure): twice is better than never. Others are told once.
        if (is_new or (priority == "urgent" and task["status"] == "open")) and topic:
            # Ids only: the staff console shows the rest to those allowed to see it.
            channels.publish(
                topic,
                f"CareLoop {'URGENT ' if priority == 'urgent' else ''}task: {kind}",
                json.dumps({"tenant_id": tenant_id, "task_id": task["id"], "kind": kind}),
                {
                    "tenant_id": tenant_id,
                    "department": str(about.get("department") or "none"),
                    "kind": kind,
                    "priority": priority,
                },
            )
        return task
