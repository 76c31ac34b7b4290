"""Registering the app on a patient's device for push messages."""

from __future__ import annotations

import hashlib

from chalicelib import clock
from chalicelib.adapters.channels import Channels
from chalicelib.domain.access import Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import DependencyUnavailable
from chalicelib.settings import get_settings
from chalicelib.store.devices import DeviceRepository


class DeviceService:
    def __init__(self, devices: DeviceRepository, channels: Channels) -> None:
        self._devices = devices
        self._channels = channels

    def register(self, principal: Principal, body: Document) -> Document:
        require_role(principal, {Role.PATIENT})
        application = get_settings().push_application_arn
        if not application:
            raise DependencyUnavailable("push messaging is not set up on this platform")
        # SNS returns the same endpoint for the same token, so registering twice is harmless,
        # also when a shared device (a family tablet) registers for a second patient: nothing
        # about the patient is attached to the endpoint.
        endpoint = self._channels.register_device(application, body["token"])
        key = hashlib.sha256(body["token"].encode()).hexdigest()[:24]
        registered_at = utc_iso(clock.now())
        self._devices.add(
            tenant_of(principal),
            str(principal.patient_id),
            key,
            endpoint,
            body["platform"],
            registered_at,
        )
        return {"device_id": key, "platform": body["platform"], "registered_at": registered_at}
