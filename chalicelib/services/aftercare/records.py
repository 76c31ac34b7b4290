"""An aftercare journey's record as its tasks and the patient's answers change it.

Tasks and answers race (a reminder firing as the answer comes in, a task replayed after a
crash), so every change is a read-modify-write that is tried again if another writer came first,
and a step moves only as its transition table allows: the writer that finds the step moved on
does nothing, or adds only what it alone knew (timers).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain.aftercare import (
    KIND,
    AftercareJourney,
    AftercareRef,
    JourneyStatus,
    StepStatus,
    step_can_become,
    step_of,
)
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.store.care import AFTERCARE, CareRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.tenants import TenantRepository


def zone_of(tenant: Document, patient: Document) -> ZoneInfo:
    """The patient's time zone, or the hospital's: where the plan's days and hours are read."""
    return ZoneInfo(patient.get("time_zone") or tenant["time_zone"])


def ref_of(tenant_id: str, patient_id: str, journey_id: str) -> AftercareRef:
    return AftercareRef(tenant_id=tenant_id, patient_id=patient_id, journey_id=journey_id)


class JourneyRecords:
    def __init__(
        self, store: CareRepository, tenants: TenantRepository, patients: PatientRepository
    ) -> None:
        self._store = store
        self._tenants = tenants
        self._patients = patients

    def get(self, ref: AftercareRef) -> Document | None:
        return self._store.get(ref["tenant_id"], ref["patient_id"], AFTERCARE, ref["journey_id"])

    def load(self, ref: AftercareRef) -> tuple[Document, Document, Document] | None:
        """Tenant, patient and journey; None if any is gone (get() hides deleted patients)."""
        journey = self.get(ref)
        tenant = self._tenants.get(ref["tenant_id"])
        patient = self._patients.get(ref["tenant_id"], ref["patient_id"])
        if journey is None or tenant is None or patient is None:
            return None
        return tenant, patient, journey

    def running(self, tenant_id: str, patient_id: str) -> list[Document]:
        """The patient's journeys still running (their care records hold recalls too)."""
        return [
            record
            for record in self._store.for_patient(tenant_id, patient_id)
            if record.get("kind") == KIND and record["status"] == JourneyStatus.RUNNING
        ]

    def create(self, tenant_id: str, journey: AftercareJourney) -> None:
        """Save a new journey; the same event reported twice at once: the other start wins."""
        with suppress(Conflict):
            self._store.put(tenant_id, AFTERCARE, dict(journey), None)

    def update(self, ref: AftercareRef, change: Callable[[Document], Document | None]) -> Document:
        """Apply `change` to the journey (again if another writer came first); `change` returns
        None to leave it as it is. NotFound if the journey is gone."""
        journey = self._store.modify(
            ref["tenant_id"],
            ref["patient_id"],
            AFTERCARE,
            ref["journey_id"],
            change,
            updated_at=utc_iso(clock.now()),
        )
        if journey is None:
            raise NotFound("aftercare journey not found")
        return journey

    def mark(self, ref: AftercareRef, step_id: str, **changes: object) -> Document:
        """Record something of a step whatever its status (a reminder's outcome, say)."""

        def change(journey: Document) -> Document:
            step_of(journey, step_id).update(changes)
            return journey

        return self.update(ref, change)

    def move_step(self, ref: AftercareRef, step_id: str, to: StepStatus, **changes: object) -> bool:
        """Move a step to `to`, with `changes`, if its table allows that from where it is now.
        True if this call moved it."""
        return self._change_step(
            ref, step_id, lambda status: step_can_become(status, to), {"status": to, **changes}
        )

    def note_while(
        self, ref: AftercareRef, step_id: str, status: StepStatus, **changes: object
    ) -> bool:
        """Record `changes` in a step only while it is in `status`. True if this call did."""
        return self._change_step(ref, step_id, lambda current: current == status, changes)

    def _change_step(
        self,
        ref: AftercareRef,
        step_id: str,
        allowed: Callable[[str], bool],
        changes: dict[str, object],
    ) -> bool:
        won: list[bool] = []

        def change(journey: Document) -> Document | None:
            step = step_of(journey, step_id)
            if not allowed(step["status"]):
                # Keep the other writer's status, but record what this one knew (timers).
                extra = {k: v for k, v in changes.items() if k != "status" and k not in step}
                if not extra:
                    return None
                step.update(extra)
                return journey
            step.update(changes)
            won.append(True)
            return journey

        try:
            self.update(ref, change)
        except NotFound:
            return False  # the journey is gone: nothing to move on
        return bool(won)
