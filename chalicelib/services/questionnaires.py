"""Questionnaire definitions: the starter set every tenant has, and the hospital's own (which
may override a starter by using its id)."""

from __future__ import annotations

from chalicelib import clock
from chalicelib.domain import questionnaires as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id, utc_iso
from chalicelib.domain.errors import NotFound, invalid
from chalicelib.domain.questionnaire_starters import STARTERS
from chalicelib.services.versions import revise
from chalicelib.store.config import ConfigRepository

EVERYONE = CLINIC_ROLES | {Role.PATIENT}


def _starter(definition: Document) -> Document:
    return {**definition, "source": "starter"}


class QuestionnaireService:
    def __init__(self, config: ConfigRepository) -> None:
        self._config = config

    def put(
        self, principal: Principal, questionnaire_id: str, body: Document, if_match: str | None
    ) -> Document:
        require_role(principal, {Role.ADMIN})
        if not is_valid_id(questionnaire_id):
            raise invalid("questionnaire_id", "use 2 to 40 lowercase letters, digits or -")
        rules.check_definition(body)
        tenant_id = tenant_of(principal)
        current = self._config.get(tenant_id, "QUESTIONNAIRE", questionnaire_id)
        doc = revise(
            current, {**body, "source": "tenant"}, questionnaire_id, if_match, utc_iso(clock.now())
        )
        return self._config.put(
            tenant_id, "QUESTIONNAIRE", doc, current["version"] if current else None
        )

    def get(self, principal: Principal, questionnaire_id: str) -> Document:
        require_role(principal, EVERYONE)
        found = self.definition(tenant_of(principal), questionnaire_id)
        if found is None:
            raise NotFound("questionnaire not found")
        return found

    def definition(self, tenant_id: str, questionnaire_id: str) -> Document | None:
        """The tenant's own questionnaire of this id, else the starter; None if neither."""
        own = (
            self._config.get(tenant_id, "QUESTIONNAIRE", questionnaire_id)
            if is_valid_id(questionnaire_id)
            else None
        )
        if own is not None:
            return own
        if questionnaire_id in STARTERS:
            return _starter(STARTERS[questionnaire_id])
        return None

    def all(self, principal: Principal) -> list[Document]:
        require_role(principal, CLINIC_ROLES)
        own = self._config.records(tenant_of(principal), "QUESTIONNAIRE")
        overridden = {q["id"] for q in own}
        starters = [_starter(d) for key, d in STARTERS.items() if key not in overridden]
        return sorted(own + starters, key=lambda q: q["id"])
