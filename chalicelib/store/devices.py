"""Push devices of a patient (access pattern: all devices of one patient, by key prefix)."""

from __future__ import annotations

from chalicelib.settings import get_settings
from chalicelib.store.keys import patient_pk
from chalicelib.store.models import DeviceItem, bind_models


class DeviceRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def add(
        self,
        tenant_id: str,
        patient_id: str,
        device_key: str,
        endpoint_arn: str,
        platform: str,
        at: str,
    ) -> None:
        DeviceItem(
            patient_pk(tenant_id, patient_id),
            f"DEVICE#{device_key}",
            entity="device",
            endpoint_arn=endpoint_arn,
            platform=platform,
            registered_at=at,
        ).save()

    def endpoints(self, tenant_id: str, patient_id: str) -> list[str]:
        items = DeviceItem.query(
            patient_pk(tenant_id, patient_id), DeviceItem.sk.startswith("DEVICE#")
        )
        return [item.endpoint_arn for item in items]
