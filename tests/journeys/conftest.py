"""Fixtures of the journey tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.journeys.support import Journey


@pytest.fixture
def journey(runtime: Any, api: Api, make_clinic: Any, make_patient: Any) -> Any:
    def make(**patient: Any) -> Journey:
        return Journey(runtime, api, make_clinic(journeys=True), make_patient, **patient)

    return make
