"""An appointment journey's compact record: one item per journey version beside its appointment
(`T#<t>#A#<a>`, `JOURNEY#v<n>`), with the plan the start step made and what each step did,
written by the step handler as it goes. A timeline reads these, never the executions' history.
Erasure deletes them with the appointment's partition."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.domain.common import Document
from chalicelib.settings import get_settings
from chalicelib.store.keys import appointment_pk
from chalicelib.store.models import JourneyRecordItem, bind_models
from chalicelib.store.records import as_document, is_condition_failure, plain

PREFIX = "JOURNEY#v"


def _sk(version: int) -> str:
    return f"{PREFIX}{version:04d}"


class JourneyRecordRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def started(
        self, tenant_id: str, appointment_id: str, version: int, planned: Document, at: str
    ) -> None:
        """The journey's plan (`plan`, and what the plan says of itself: `left_out`, `moved`),
        once: a replayed start keeps the record the first one made."""
        item = JourneyRecordItem(
            appointment_pk(tenant_id, appointment_id),
            _sk(version),
            entity="journey_record",
            doc=plain(
                {
                    "appointment_id": appointment_id,
                    "journey_version": version,
                    "started_at": at,
                    **planned,
                    "steps": {},
                }
            ),
        )
        try:
            item.save(condition=JourneyRecordItem.pk.does_not_exist())
        except PutError as exc:
            if not is_condition_failure(exc):
                raise

    def noted(
        self, tenant_id: str, appointment_id: str, version: int, outcomes: dict[str, Document]
    ) -> None:
        """What steps did, by step (the latest outcome of a step stands: a deferred message's
        record becomes its sending), in one write. A record that is not there (an appointment
        erased meanwhile) is not made again."""
        item = JourneyRecordItem(appointment_pk(tenant_id, appointment_id), _sk(version))
        try:
            item.update(
                actions=[
                    JourneyRecordItem.doc["steps"][step].set(plain(outcome))
                    for step, outcome in outcomes.items()
                ],
                condition=JourneyRecordItem.pk.exists(),
            )
        except UpdateError as exc:
            if not is_condition_failure(exc):
                raise

    def for_appointment(self, tenant_id: str, appointment_id: str) -> list[Document]:
        """Every journey version's record of the appointment, oldest first."""
        found: list[Any] = list(
            JourneyRecordItem.query(
                appointment_pk(tenant_id, appointment_id),
                JourneyRecordItem.sk.startswith(PREFIX),
            )
        )
        return [as_document(item.doc) for item in found]
