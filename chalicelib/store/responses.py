"""Questionnaire responses, under the patient's partition (access pattern: one by id, and all of
one patient by key prefix)."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib.audit_trail import noting
from chalicelib.domain.common import Document
from chalicelib.settings import get_settings
from chalicelib.store.keys import patient_pk
from chalicelib.store.models import QuestionnaireResponseItem, bind_models
from chalicelib.store.records import (
    put_versioned,
    stored_body,
    versioned_doc,
)
from chalicelib.store.sealing import seal, unseal

KIND = "questionnaire_response"
# A patient's answers say something of their health: sealed under the tenant's key. The risk
# the answers scored stays in the clear (staff queues and alerts read it).
SEALED_FIELDS = ("answers",)


def _doc(tenant_id: str, item: QuestionnaireResponseItem) -> Document:
    doc = versioned_doc(item)
    return unseal(KIND, tenant_id, doc["id"], doc)


class ResponseRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    @noting("questionnaire_response")
    def get(self, tenant_id: str, patient_id: str, response_id: str) -> Document | None:
        try:
            item = QuestionnaireResponseItem.get(
                patient_pk(tenant_id, patient_id), f"QR#{response_id}"
            )
        except DoesNotExist:
            return None
        return _doc(tenant_id, item)

    @noting("questionnaire_response")
    def put(self, tenant_id: str, doc: Document, expected_version: int | None) -> Document:
        item = QuestionnaireResponseItem(
            patient_pk(tenant_id, doc["patient_id"]),
            f"QR#{doc['id']}",
            entity="qr",
            doc=seal(KIND, tenant_id, doc["id"], stored_body(doc), SEALED_FIELDS),
        )
        stored = put_versioned(item, expected_version)
        return {**doc, "version": stored["version"]}

    @noting("questionnaire_response")
    def for_patient(self, tenant_id: str, patient_id: str) -> list[Document]:
        items = QuestionnaireResponseItem.query(
            patient_pk(tenant_id, patient_id), QuestionnaireResponseItem.sk.startswith("QR#")
        )
        return [_doc(tenant_id, item) for item in items]
