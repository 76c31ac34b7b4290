"""Smoke-run records (access pattern: get one run by tenant and run id)."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib.settings import get_settings
from chalicelib.store.models import SmokeRunItem, bind_models


def _pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#SMOKE"


class SmokeRunRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def record(self, tenant_id: str, run_id: str, recorded_at: str) -> None:
        SmokeRunItem(
            _pk(tenant_id), run_id, entity="smoke", run_id=run_id, recorded_at=recorded_at
        ).save()

    def recorded_at(self, tenant_id: str, run_id: str) -> str | None:
        try:
            return SmokeRunItem.get(_pk(tenant_id), run_id).recorded_at
        except DoesNotExist:
            return None
