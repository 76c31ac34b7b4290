"""Opening a task in the staff queue and telling the department's staff, once."""

from __future__ import annotations

import hashlib
import json

from chalicelib import clock
from chalicelib.adapters.channels import Channels
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.step_results import StepFailedReported
from chalicelib.observability import count
from chalicelib.settings import get_settings
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.messages import StaffTaskRepository


def alert_topic(tenant: Document | None, department: str | None) -> str:
    """The department's own alert topic if it has one, else the platform's staff topic (whose
    subscribers filter on the tenant_id and department attributes)."""
    for known in (tenant or {}).get("departments", []):
        if known["id"] == department and known.get("alert_topic_arn"):
            return str(known["alert_topic_arn"])
    return get_settings().staff_topic_arn


class StaffQueue:
    def __init__(self, tasks: StaffTaskRepository, channels: Channels) -> None:
        self._tasks = tasks
        self._channels = channels

    @staticmethod
    def task_id(appointment: Document, kind: str) -> str:
        version = appointment["journey_version"]
        return f"{appointment['id']}-v{version}-{kind.replace('_', '-')}"

    def resolve(self, tenant_id: str, appointment: Document, kind: str, why: str) -> None:
        """Close a task the patient has made moot (a late answer), if it is open."""
        self.close_task(tenant_id, self.task_id(appointment, kind), why)

    def close_task(self, tenant_id: str, task_id: str, why: str) -> None:
        """Close a task by id if it is open (its work was done elsewhere)."""
        task = self._tasks.get(tenant_id, task_id)
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
        notify: list[str] | None = None,
    ) -> Document:
        """Idempotent: the caller derives `task_id` from what the task is about, so a replayed
        step finds the task it opened. The topic hears of the task until the task records that
        it was alerted: a publish that failed (throttled) is made by the step's retry.
        `notify`: the staff (ids) the alert is for, e.g. a department's leads; the alert names
        them (`staff_ids`, attribute `audience: named`) so subscriptions can route it."""
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
        if topic and (
            "alerted_at" not in task or (priority == "urgent" and task["status"] == "open")
        ):
            # Ids only: the staff console shows the rest to those allowed to see it.
            body: Document = {"tenant_id": tenant_id, "task_id": task["id"], "kind": kind}
            attributes = {
                "tenant_id": tenant_id,
                "department": str(about.get("department") or "none"),
                "kind": kind,
                "priority": priority,
            }
            if notify is not None:
                body["staff_ids"] = sorted(notify)
                attributes["audience"] = "named"
            self._channels.publish(
                topic,
                f"CareLoop {'URGENT ' if priority == 'urgent' else ''}task: {kind}",
                json.dumps(body),
                attributes,
            )
            if "alerted_at" not in task:
                task = self._tasks.mark_alerted(tenant_id, task, utc_iso(clock.now()))
        return task


class JourneyFailures:
    """A journey's step that failed after every retry is put before staff, so that no journey
    ends unseen: a task naming the journey and the step (and the error's name), and a metric."""

    def __init__(self, queue: StaffQueue, appointments: AppointmentRepository) -> None:
        self._queue = queue
        self._appointments = appointments

    def report(self, event: Document) -> StepFailedReported:
        tenant_id = event["tenant_id"]
        about: Document = {
            k: event[k]
            for k in ("appointment_id", "patient_id", "journey_id", "campaign_id", "rule_id")
            if k in event
        }
        if "appointment_id" in event:
            appointment = self._appointments.get(tenant_id, event["appointment_id"])
            if appointment is not None:
                about.update(
                    patient_id=appointment["patient_id"], department=appointment["department"]
                )
        about.update(step=event["step"], error=event["error"], execution=event["execution"])
        digest = hashlib.sha256(f"{event['execution']}|{event['step']}".encode()).hexdigest()
        task = self._queue.open_task(
            tenant_id, f"step-failed-{digest[:24]}", "journey_step_failed", about
        )
        count("JourneyStepFailed")
        return {"task_id": task["id"]}
