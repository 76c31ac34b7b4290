"""Starting campaign executions (Step Functions): one driver per campaign, one outreach per
patient, each named deterministically so a retried start is a no-op."""

from __future__ import annotations

from chalicelib.domain.campaigns import execution_names
from chalicelib.journeys import start_named
from chalicelib.settings import get_settings


def start_driver(tenant_id: str, campaign_id: str) -> None:
    name, _ = execution_names(tenant_id, campaign_id, "")
    start_named(
        get_settings().campaign_driver_arn,
        name,
        {"tenant_id": tenant_id, "campaign_id": campaign_id},
    )


def start_outreach(tenant_id: str, campaign_id: str, patient_id: str) -> None:
    _, name = execution_names(tenant_id, campaign_id, patient_id)
    start_named(
        get_settings().campaign_outreach_arn,
        name,
        {"tenant_id": tenant_id, "campaign_id": campaign_id, "patient_id": patient_id},
    )
