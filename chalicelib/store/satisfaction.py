"""The satisfaction survey's claim per patient (row 77) and the messages owed to patients
outside any journey (rows 78-79), both in the patient's partition."""

from __future__ import annotations

from pynamodb.exceptions import PutError

from chalicelib.domain.common import Document
from chalicelib.settings import get_settings
from chalicelib.store.keys import patient_pk
from chalicelib.store.models import PendingMessageItem, SatisfactionClaimItem, bind_models
from chalicelib.store.records import as_document, is_condition_failure

CLAIM_SK = "SATISFACTION"
PENDING_PREFIX = "FEEDBACKMSG#"


def pending_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#FEEDBACKMSG"


class SatisfactionRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def claim(
        self,
        tenant_id: str,
        patient_id: str,
        *,
        visit_at: str,
        window_start: str,
        event_key: str,
        now: str,
    ) -> bool:
        """Take the patient's survey claim for this visit: if they were never asked, were last
        asked about a visit at or before `window_start`, or this very event holds it (a replay).
        Conditional, so two visits at once cannot both ask."""
        item = SatisfactionClaimItem(
            patient_pk(tenant_id, patient_id),
            CLAIM_SK,
            entity="satisfaction_claim",
            visit_at=visit_at,
            event_key=event_key,
            claimed_at=now,
        )
        try:
            item.save(
                condition=SatisfactionClaimItem.pk.does_not_exist()
                | (SatisfactionClaimItem.visit_at <= window_start)
                | (SatisfactionClaimItem.event_key == event_key)
            )
        except PutError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def owe(
        self, tenant_id: str, patient_id: str, key: str, doc: Document, not_before: str
    ) -> None:
        """A message owed to the patient from `not_before` (a replay puts the same item)."""
        PendingMessageItem(
            patient_pk(tenant_id, patient_id),
            f"{PENDING_PREFIX}{key}",
            entity="pending_message",
            doc={**doc, "key": key, "patient_id": patient_id},
            gsi2pk=pending_pk(tenant_id),
            gsi2sk=f"{not_before}#{patient_id}#{key}",
        ).save()

    def settled(self, tenant_id: str, patient_id: str, key: str) -> None:
        PendingMessageItem(patient_pk(tenant_id, patient_id), f"{PENDING_PREFIX}{key}").delete()

    def due(self, tenant_id: str, now_iso: str) -> list[Document]:
        """Messages owed whose moment has come (the sweep)."""
        return [
            as_document(item.doc)
            for item in PendingMessageItem.due.query(
                pending_pk(tenant_id), PendingMessageItem.gsi2sk <= f"{now_iso}#~"
            )
        ]
