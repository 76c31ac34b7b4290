"""Recall: patients due back under a tenant's rules are invited until they book.

A recall per (patient, rule) lives in the patient's partition; while it waits for its due date
it is in the due index (GSI2, keyed by tenant and date). The daily sweep queries that index (no
Scan), starts one recall journey per due recall under a name derived from (patient, rule, due
date), then takes the recall out of the index: a second sweep the same day finds nothing, and a
start repeated after a crash is a no-op. Booking what the rule asks for converts the recall.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.adapters.executions import Executions
from chalicelib.domain import recall as rules
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.recall import RecallRef, RecallStatus, backfill_name, execution_name
from chalicelib.domain.segments import SegmentQuery, segment_partition
from chalicelib.domain.step_results import (
    RecallBackfillPage,
    RecallFinished,
    RecallPlan,
    RecallStepDone,
)
from chalicelib.domain.tenants import department_names
from chalicelib.observability import count, logger
from chalicelib.services.aftercare.views import booking_link
from chalicelib.services.care_config import CareConfigService
from chalicelib.services.deliveries import Deliveries, Message, patient_fields
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.settings import get_settings
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.care import RECALL, CareRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.segments import SegmentRepository
from chalicelib.store.tenants import TenantRepository

# A backfill's pace: a page of patients, then a second's pause (the state machine's), so a
# hospital with many thousands is made due at about 100 patients a second.
BACKFILL_PAGE = 100
# Pages per execution before it continues as a new one (about 4 history events each).
BACKFILL_PAGES_PER_EXECUTION = 1000


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
        segments: SegmentRepository,
    ) -> None:
        self._executions = executions
        self._segments = segments
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
            if doc.get("kind") == rules.KIND
        }

    def _schedule(self, tenant_id: str, patient_id: str, rule_id: str, due: date, why: str) -> None:
        """Start a new cycle: the recall goes (back) in the due index. A visit that counts ends
        a cycle under way as converted (the patient came) and starts the count of unanswered
        cycles again."""
        for _ in range(3):
            current = self._store.get(tenant_id, patient_id, RECALL, rule_id)
            if self._put_cycle(tenant_id, patient_id, rule_id, due, why, current):
                return

    def _put_cycle(
        self,
        tenant_id: str,
        patient_id: str,
        rule_id: str,
        due: date,
        why: str,
        current: Document | None,
    ) -> bool:
        """The new cycle, written over `current` as read (False if it changed since)."""
        doc = rules.new_cycle(
            current,
            patient_id=patient_id,
            rule_id=rule_id,
            due=due,
            why=why,
            now=utc_iso(clock.now()),
        )
        try:
            self._store.put(tenant_id, RECALL, dict(doc), current["version"] if current else None)
        except Conflict:
            return False
        return True

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
        # In the visit indexes first: a rule saved later finds this patient there.
        self._segments.note_visit(tenant_id, patient["id"], event["appointment_type"])
        scheduled = 0
        for rule in self._config.rules(tenant_id):
            due = rules.due_after_visit(rule, patient, visit)
            if due is not None:
                self._schedule(tenant_id, patient["id"], rule["id"], due, "visit")
                scheduled += 1
        return scheduled

    def on_patient_changed(self, tenant_id: str, change: Document) -> None:
        """Condition tags gained start a recall count; tags lost cancel one not yet started.
        `change` is the profile before (None when new) and after."""
        patient = change["after"]
        all_rules = self._config.rules(tenant_id)
        if not any("condition" in rule["match"] for rule in all_rules):
            return
        recalls = self._recalls(tenant_id, patient["id"])
        today = clock.now().date()
        gained = rules.conditions_of(patient) - rules.conditions_of(change["before"] or {})
        schedule, cancel = rules.changes_for_patient(all_rules, patient, recalls, today, gained)
        for rule_id, due in schedule.items():
            self._schedule(tenant_id, patient["id"], rule_id, due, "condition")
        for rule_id in cancel:
            current = recalls[rule_id]
            changed = rules.cancelled(current, utc_iso(clock.now()))
            if changed is None:
                continue
            try:
                self._store.put(tenant_id, RECALL, changed, current["version"])
            except Conflict:
                logger.warning("recall changed while cancelling", extra={"rule": rule_id})

    # --- the daily sweep ---

    def sweep(self, today: date | None = None) -> Document:
        """Start a recall journey for every recall due by today, in every tenant."""
        today = today or clock.now().date()
        tenant_ids = list(self._tenants.all_ids())
        for tenant_id in tenant_ids:
            self._resume_backfills(tenant_id)
        started = sum(self.sweep_tenant(tenant_id, today) for tenant_id in tenant_ids)
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
        invited = rules.invited(recall, utc_iso(clock.now()), execution=name)
        if invited is None:
            return is_new
        try:
            self._store.put(tenant_id, RECALL, invited, recall["version"])
        except Conflict:
            logger.info("recall changed while starting", extra={"rule": recall["rule_id"]})
        return is_new

    # --- a rule saved after its patients exist: the backfill ---

    def start_backfill(self, tenant_id: str, rule: Document) -> None:
        """After a rule is saved: its existing patients are made due by a backfill execution
        (one per rule version). Should the start fail, the next daily sweep makes it."""
        if rule.get("enabled", True) is False:
            return
        self._start_backfill_part(tenant_id, rule["id"], int(rule["version"]), 0, None, 0)

    def _start_backfill_part(
        self, tenant_id: str, rule_id: str, version: int, part: int, cursor: str | None, done: int
    ) -> None:
        self._executions.start(
            get_settings().recall_backfill_arn,
            backfill_name(tenant_id, rule_id, version, part),
            {
                "tenant_id": tenant_id,
                "rule_id": rule_id,
                "rule_version": version,
                "part": part,
                "pages": 0,
                "scheduled": done,
                "cursor": cursor,
            },
        )

    def _resume_backfills(self, tenant_id: str) -> None:
        """The sweep's safety net: a rule version whose backfill never finished is started
        (again: a running or finished execution of that name makes the start a no-op)."""
        rules, finished = self._config.rules_and_backfilled(tenant_id)
        for rule in rules:
            if finished.get(rule["id"]) != rule["version"]:
                self.start_backfill(tenant_id, rule)

    def backfill_page(self, ref: Document) -> RecallBackfillPage:
        """One page of a rule's index: each live patient the rule concerns who has no recall
        under it yet (or a cancelled one) gets one, due after their last visit that counts or
        today (`domain.recall.backfill_due`)."""
        tenant_id, rule_id = ref["tenant_id"], ref["rule_id"]
        progress: RecallBackfillPage = {
            "done": True,
            "cursor": ref["cursor"],
            "pages": ref["pages"],
            "scheduled": ref["scheduled"],
        }
        rule = self._config.rule(tenant_id, rule_id)
        tenant = self._tenants.get(tenant_id)
        if (
            rule is None
            or tenant is None
            or rule["version"] != ref["rule_version"]  # a later save has a backfill of its own
            or rule.get("enabled", True) is False
        ):
            return progress
        if ref["pages"] >= BACKFILL_PAGES_PER_EXECUTION:
            self._start_backfill_part(
                tenant_id,
                rule_id,
                ref["rule_version"],
                ref["part"] + 1,
                ref["cursor"],
                ref["scheduled"],
            )
            return progress
        query = SegmentQuery(segment_partition(rules.backfill_segment(rule)))
        patient_ids, after = self._segments.members(tenant_id, query, BACKFILL_PAGE, ref["cursor"])
        scheduled = 0
        for patient in self._segments.profiles(tenant_id, patient_ids):
            if self._backfill_patient(tenant, rule, patient):
                scheduled += 1
        progress = {
            "done": after is None,
            "cursor": after,
            "pages": ref["pages"] + 1,
            "scheduled": ref["scheduled"] + scheduled,
        }
        if after is None:
            self._config.mark_backfilled(
                tenant_id, rule_id, ref["rule_version"], progress["scheduled"]
            )
        count("RecallBackfilled", scheduled)
        return progress

    def _backfill_patient(self, tenant: Document, rule: Document, patient: Document) -> bool:
        if not rules.applies_to(rule, patient):
            return False
        current = self._store.get(tenant["id"], patient["id"], RECALL, rule["id"])
        if current is not None and current["status"] != RecallStatus.CANCELLED:
            return False  # its cycles are under way already
        zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
        past = self._appointments.for_patient(
            tenant["id"], patient["id"], before=utc_iso(clock.now()), newest_first=True
        )
        visits = [
            {
                "appointment_type": a["type"],
                "department": a["department"],
                "date": datetime.fromisoformat(a["start"]).astimezone(zone).date().isoformat(),
            }
            for a in past
            if a["status"] == "fulfilled"
        ]
        due = rules.backfill_due(rule, patient, visits, clock.now().date())
        # Only over the recall as read: a tag added meanwhile has scheduled its own.
        return self._put_cycle(
            tenant["id"], patient["id"], rule["id"], due, rules.BACKFILLED, current
        )

    # --- the recall journey's tasks ---

    def _load(self, ref: RecallRef) -> tuple[Document, Document, Document, Document] | None:
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

    def plan(self, ref: RecallRef) -> RecallPlan:
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
                ref,
                lambda r: (
                    rules.invited(r, utc_iso(clock.now()))
                    if r["due_date"] == ref["due_date"]
                    else None
                ),
            )
        zone = ZoneInfo(patient.get("time_zone") or tenant["time_zone"])
        steps = rules.sequence_plan(
            rule, date.fromisoformat(ref["due_date"]), zone, tenant["quiet_hours"], clock.now()
        )
        return {"proceed": True, "steps": steps}

    def step(self, ref: RecallRef, step: str) -> RecallStepDone:
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
        return any(
            a["status"] in rules.BOOKING_STATUSES and rules.converts(rule, a) for a in upcoming
        )

    def _settle(
        self, ref: RecallRef, status: RecallStatus, appointment_id: str | None = None
    ) -> Document:
        """This cycle ends (converted or cancelled), if it is still the open one."""
        return self._update(
            ref,
            lambda recall: (
                rules.settled(recall, status, utc_iso(clock.now()), appointment_id)
                if recall["due_date"] == ref["due_date"]
                else None
            ),
        )

    def _unconverted(self, ref: RecallRef, rule: Document) -> Document:
        """This cycle ended without a booking: in the same write, the next cycle falls due (back
        in the due index) or, the rule's cap reached, the recall is handed over or stops."""
        return self._update(
            ref,
            lambda recall: (
                rules.unconverted(recall, rule, clock.now())
                if recall["due_date"] == ref["due_date"]
                else None
            ),
        )

    def _update(self, ref: RecallRef, change: Callable[[Document], Document | None]) -> Document:
        """Apply `change` to the recall (again if another writer came first); `change` returns
        None to leave it as it is."""
        updated = self._store.modify(
            ref["tenant_id"],
            ref["patient_id"],
            RECALL,
            ref["rule_id"],
            change,
            updated_at=utc_iso(clock.now()),
        )
        if updated is None:
            raise NotFound("recall not found")
        return updated

    def finish(self, ref: RecallRef) -> RecallFinished:
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
            ref = RecallRef(
                tenant_id=tenant_id,
                patient_id=appointment["patient_id"],
                rule_id=recall["rule_id"],
                due_date=recall["due_date"],
            )
            self._settle(ref, RecallStatus.CONVERTED, appointment["id"])
            count("RecallConverted")

    def for_patient(self, tenant_id: str, patient_id: str) -> list[Document]:
        return list(self._recalls(tenant_id, patient_id).values())
