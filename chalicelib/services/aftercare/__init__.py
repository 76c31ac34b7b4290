"""Aftercare journeys: what follows a discharge, a surgery or a fulfilled visit under a care plan.

One journey record per (event, care plan) in the patient's partition holds the agenda (its steps
and how each went). The use cases split by concern, each in its module:

- `starting`: an event starts one journey per care plan it triggers;
- `steps`: the state machine's tasks, one timer at a time (send, remind, hand over, ...);
- `reactions`: a submitted questionnaire answers a check-in (an urgent one alerts staff at once,
  and may add a check-in), a booking answers a re-check invitation;
- `views`: a patient's care journeys for staff, a booking link's invitation for the patient;

and `records` is how they all read and change a journey. `Aftercare` holds the four, built on
the same repositories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib.adapters.executions import Executions
from chalicelib.domain.common import Document
from chalicelib.services.aftercare.reactions import AftercareReactions
from chalicelib.services.aftercare.records import JourneyRecords
from chalicelib.services.aftercare.starting import AftercareStarter
from chalicelib.services.aftercare.steps import AftercareSteps
from chalicelib.services.aftercare.views import CareJourneyViews
from chalicelib.services.care_config import CareConfigService
from chalicelib.services.deliveries import Deliveries
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.store.care import CareRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.responses import ResponseRepository
from chalicelib.store.tenants import TenantRepository


@dataclass(frozen=True)
class Aftercare:
    starting: AftercareStarter
    steps: AftercareSteps
    reactions: AftercareReactions
    views: CareJourneyViews

    @classmethod
    def build(
        cls,
        store: CareRepository,
        tenants: TenantRepository,
        patients: PatientRepository,
        responses: ResponseRepository,
        config: CareConfigService,
        deliveries: Deliveries,
        queue: StaffQueue,
        executions: Executions,
        on_urgent: Sequence[Callable[[str, Document], None]] = (),
        builtin_plans: Callable[[Document, Document, Document, str], list[Document]] | None = None,
    ) -> Aftercare:
        journeys = JourneyRecords(store, tenants, patients)
        return cls(
            starting=AftercareStarter(
                journeys, tenants, patients, config, executions, builtin_plans
            ),
            steps=AftercareSteps(journeys, responses, deliveries, queue),
            reactions=AftercareReactions(journeys, tenants, patients, queue, on_urgent),
            views=CareJourneyViews(store, patients, config),
        )
