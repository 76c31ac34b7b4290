"""Fixtures of the journey tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.journeys.support import SHANGHAI, Journey, local_moment, move_to


@pytest.fixture(autouse=True)
def in_the_morning(request: pytest.FixtureRequest) -> None:
    """Each journey test begins on a Shanghai morning. The tests share the session's clock and
    count their moments from it; one that ended in the evening would otherwise leave the next
    one's "book now" inside quiet hours, where its confirmation waits for 08:00."""
    if "runtime" not in request.fixturenames or "own_runtime" in request.fixturenames:
        return
    from chalicelib import clock

    runtime = request.getfixturevalue("runtime")
    if not 8 <= clock.now().astimezone(SHANGHAI).hour < 12:
        move_to(runtime, local_moment(days=1, hour=9))


@pytest.fixture
def journey(runtime: Any, api: Api, make_clinic: Any, make_patient: Any) -> Any:
    def make(**patient: Any) -> Journey:
        return Journey(runtime, api, make_clinic(journeys=True), make_patient, **patient)

    return make
