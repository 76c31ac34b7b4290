"""The fault tier: seeded faults injected into the running product while 12 booked patients go
through every step of the appointment journey (confirmation, three reminders, the answer's
deadline, the visit check, two no-show follow-ups and the staff task), and what must hold
(counted by local/fault_journeys.py, as `make bench` counts it):

- no due message lost: each is sent, suppressed or skipped with a reason, or named in a staff
  task (`unknown`, or a step that failed after every retry);
- no message twice: the outbox holds exactly the messages the log says left;
- no execution FAILED without a staff task, no appointment still `booked` after its visit
  check, no delivery record left `sending`, no `unknown` outcome without its staff task.
"""

from __future__ import annotations

from typing import Any

import pytest

from local.fault_journeys import PROFILES, play, tally
from local.faults import Profile
from tests.conftest import Api
from tests.journeys.support import local_moment, unique_phone

pytestmark = pytest.mark.journey

SPREAD_OVER_WORKERS = True  # each profile is independent and long: tests/conftest.py
PATIENTS = 12  # each a whole journey, every task audited: 12 keep the tier near 1 minute a profile


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_journeys_under_faults(
    runtime: Any, api: Api, make_clinic: Any, make_patient: Any, profile: Profile
) -> None:
    clinic = make_clinic(capacity=PATIENTS, journeys=True)
    tenant = clinic.tenant
    # Addresses of their own: the tally counts the outbox by address, and other tests in this
    # runtime write to the default patient's.
    patients = [
        make_patient(tenant, phone=unique_phone(), email=f"fault-{tenant.id}-{n}@example.com")
        for n in range(PATIENTS)
    ]
    run = play(
        runtime,
        api,
        profile,
        tenant_id=tenant.id,
        staff=tenant.staff,
        schedule_id=clinic.schedule_id,
        patients=patients,
        start=local_moment(days=8, hour=10),
    )
    assert sum(run.injected.values()) > 0, "the profile injected nothing"

    counted = tally(runtime, api, run)
    assert counted.journeys == PATIENTS
    assert counted.lost == [], f"{profile.name}: lost {counted.lost}; {counted.lost_detail}"
    assert counted.duplicates == [], f"{profile.name}: sent twice {counted.duplicates}"
    assert counted.failed_unseen == [], f"{profile.name}: FAILED without a staff task"
    assert counted.still_booked == [], f"{profile.name}: still booked after the visit check"
    assert counted.stuck_sending == [], f"{profile.name}: left sending {counted.stuck_sending}"
    assert counted.unknown_without_task == [], f"{profile.name}: unknown, nobody told"
