"""Journey actions on a patient are in the audit trail beside the staff's, as the journey's own
tasks (actor kind `journey`), chained like the rest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import payload
from tests.journeys.support import Journey, local_moment, move_to

pytestmark = pytest.mark.journey


def test_the_journeys_actions_on_a_patient_are_audited(runtime: Any, journey: Any) -> None:
    from chalicelib import clock

    j: Journey = journey()
    start = local_moment(days=8, hour=10)
    appointment = j.book(start)
    move_to(runtime, start - timedelta(days=7))
    assert len(j.sms()) == 2
    tenant = j.clinic.tenant
    audit = j.api.call("GET", f"/patients/{j.patient['id']}/audit?limit=200", tenant.admin)
    assert audit.status_code == 200, audit.body
    entries = payload(audit)["items"]
    by_journey = [e for e in entries if e["actor"]["kind"] == "journey"]
    assert "appointment_journey_step" in {e["action"] for e in by_journey}
    assert all(e["outcome"] in ("ok", "failed") for e in by_journey)
    assert any(e["action"] == "book_appointment" for e in entries)
    # Every day the journey wrote on verifies.
    for day in sorted({e["day"] for e in entries} | {clock.now().date().isoformat()}):
        report = payload(j.api.call("GET", f"/audit/verification?day={day}", tenant.admin))
        assert report["intact"], report
    assert appointment["id"]
