"""Messages owed to a patient outside any journey's state machine: a complaint's closing message,
a promoter's thank-you, an announcement of points earned. Each goes through Deliveries, so
consent, opt-outs and quiet hours apply, and is claimed there once by its key.

A message is owed first (a pending item listed by the moment it may leave), then tried at once;
one deferred by quiet hours, or whose attempt failed (throttled), is sent by the sweep
(`complaint_sweep`, every 15 minutes) when its moment comes. Each kind has a composer that says
what to send, or that nothing is owed any more (the record it was about is gone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalicelib import clock
from chalicelib.domain.common import Document, utc_iso
from chalicelib.observability import logger
from chalicelib.services.deliveries import Deliveries, Message
from chalicelib.store.patients import PatientRepository
from chalicelib.store.satisfaction import SatisfactionRepository
from chalicelib.store.tenants import TenantRepository


@dataclass(frozen=True)
class OwedMessage:
    """What to send for an owed message: its delivery key (claimed once), the template's fields
    and what it is about (logged with the delivery)."""

    key: str
    fields: Document
    about: dict[str, str]


# (tenant, patient, the owed item) → what to send, or None when nothing is owed any more.
Composer = Callable[[Document, Document, Document], OwedMessage | None]


class OwedMessages:
    def __init__(
        self,
        pending: SatisfactionRepository,
        tenants: TenantRepository,
        patients: PatientRepository,
        deliveries: Deliveries,
    ) -> None:
        self._pending = pending
        self._tenants = tenants
        self._patients = patients
        self._deliveries = deliveries
        self._composers: dict[str, Composer] = {}

    def compose(self, kind: str, composer: Composer) -> None:
        """How messages of `kind` (their template's step) are composed."""
        self._composers[kind] = composer

    def owe_and_try(self, tenant_id: str, patient_id: str, key: str, doc: Document) -> None:
        """Owe the message (so the sweep sends it if this cannot), then try at once. Never
        raises: what could not be sent stays owed."""
        self._pending.owe(tenant_id, patient_id, key, doc, utc_iso(clock.now()))
        try:
            self.send(tenant_id, {**doc, "key": key, "patient_id": patient_id})
        except Exception:  # throttled, failing: owed, so the sweep sends it
            logger.exception("message owed to the sweep", extra={"kind": doc["kind"]})

    def send_due(self, tenant_id: str) -> tuple[int, int]:
        """The sweep's part for one tenant: (sent, failed) of the messages whose moment came."""
        sent = failed = 0
        for owed in self._pending.due(tenant_id, utc_iso(clock.now())):
            try:
                sent += self.send(tenant_id, owed)
            except Exception:
                logger.exception("owed message not sent yet", extra={"kind": owed.get("kind")})
                failed += 1
        return sent, failed

    def send(self, tenant_id: str, owed: Document) -> int:
        """Send one owed message if its moment has come: 1 if it left now."""
        tenant = self._tenants.get(tenant_id)
        patient = self._patients.get(tenant_id, owed["patient_id"])
        composed = (
            self._composers[owed["kind"]](tenant, patient, owed)
            if tenant is not None and patient is not None
            else None
        )
        if tenant is None or patient is None or composed is None:
            self._pending.settled(tenant_id, owed["patient_id"], owed["key"])
            return 0  # gone, or nothing to say any more
        result = self._deliveries.deliver(
            tenant,
            patient,
            Message(owed["kind"], composed.key, composed.fields, composed.about),
            clock.now(),
        )
        if result["status"] == "deferred":
            doc = {k: v for k, v in owed.items() if k not in ("key", "patient_id")}
            self._pending.owe(tenant_id, patient["id"], owed["key"], doc, result["retry_at"])
            return 0
        self._pending.settled(tenant_id, patient["id"], owed["key"])
        return 1 if result["status"] == "sent" else 0
