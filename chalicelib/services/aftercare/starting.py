"""Starting aftercare journeys: a fulfilled visit (from the journey-events topic) or a discharge
or surgery staff record starts one journey per care plan it triggers.

A journey's id comes from (event, plan) and its execution's name from the journey, so an event
reported twice, or a start retried after a crash, starts nothing new.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from chalicelib import clock
from chalicelib.adapters.executions import Executions
from chalicelib.domain import aftercare as records
from chalicelib.domain import care_plans as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id, parse_timestamp, utc_iso
from chalicelib.domain.errors import NotFound, invalid
from chalicelib.domain.tenants import department_names
from chalicelib.observability import count
from chalicelib.services.aftercare.records import JourneyRecords, ref_of, zone_of
from chalicelib.services.care_config import CareConfigService
from chalicelib.settings import get_settings
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository


class AftercareStarter:
    def __init__(
        self,
        journeys: JourneyRecords,
        tenants: TenantRepository,
        patients: PatientRepository,
        config: CareConfigService,
        executions: Executions,
        builtin_plans: Callable[[Document, Document, Document, str], list[Document]] | None = None,
    ) -> None:
        self._journeys = journeys
        # The product's own plans an event may start (the satisfaction survey), beside the
        # tenant's: (tenant, patient, event, event key) → plans. Set by the registry.
        self._builtin_plans = builtin_plans
        self._tenants = tenants
        self._patients = patients
        self._config = config
        self._executions = executions

    def on_event(self, event: Document, event_key: str) -> list[str]:
        """Start a journey for every care plan this event triggers. Returns their ids."""
        tenant = self._tenants.get(event["tenant_id"])
        patient = self._patients.get(event["tenant_id"], event["patient_id"])
        if tenant is None or patient is None:  # get() hides deleted patients
            return []
        return self._start_matching(tenant, patient, event, event_key)

    def record_event(self, principal: Principal, patient_id: str, body: Document) -> Document:
        """Staff record a discharge or surgery; its care plans start (or the one they name)."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        tenant = self._tenants.get(tenant_id)
        patient = self._patients.get(tenant_id, patient_id) if is_valid_id(patient_id) else None
        if tenant is None or patient is None:  # get() hides deleted patients
            raise NotFound("patient not found")
        occurred = parse_timestamp("$.occurred_at", body["occurred_at"])
        rules.check_event_time("$.occurred_at", occurred, clock.now())
        if body["department"] not in department_names(tenant):
            raise invalid("$.department", f"no department {body['department']!r}")
        recorded = records.new_care_event(
            body,
            event_id="ev-" + secrets.token_hex(8),
            tenant_id=tenant_id,
            patient_id=patient_id,
            occurred_at=utc_iso(occurred),
            by=principal.subject,
        )
        event: Document = dict(recorded)
        plan_id = body.get("care_plan")
        if plan_id is not None:
            plan = self._config.plan(tenant_id, plan_id)
            if plan is None:
                raise NotFound("care plan not found")
            started = [self._start(tenant, patient, plan, event, recorded["id"])]
        else:
            started = self._start_matching(tenant, patient, event, recorded["id"])
        count("CareEventRecorded")
        return {**event, "journeys": started}

    def _start_matching(
        self, tenant: Document, patient: Document, event: Document, event_key: str
    ) -> list[str]:
        plans = [plan for plan in self._config.plans(tenant["id"]) if rules.matches(plan, event)]
        if self._builtin_plans is not None:
            plans += self._builtin_plans(tenant, patient, event, event_key)
        return [self._start(tenant, patient, plan, event, event_key) for plan in plans]

    def _start(
        self, tenant: Document, patient: Document, plan: Document, event: Document, key: str
    ) -> str:
        """The journey's record with its agenda (once), then its execution (a no-op if it
        exists: a retried start)."""
        journey_id = records.journey_id_for(key, plan["id"])
        ref = ref_of(tenant["id"], patient["id"], journey_id)
        if self._journeys.get(ref) is None:
            occurred = datetime.fromisoformat(event.get("occurred_at") or event["start"])
            now = clock.now()
            steps = rules.agenda(
                plan, occurred, zone_of(tenant, patient), tenant["quiet_hours"], now
            )
            journey = records.new_journey(
                journey_id, plan=plan, event=event, patient=patient, steps=steps, now=utc_iso(now)
            )
            self._journeys.create(tenant["id"], journey)
        name = f"{tenant['id']}-{journey_id}"
        self._executions.start(get_settings().aftercare_journey_arn, name, dict(ref))
        count("AftercareStarted")
        return journey_id
