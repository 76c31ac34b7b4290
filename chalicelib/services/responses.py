"""A patient answering a questionnaire: start, save partial answers, submit."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from chalicelib import clock
from chalicelib.domain import questionnaires as rules
from chalicelib.domain.access import (
    CLINIC_ROLES,
    Principal,
    Role,
    check_patient_visible,
    require_role,
    tenant_of,
)
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.satisfaction import QUESTIONNAIRE as SATISFACTION
from chalicelib.observability import count, run_hooks
from chalicelib.services.questionnaires import QuestionnaireService
from chalicelib.store.patients import PatientRepository
from chalicelib.store.responses import ResponseRepository

PATIENTS = frozenset({Role.PATIENT})


class ResponseService:
    def __init__(
        self,
        responses: ResponseRepository,
        patients: PatientRepository,
        questionnaires: QuestionnaireService,
        on_submitted: Callable[[str, Document], None],
        on_saved: Sequence[Callable[[str, Document], None]] = (),
        # A member's read outside their departments: refused without a reason (break-glass).
        check_access: Callable[[Principal, Document], None] | None = None,
    ) -> None:
        self._check_access = check_access
        self._responses = responses
        self._patients = patients
        self._questionnaires = questionnaires
        self._on_submitted = on_submitted
        self._on_saved = on_saved  # told of a submitted response once it is saved (webhooks)

    def start(self, principal: Principal, questionnaire_id: str, answers: Document) -> Document:
        require_role(principal, PATIENTS)
        definition = self._questionnaires.get(principal, questionnaire_id)
        given = {k: v for k, v in answers.items() if v is not None}
        rules.check_answers(definition, given, complete=False)
        now = utc_iso(clock.now())
        doc = {
            "id": "qr-" + secrets.token_hex(8),
            "questionnaire": questionnaire_id,
            "patient_id": principal.patient_id,
            "status": "in-progress",
            "answers": given,
            "created_at": now,
            "updated_at": now,
        }
        return self._responses.put(tenant_of(principal), doc, None)

    def get_own(self, principal: Principal, response_id: str) -> Document:
        require_role(principal, PATIENTS)
        current = (
            self._responses.get(tenant_of(principal), str(principal.patient_id), response_id)
            if response_id.startswith("qr-")
            else None
        )
        if current is None:
            raise NotFound("questionnaire response not found")
        return current

    def _own_open(self, principal: Principal, response_id: str) -> tuple[Document, Document]:
        current = self.get_own(principal, response_id)
        if current["status"] != "in-progress":
            raise Conflict("this questionnaire was submitted already", code="already_submitted")
        return current, self._questionnaires.get(principal, current["questionnaire"])

    def save(self, principal: Principal, response_id: str, answers: Document) -> Document:
        """A partial save: answers merge, null removes one; wrong answers are named now."""
        current, definition = self._own_open(principal, response_id)
        merged = {**current["answers"], **answers}
        merged = {k: v for k, v in merged.items() if v is not None}
        rules.check_answers(definition, merged, complete=False)
        changed = {**current, "answers": merged, "updated_at": utc_iso(clock.now())}
        return self._responses.put(tenant_of(principal), changed, current["version"])

    def submit(self, principal: Principal, response_id: str) -> Document:
        current, definition = self._own_open(principal, response_id)
        rules.check_answers(definition, current["answers"], complete=True)
        now = utc_iso(clock.now())
        completed = {
            **current,
            "status": "completed",
            "authored_at": now,
            "updated_at": now,
            "risk": rules.risk_of(definition, current["answers"]),
        }
        if current["questionnaire"] == SATISFACTION and "score" in current["answers"]:
            completed["nps_score"] = current["answers"]["score"]  # the figures read it unsealed
        # Alert and tell the journey first, then save: if the save fails the patient submits
        # again and the (idempotent) alert is repeated, never lost.
        self._on_submitted(tenant_of(principal), completed)
        saved = self._responses.put(tenant_of(principal), completed, current["version"])
        count(f"QuestionnaireRisk{saved['risk'].capitalize()}")
        run_hooks(self._on_saved, tenant_of(principal), saved)
        return saved

    def for_patient(self, principal: Principal, patient_id: str | None) -> list[Document]:
        require_role(principal, CLINIC_ROLES | PATIENTS)
        patient_id = patient_id or principal.patient_id
        if patient_id is None:
            raise NotFound("patient not found")
        check_patient_visible(principal, patient_id)
        tenant_id = tenant_of(principal)
        patient = self._patients.get(tenant_id, patient_id)
        if patient is None:
            raise NotFound("patient not found")  # not an empty list: ids cannot be probed
        if self._check_access is not None:
            self._check_access(principal, patient)
        return self._responses.for_patient(tenant_id, patient_id)
