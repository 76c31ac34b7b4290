"""Privacy schedules: the daily retention sweep over soft-deleted patients."""

from __future__ import annotations

from typing import Any

from chalicelib.handlers.runner import Event
from chalicelib.services.registry import services


def retention_sweep(event: Any) -> Event:
    """Erase the patients deleted longer ago than their tenant keeps deleted records."""
    found = services()
    return dict(found.erasure.purge_expired(found.tenants))
