"""A tenant's own wording of journey messages, checked when saved."""

from __future__ import annotations

from chalicelib import clock
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, NotFound, Problems, invalid
from chalicelib.domain.messages import (
    CHANNELS,
    TEMPLATE_KINDS,
    Rendered,
    check_template,
    render,
    sample_fields,
    template_id,
)
from chalicelib.domain.tenants import with_own_wording
from chalicelib.services.versions import revise
from chalicelib.store.config import ConfigRepository, TenantChanged
from chalicelib.store.tenants import TenantRepository

LANGUAGES = ("zh-CN", "zh-TW", "en", "en-GB", "en-US")


def try_render(step: str, channel: str, language: str, body: Document) -> Rendered:
    """Render with sample values, so a template that would fail at send time fails now."""
    from jinja2 import TemplateError

    try:
        return render(
            step,
            channel,
            language,
            sample_fields(language),
            override=body["body"],
            subject_override=body.get("subject"),
        )
    except TemplateError as exc:
        raise invalid("$.body", f"the template does not render: {exc}") from exc


# Saving a wording lists it on the tenant in the same write; an edit of the tenant meanwhile
# makes it read the tenant again, this many times at most.
_TENANT_RACES = 3


class TemplateService:
    def __init__(self, config: ConfigRepository, tenants: TenantRepository) -> None:
        self._config = config
        self._tenants = tenants

    def put(
        self,
        principal: Principal,
        step: str,
        channel: str,
        language: str,
        body: Document,
        if_match: str | None,
    ) -> Document:
        require_role(principal, {Role.ADMIN})
        if step not in TEMPLATE_KINDS or channel not in CHANNELS or language not in LANGUAGES:
            raise NotFound("no such step, channel or language")
        problems = Problems()
        with problems.check():
            check_template(body["body"], channel)
        if "subject" in body:
            with problems.check():
                check_template(body["subject"], "subject")
        problems.raise_if_any()
        tenant_id = tenant_of(principal)
        record_id = template_id(step, channel, language)
        current = self._config.get(tenant_id, "TEMPLATE", record_id)
        doc = revise(
            current,
            {**body, "step": step, "channel": channel, "language": language},
            record_id,
            if_match,
            utc_iso(clock.now()),
        )
        sample = try_render(step, channel, language, body)
        if sample.segments is not None:
            doc["sms_segments"] = sample.segments
        return self._save(tenant_id, doc, current["version"] if current else None)

    def _save(self, tenant_id: str, doc: Document, expected_version: int | None) -> Document:
        """Save the wording, listed on the tenant (the journeys read the tenant at every step
        and so learn which wordings exist without reading for each)."""
        for _ in range(_TENANT_RACES):
            tenant = self._tenants.get(tenant_id)
            if tenant is None:
                raise NotFound("tenant not found")
            saved = tenant.get("own_wording")
            if saved is None:  # a tenant from before the list: list what it saved then
                saved = [t["id"] for t in self._config.records(tenant_id, "TEMPLATE")]
            listing = with_own_wording(tenant, doc["id"], saved)
            if listing is None:
                return self._config.put(tenant_id, "TEMPLATE", doc, expected_version)
            try:
                return self._config.put_noted_on_tenant(listing, "TEMPLATE", doc, expected_version)
            except TenantChanged:
                continue
        raise Conflict(
            "the hospital's settings kept changing while the wording was saved; retry",
            code="version_conflict",
        )

    def all(self, principal: Principal) -> list[Document]:
        require_role(principal, CLINIC_ROLES)
        return self._config.records(tenant_of(principal), "TEMPLATE")
