"""The complaints' schedule: overdue complaints escalate to their departments' leads, and the
messages owed to patients (a complaint's answer, a promoter's thank-you) that quiet hours held
back go out."""

from __future__ import annotations

from typing import Any

from chalicelib.handlers.runner import Event
from chalicelib.services.registry import services


def complaint_sweep(event: Any) -> Event:
    return services().complaints.sweep()
