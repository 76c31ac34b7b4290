"""Tenant use cases."""

from __future__ import annotations

from chalicelib import clock
from chalicelib.domain import tenants as rules
from chalicelib.domain.access import Principal, Role, check_tenant_visible, require_role
from chalicelib.domain.common import Document
from chalicelib.domain.errors import NotFound
from chalicelib.observability import count
from chalicelib.schemas import validate
from chalicelib.services.versions import check_expected_version
from chalicelib.settings import get_settings
from chalicelib.store.tenants import TenantRepository
from chalicelib.tenant_scope import acting_for

CAN_EDIT = frozenset({Role.OPERATOR, Role.ADMIN})
CAN_READ = frozenset({Role.OPERATOR, Role.ADMIN, Role.STAFF})


class TenantService:
    def __init__(self, repository: TenantRepository) -> None:
        self._tenants = repository

    def create(self, principal: Principal, body: Document) -> Document:
        require_role(principal, {Role.OPERATOR})
        now = clock.now()
        # An operator belongs to no tenant: each of their requests acts for the one it names.
        with acting_for(body["id"]):
            created = self._tenants.create(
                rules.new_tenant(body, now, clock.iso(now), get_settings().stage)
            )
        count("TenantCreated")
        return created

    def get(self, principal: Principal, tenant_id: str) -> Document:
        require_role(principal, CAN_READ)
        check_tenant_visible(principal, tenant_id)
        with acting_for(tenant_id):  # the caller's own tenant, or the one an operator names
            return self.require(tenant_id)

    def require(self, tenant_id: str) -> Document:
        """The tenant a verified token names; its absence means the token outlived its tenant."""
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise NotFound("tenant not found")
        return tenant

    def all_ids(self) -> list[str]:
        """Every tenant's id, for the sweeps that visit each."""
        return self._tenants.all_ids()

    def provision(self, props: Document) -> Document:
        """Create or change a tenant as its hospital stack describes it (the stack's custom
        resource, on Create and Update). A deactivated tenant comes back active."""
        body = rules.tenant_from_stack(props)
        validate("tenant-create", body)
        current = self._tenants.get(body["id"])
        now = clock.now()
        stage = get_settings().stage
        if current is None:
            created = self._tenants.create(rules.new_tenant(body, now, clock.iso(now), stage))
            count("TenantOnboarded")
            return created
        patch: Document = {key: body.get(key) for key in rules.STACK_FIELDS}
        changed = rules.patched_tenant(
            current, patch, clock.iso(now), by_operator=True, stage=stage
        )
        changed["active"] = True
        return self._tenants.replace(changed, expected_version=current["version"], previous=current)

    def deactivate(self, tenant_id: str) -> Document | None:
        """The hospital's stack was deleted: keep every record, send nothing more."""
        current = self._tenants.get(tenant_id)
        if current is None or not rules.is_active(current):
            return current
        changed = {**current, "active": False, "updated_at": clock.iso(clock.now())}
        count("TenantDeactivated")
        return self._tenants.replace(changed, expected_version=current["version"], previous=current)

    def update(
        self, principal: Principal, tenant_id: str, patch: Document, if_match: str | None
    ) -> Document:
        require_role(principal, CAN_EDIT)
        current = self.get(principal, tenant_id)
        check_expected_version(current, if_match)
        changed = rules.patched_tenant(
            current,
            patch,
            clock.iso(clock.now()),
            by_operator=principal.role is Role.OPERATOR,
            stage=get_settings().stage,
        )
        with acting_for(tenant_id):  # get() checked the caller may see it
            return self._tenants.replace(
                changed, expected_version=current["version"], previous=current
            )
