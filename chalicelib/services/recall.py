"""Recall: patients due back under a tenant's rules are invited until they book.

A recall per (patient, rule) lives in the patient's partition; while it waits for its due date
it is in the due index (GSI2, keyed by tenant and date). The daily sweep queries that index (no
Scan), starts one recall journey per due recall under a name derived from (patient, rule, due
date), then takes the recall out of the index: a second sweep the same day finds nothing, and a
start repeated after a crash is a no-op. Booking what the rule asks for converts the recall.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.adapters.executions import Executions
from chalicelib.domain import recall as rules
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.recall import RecallStatus
from chalicelib.domain.task_results import RecallFinished, RecallPlan, RecallStepDone
from chalicelib.domain.tenants import department_names
from chalicelib.observability import count, logger
from chalicelib.services.aftercare import booking_link
from chalicelib.services.care_config import CareConfigService
from chalicelib.services.deliveries import Deliveries, Message, patient_fields
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.settings import get_settings
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.care import RECALL, CareRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository

BOOKED = frozenset({"booked", "confirmed", "arrived", "fulfilled"})


def cycle_ref(patient_id: str, rule_id: str, due: str) -> str:
    """An opaque name for one recall cycle: its booking link and its execution carry it."""
    return "rc-" + hashlib.sha256(f"{patient_id}|{rule_id}|{due}".encode()).hexdigest()[:16]


def execution_name(tenant_id: str, patient_id: str, rule_id: str, due: str) -> str:
    return f"{tenant_id}-{cycle_ref(patient_id, rule_id, due)}"


class RecallService:
    def __init__(
        self,
        store: CareRepository,
        tenants: TenantRepository,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        config: CareConfigService,
        deliveries: Deliveries,
        queue: StaffQueue,
        executions: Executions,
    ) -> None:
        self._executions = executions
        self._store = store
        self._tenants = tenants
        self._patients = patients
        self._appointments = appointments
        self._config = config
        self._deliveries = deliveries
        self._queue = queue

    # --- keeping due dates current on write ---

    def _recalls(self, tenant_id: str, patient_id: str) -> dict[str, Document]:
        return {
            doc["rule_id"]: doc
            for doc in self._store.for_patient(tenant_id, patient_id)
            if doc.get("kind") == "recall"
        }

    def _schedule(self, tenant_id: str, patient_id: str, rule_id: str, due: date, why: str) -> None:
        """Start a new cycle: the recall goes (back) in the due index. A visit that counts ends
        a cycle under way as converted (the patient came) and starts the count of unanswered
        cycles again."""
        for _ in range(3):
            current = self._store.get(tenant_id, patient_id, RECALL, rule_id)
            now = utc_iso(clock.now())
            cycles = list((current or {}).get("cycles", []))
            if current is not None and current["status"] == RecallStatus.INVITED:
                cycles.append(rules.cycle_record(current["due_date"], "visited", now))
            doc: Document = {
                "id": rule_id,
                "kind": "recall",
                "rule_id": rule_id,
                "patient_id": patient_id,
                "status": RecallStatus.SCHEDULED,
                "due_date": due.isoformat(),
                "ref": cycle_ref(patient_id, rule_id, due.isoformat()),
                "why": why,
                "unanswered_cycles": 0,
                "cycles": cycles[-rules.CYCLES_KEPT :],
                "created_at": (current or {}).get("created_at", now),
                "updated_at": now,
            }
            try:
                self._store.put(tenant_id, RECALL, doc, current["version"] if current else None)
            except Conflict:
                continue
            return

    def on_visit(self, event: Document) -> int:
        """A fulfilled visit restarts every rule it counts for. Returns how many it set."""
        tenant_id = event["tenant_id"]
        patient = self._patients.get(tenant_id, event["patient_id"])
        if patient is None:
            return 0
        tenant = self._tenants.get(tenant_id)
        zone = ZoneInfo(patient.get("time_zone") or (tenant or {}).get("time_zone") or "UTC")
        visit = {
            "appointment_type": event["appointment_type"],
            "department": event["department"],
            # The visit's day where the patient lives, not in UTC.
            "date": datetime.fromisoformat(event["start"]).astimezone(zone).date().isoformat(),
        }
        scheduled = 0
        for rule in self._config.rules(tenant_id):
            due = rules.due_after_visit(rule, patient, visit)
            if due is not None:
                self._schedule(tenant_id, patient["id"], rule["id"], due, "visit")
                scheduled += 1
        return scheduled

    def on_patient_changed(self, tenant_id: str, patient: Document) -> None:
        """Condition tags gained start a recall count; tags lost cancel one not yet started."""
        all_rules = self._config.rules(tenant_id)
        if not any("condition" in rule["match"] for rule in all_rules):
            return
        recalls = self._recalls(tenant_id, patient["id"])
        today = clock.now().date()
        schedule, cancel = rules.changes_for_patient(all_rules, patient, recalls, today)
        for rule_id, due in schedule.items():
            self._schedule(tenant_id, patient["id"], rule_id, due, "condition")
        for rule_id in cancel:
            current = recalls[rule_id]
            changed = {
                **current,
                "status": RecallStatus.CANCELLED,
                "updated_at": utc_iso(clock.now()),
            }
            try:
                self._store.put(tenant_id, RECALL, changed, current["version"])
            except Conflict:
                logger.warning("recall changed while cancelling", extra={"rule": rule_id})

    # --- the daily sweep ---

    def sweep(self, today: date | None = None) -> Document:
        """Start a recall journey for every recall due by today, in every tenant."""
        today = today or clock.now().date()
        started = sum(self.sweep_tenant(tenant_id, today) for tenant_id in self._tenants.all_ids())
        count("RecallStarted", started)
        return {"date": today.isoformat(), "started": started}

    def sweep_tenant(self, tenant_id: str, today: date) -> int:
        """One tenant's due recalls, through the due index a page at a time."""
        started = 0
        for recall in self._store.recalls_due(tenant_id, today.isoformat()):
            if self._start(tenant_id, recall):
                started += 1
        return started

    def _start(self, tenant_id: str, recall: Document) -> bool:
        name = execution_name(
            tenant_id, recall["patient_id"], recall["rule_id"], recall["due_date"]
        )
        is_new = self._executions.start(
            get_settings().recall_journey_arn,
            name,
            {
                "tenant_id": tenant_id,
                "patient_id": recall["patient_id"],
                "rule_id": recall["rule_id"],
                "due_date": recall["due_date"],
            },
        )
        # Out of the due index only once the journey exists: a crash in between is healed by
        # the next sweep, whose start is then a no-op.
        invited = {
            **recall,
            "status": RecallStatus.INVITED,
            "invited_at": utc_iso(clock.now()),
            "execution": name,
        }
        try:
            self._store.put(tenant_id, RECALL, invited, recall["version"])
        except Conflict:
            logger.info("recall changed while starting", extra={"rule": recall["rule_id"]})
        return is_new

    # --- the recall journey's tasks ---

    def _load(self, ref: Document) -> tuple[Document, Document, Document, Document] | None:
        """Tenant, patient, rule and recall, or None when this cycle is no longer the one."""
        tenant = self._tenants.get(ref["tenant_id"])
        patient = self._patients.get(ref["tenant_id"], ref["patient_id"])
        rule = self._config.rule(ref["tenant_id"], ref["rule_id"])
        recall = self._store.get(ref["tenant_id"], ref["patient_id"], RECALL, ref["rule_id"])
        if tenant is None or patient is None or rule is None or recall is None:
            return None
        if recall["due_date"] != ref["due_date"]:
            return None
        return tenant, patient, rule, recall

    def plan(self, ref: Document) -> RecallPlan:
        loaded = self._load(ref)
        if loaded is None or loaded[3]["status"] not in rules.OPEN:
            return {"proceed": False}
        tenant, patient, rule, recall = loaded
        if rule.get("enabled", True) is False or not rules.applies_to(rule, patient):
            self._settle(ref, RecallStatus.CANCELLED)
            return {"proceed": False}
        if self._has_booking(ref["tenant_id"], rule, recall["patient_id"]):
            self._settle(ref, RecallStatus.CONVERTED)  # booked already: nothing to ask for
            return {"proceed": False}
        if recall["status"] == RecallStatus.SCHEDULED:
            # The journey can run before the sweep marks the recall invited: mark it here.
            self._update(
                ref["tenant_id"],
                ref["patient_id"],
                ref["rule_id"],
                lambda r: (
                    {**r, "status": RecallStatus.INVITED, "invited_at": utc_iso(clock.now())}
                    if r["status"] == RecallStatus.SCHEDULED and r["due_date"] == ref["due_date"]
                    else None
                ),
            )
        zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
        steps = rules.sequence_plan(
            rule, date.fromisoformat(ref["due_date"]), zone, tenant["quiet_hours"], clock.now()
        )
        return {"proceed": True, "steps": steps}

    def step(self, ref: Document, step: str) -> RecallStepDone:
        """One step of the sequence, unless the patient has booked (then: converted)."""
        loaded = self._load(ref)
        if loaded is None:
            return {"status": "over"}
        tenant, patient, rule, recall = loaded
        if recall["status"] == RecallStatus.INVITED and rule.get("enabled", True) is False:
            recall = self._settle(ref, RecallStatus.CANCELLED)
        if recall["status"] == RecallStatus.INVITED and self._has_booking(
            ref["tenant_id"], rule, recall["patient_id"]
        ):
            recall = self._settle(ref, RecallStatus.CONVERTED)
        if recall["status"] != RecallStatus.INVITED:
            return {"status": "over"}
        if step == "staff_task":
            # The task first (opened once, by id): a retry after a crash still finds the cycle.
            unanswered = int(recall.get("unanswered_cycles", 0)) + 1
            ending, _ = rules.after_unconverted(
                rule, date.fromisoformat(ref["due_date"]), unanswered, clock.now().date()
            )
            kind = (
                "recall_phone_call" if ending == RecallStatus.HANDED_OVER else "recall_unconverted"
            )
            self._queue.open_task(
                tenant["id"],
                f"{execution_name(tenant['id'], patient['id'], rule['id'], ref['due_date'])}"
                f"-{kind.removeprefix('recall_').replace('_', '-')}",
                kind,
                {
                    "patient_id": patient["id"],
                    "department": rule["book"]["department"],
                    "recall_rule": rule["id"],
                },
                tenant=tenant,
            )
            self._unconverted(ref, rule)
            return {"status": "staff_task"}
        fields = {
            **patient_fields(tenant, patient),
            "department": department_names(tenant).get(rule["book"]["department"], ""),
            "link": booking_link(recall["ref"]),
        }
        result = self._deliveries.deliver(
            tenant,
            patient,
            Message(
                step,
                f"recall#{patient['id']}#{rule['id']}#{ref['due_date']}#{step}",
                fields,
                {"recall_rule": rule["id"]},
            ),
            clock.now(),
        )
        if result["status"] == "deferred":
            return {"status": "deferred", "retry_at": result["retry_at"]}
        return {"status": result["status"]}

    def _has_booking(self, tenant_id: str, rule: Document, patient_id: str) -> bool:
        """Whether the patient has an upcoming appointment of what the rule asks for (booked
        before or during the recall: a safety net for a conversion the booking could not
        record itself)."""
        upcoming = self._appointments.for_patient(tenant_id, patient_id, after=utc_iso(clock.now()))
        return any(a["status"] in BOOKED and rules.converts(rule, a) for a in upcoming)

    def _settle(self, ref: Document, status: str, appointment_id: str | None = None) -> Document:
        """This cycle ends (converted or cancelled), if it is still the open one."""

        def change(recall: Document) -> Document | None:
            if recall["due_date"] != ref["due_date"] or not rules.can_become(
                recall["status"], RecallStatus(status)
            ):
                return None
            now = utc_iso(clock.now())
            more = {"appointment_id": appointment_id} if appointment_id else {}
            cycle = rules.cycle_record(recall["due_date"], status, now, **more)
            recall.update(
                status=status,
                settled_at=now,
                cycles=[*recall.get("cycles", []), cycle][-rules.CYCLES_KEPT :],
            )
            if status == RecallStatus.CONVERTED:
                recall["unanswered_cycles"] = 0
            recall.update(more)
            return recall

        return self._update(ref["tenant_id"], ref["patient_id"], ref["rule_id"], change)

    def _unconverted(self, ref: Document, rule: Document) -> Document:
        """This cycle ended without a booking: in the same write, the next cycle falls due (back
        in the due index) or, the rule's cap reached, the recall is handed over or stops."""

        def change(recall: Document) -> Document | None:
            if recall["status"] != RecallStatus.INVITED or recall["due_date"] != ref["due_date"]:
                return None
            now = utc_iso(clock.now())
            unanswered = int(recall.get("unanswered_cycles", 0)) + 1
            status, next_due = rules.after_unconverted(
                rule, date.fromisoformat(recall["due_date"]), unanswered, clock.now().date()
            )
            cycle = rules.cycle_record(recall["due_date"], RecallStatus.UNCONVERTED, now)
            recall.update(
                status=status,
                settled_at=now,
                unanswered_cycles=unanswered,
                cycles=[*recall.get("cycles", []), cycle][-rules.CYCLES_KEPT :],
            )
            if next_due is not None:
                recall.update(
                    due_date=next_due.isoformat(),
                    ref=cycle_ref(recall["patient_id"], recall["rule_id"], next_due.isoformat()),
                    why="unconverted",
                )
            return recall

        return self._update(ref["tenant_id"], ref["patient_id"], ref["rule_id"], change)

    def _update(
        self,
        tenant_id: str,
        patient_id: str,
        rule_id: str,
        change: Callable[[Document], Document | None],
    ) -> Document:
        def stamped(recall: Document) -> Document | None:
            changed = change(recall)
            if changed is not None:
                changed["updated_at"] = utc_iso(clock.now())
            return changed

        updated = self._store.modify(tenant_id, patient_id, RECALL, rule_id, stamped)
        if updated is None:
            raise NotFound("recall not found")
        return updated

    def finish(self, ref: Document) -> RecallFinished:
        """The sequence is over: a recall still invited (a step failed, say) is settled, so the
        next visit or sweep can start a new cycle."""
        loaded = self._load(ref)
        if loaded is None:
            return {"status": "over"}
        if loaded[3]["status"] == RecallStatus.INVITED:
            self._unconverted(ref, loaded[2])
            return {"status": RecallStatus.UNCONVERTED}
        return {"status": loaded[3]["status"]}

    def on_booked(self, tenant_id: str, appointment: Document) -> None:
        """Booking what an open recall asks for converts it."""
        for recall in self._recalls(tenant_id, appointment["patient_id"]).values():
            if recall["status"] != RecallStatus.INVITED:
                continue
            rule = self._config.rule(tenant_id, recall["rule_id"])
            if rule is None or not rules.converts(rule, appointment):
                continue
            ref = {
                "tenant_id": tenant_id,
                "patient_id": appointment["patient_id"],
                "rule_id": recall["rule_id"],
                "due_date": recall["due_date"],
            }
            self._settle(ref, RecallStatus.CONVERTED, appointment["id"])
            count("RecallConverted")

    def for_patient(self, tenant_id: str, patient_id: str) -> list[Document]:
        return list(self._recalls(tenant_id, patient_id).values())
