"""A tenant's care plans (what follows a discharge, a surgery or a visit) and recall rules (when
a patient is due back), checked when saved."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from chalicelib import clock
from chalicelib.domain import care_plans, recall
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id, utc_iso
from chalicelib.domain.errors import Conflict, NotFound, invalid
from chalicelib.domain.satisfaction import BUILTIN_PREFIX
from chalicelib.domain.tenants import department_names
from chalicelib.observability import run_hooks
from chalicelib.services.questionnaires import QuestionnaireService
from chalicelib.services.tenants import TenantService
from chalicelib.services.versions import revise
from chalicelib.store.config import ConfigRepository

CARE_PLAN = "CAREPLAN"
RECALL_RULE = "RECALLRULE"
RECALL_BACKFILL = "RECALLBACKFILL"  # which version of each rule has been backfilled


class CareConfigService:
    def __init__(
        self,
        config: ConfigRepository,
        tenants: TenantService,
        questionnaires: QuestionnaireService,
    ) -> None:
        self._config = config
        self._tenants = tenants
        self._questionnaires = questionnaires
        # Told of each rule saved (the recall backfill); set by the registry.
        self.on_rule_saved: list[Callable[[str, Document], None]] = []

    def _save(
        self, principal: Principal, kind: str, record_id: str, body: Document, if_match: str | None
    ) -> Document:
        tenant_id = tenant_of(principal)
        current = self._config.get(tenant_id, kind, record_id)
        doc = revise(current, body, record_id, if_match, utc_iso(clock.now()))
        return self._config.put(tenant_id, kind, doc, current["version"] if current else None)

    def _departments(self, principal: Principal) -> set[str]:
        tenant = self._tenants.require(tenant_of(principal))
        return set(department_names(tenant))

    def put_plan(
        self, principal: Principal, plan_id: str, body: Document, if_match: str | None
    ) -> Document:
        require_role(principal, {Role.ADMIN})
        if not is_valid_id(plan_id):
            raise invalid("plan_id", "use 2 to 40 lowercase letters, digits or -")
        if plan_id.startswith(BUILTIN_PREFIX):
            raise invalid("plan_id", f"{BUILTIN_PREFIX}... names the product's own plans")
        questionnaire_ids = {q["id"] for q in self._questionnaires.all(principal)}
        care_plans.check_plan(body, questionnaire_ids, self._departments(principal))
        return self._save(principal, CARE_PLAN, plan_id, body, if_match)

    def put_rule(
        self, principal: Principal, rule_id: str, body: Document, if_match: str | None
    ) -> Document:
        require_role(principal, {Role.ADMIN})
        if not is_valid_id(rule_id):
            raise invalid("rule_id", "use 2 to 40 lowercase letters, digits or -")
        recall.check_rule(body, self._departments(principal))
        saved = self._save(principal, RECALL_RULE, rule_id, body, if_match)
        run_hooks(self.on_rule_saved, tenant_of(principal), saved)
        return saved

    def get(self, principal: Principal, kind: str, record_id: str) -> Document:
        require_role(principal, CLINIC_ROLES)
        found = self._config.get(tenant_of(principal), kind, record_id)
        if found is None:
            raise NotFound("care plan not found" if kind == CARE_PLAN else "recall rule not found")
        return found

    def all(self, principal: Principal, kind: str) -> list[Document]:
        require_role(principal, CLINIC_ROLES)
        return (
            self.plans(tenant_of(principal))
            if kind == CARE_PLAN
            else self.rules(tenant_of(principal))
        )

    def plans(self, tenant_id: str) -> list[Document]:
        return self._config.records(tenant_id, CARE_PLAN)

    def rules(self, tenant_id: str) -> list[Document]:
        return [r for r in self._config.records(tenant_id, RECALL_RULE) if r.get("enabled", True)]

    def rules_and_backfilled(self, tenant_id: str) -> tuple[list[Document], dict[str, int]]:
        """`rules` and `backfilled` in one Query (both kinds start with RECALL): the daily
        sweep reads them for every tenant."""
        found = self._config.records_of_kinds(tenant_id, "RECALL")
        rules = [r for r in found.get(RECALL_RULE, []) if r.get("enabled", True)]
        done = {d["id"]: int(d["rule_version"]) for d in found.get(RECALL_BACKFILL, [])}
        return rules, done

    def mark_backfilled(self, tenant_id: str, rule_id: str, version: int, scheduled: int) -> None:
        current = self._config.get(tenant_id, RECALL_BACKFILL, rule_id)
        if current is not None and int(current["rule_version"]) >= version:
            return  # a replayed last page, or a later version's backfill was first
        doc = {
            "id": rule_id,
            "rule_version": version,
            "scheduled": scheduled,
            "finished_at": utc_iso(clock.now()),
        }
        # Another page's marking may come in between (Conflict): one of them stands.
        with contextlib.suppress(Conflict):
            self._config.put(
                tenant_id, RECALL_BACKFILL, doc, current["version"] if current else None
            )

    def plan(self, tenant_id: str, plan_id: str) -> Document | None:
        return self._config.get(tenant_id, CARE_PLAN, plan_id)

    def rule(self, tenant_id: str, rule_id: str) -> Document | None:
        return self._config.get(tenant_id, RECALL_RULE, rule_id)
