"""Campaigns, their recipients and the per-tenant rate windows. See README.md (rows 44-49).

Progress counters move only with ADD, each in one transaction with the recipient item that makes
the change happen once: a recipient is created once (started + 1) and given an outcome once
(sent / suppressed / failed + 1), so a replayed task never counts twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError

from chalicelib.domain.campaigns import COUNTERS, OUTCOMES
from chalicelib.domain.common import Document
from chalicelib.settings import get_settings
from chalicelib.store.models import (
    CampaignItem,
    CampaignRecipientItem,
    RateWindowItem,
    bind_models,
)
from chalicelib.store.records import (
    as_document,
    failed_items,
    is_condition_failure,
    transaction_write,
)

CAMPAIGN_SK = "CAMPAIGN"
RATE_WINDOW_KEEP = timedelta(days=1)
RATE_CLAIM_ATTEMPTS = 5
CampaignPosition = tuple[str, str]  # (listing sort key, campaign id)


def campaign_pk(tenant_id: str, campaign_id: str) -> str:
    return f"T#{tenant_id}#CAMPAIGN#{campaign_id}"


def campaigns_listing_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#CAMPAIGNS"


def rate_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#CAMPAIGN-RATE"


def _to_doc(item: CampaignItem) -> Document:
    counters = {name: int(getattr(item, name) or 0) for name in COUNTERS}
    return {
        **as_document(item.doc),
        "progress": counters,
        "cursor": item.cursor,
        "exhausted_at": item.exhausted_at,
    }


class CampaignRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def create(self, tenant_id: str, doc: Document, targeted: int) -> Document:
        item = CampaignItem(
            campaign_pk(tenant_id, doc["id"]),
            CAMPAIGN_SK,
            entity="campaign",
            doc=doc,
            targeted=targeted,
            started=0,
            sent=0,
            suppressed=0,
            failed=0,
            held_out=0,
            gsi2pk=campaigns_listing_pk(tenant_id),
            gsi2sk=f"{doc['created_at']}#{doc['id']}",
        )
        item.save(condition=CampaignItem.pk.does_not_exist())
        return _to_doc(item)

    def get(self, tenant_id: str, campaign_id: str) -> Document | None:
        try:
            item = CampaignItem.get(
                campaign_pk(tenant_id, campaign_id), CAMPAIGN_SK, consistent_read=True
            )
        except DoesNotExist:
            return None
        return _to_doc(item)

    def page(
        self, tenant_id: str, limit: int, after: CampaignPosition | None
    ) -> tuple[list[Document], CampaignPosition | None]:
        """Newest first."""
        start = None
        if after is not None:
            sort_key, campaign_id = after
            start = {
                "PK": {"S": campaign_pk(tenant_id, campaign_id)},
                "SK": {"S": CAMPAIGN_SK},
                "GSI2PK": {"S": campaigns_listing_pk(tenant_id)},
                "GSI2SK": {"S": sort_key},
            }
        result = CampaignItem.by_tenant.query(
            campaigns_listing_pk(tenant_id),
            limit=limit,
            last_evaluated_key=start,
            scan_index_forward=False,
        )
        docs = [_to_doc(item) for item in result]
        last = result.last_evaluated_key
        position = (last["GSI2SK"]["S"], docs[-1]["id"]) if last and docs else None
        return docs, position

    def advance(
        self, tenant_id: str, campaign_id: str, cursor: str | None, exhausted_at: str | None
    ) -> None:
        """Where the driver continues from; or that it has paged the whole segment."""
        item = CampaignItem(campaign_pk(tenant_id, campaign_id), CAMPAIGN_SK)
        actions: list[Any] = [
            CampaignItem.cursor.set(cursor) if cursor else CampaignItem.cursor.remove()
        ]
        if exhausted_at:
            actions.append(CampaignItem.exhausted_at.set(exhausted_at))
        item.update(actions=actions)

    def mark_started(
        self, tenant_id: str, campaign_id: str, patient_id: str, at: str, arm: str
    ) -> bool:
        """Record that a patient's outreach starts, in `arm`; False if it already had."""
        pk = campaign_pk(tenant_id, campaign_id)
        try:
            with transaction_write() as tx:
                tx.save(
                    CampaignRecipientItem(
                        pk,
                        f"P#{patient_id}",
                        entity="campaign_recipient",
                        started_at=at,
                        arm=arm,
                    ),
                    condition=CampaignRecipientItem.pk.does_not_exist(),
                )
                tx.update(CampaignItem(pk, CAMPAIGN_SK), actions=[CampaignItem.started.add(1)])
        except TransactWriteError as exc:
            if failed_items(exc):
                return False
            raise
        return True

    def record_outcome(
        self, tenant_id: str, campaign_id: str, patient_id: str, outcome: str, at: str
    ) -> bool:
        """Record a patient's outcome once, at `at`; False if it already had one."""
        if outcome not in OUTCOMES:
            raise ValueError(f"not an outcome: {outcome}")
        pk = campaign_pk(tenant_id, campaign_id)
        counter = getattr(CampaignItem, outcome)
        try:
            with transaction_write() as tx:
                tx.update(
                    CampaignRecipientItem(pk, f"P#{patient_id}"),
                    actions=[
                        CampaignRecipientItem.outcome.set(outcome),
                        CampaignRecipientItem.outcome_at.set(at),
                    ],
                    condition=CampaignRecipientItem.pk.exists()
                    & CampaignRecipientItem.outcome.does_not_exist(),
                )
                tx.update(CampaignItem(pk, CAMPAIGN_SK), actions=[counter.add(1)])
        except TransactWriteError as exc:
            if failed_items(exc):
                return False
            raise
        return True

    def recipients(self, tenant_id: str, campaign_id: str) -> Iterator[tuple[str, Document]]:
        """A campaign's recipients as stored (a rebuild of its effect): (patient, item)."""
        for item in CampaignRecipientItem.query(
            campaign_pk(tenant_id, campaign_id), CampaignRecipientItem.sk.startswith("P#")
        ):
            yield (
                item.sk.removeprefix("P#"),
                {
                    "started_at": item.started_at,
                    "arm": item.arm,
                    "outcome": item.outcome,
                    "outcome_at": item.outcome_at,
                },
            )

    def claim_rate(self, tenant_id: str, now: datetime, window: str, limit: int, want: int) -> int:
        """Take up to `want` of the `limit` starts a tenant has in this minute's window; how many
        were granted (0 when the window is used up)."""
        expires = now + RATE_WINDOW_KEEP
        for _ in range(RATE_CLAIM_ATTEMPTS):
            try:
                used = int(
                    RateWindowItem.get(rate_pk(tenant_id), window, consistent_read=True).used
                )
            except DoesNotExist:
                used = 0
            granted = min(want, limit - used)
            if granted <= 0:
                return 0
            item = RateWindowItem(rate_pk(tenant_id), window, entity="rate_window")
            try:
                item.update(
                    actions=[
                        RateWindowItem.used.add(granted),
                        RateWindowItem.entity.set("rate_window"),
                        RateWindowItem.expires_at.set(expires),
                    ],
                    condition=RateWindowItem.used.does_not_exist()
                    | (RateWindowItem.used <= limit - granted),
                )
            except UpdateError as exc:
                if is_condition_failure(exc):
                    continue  # another campaign took some meanwhile: look again
                raise
            return granted
        return 0

    def rate_used(self, tenant_id: str, window: str) -> int:
        """How many places of this minute's window are taken (a consistent read)."""
        try:
            return int(RateWindowItem.get(rate_pk(tenant_id), window, consistent_read=True).used)
        except DoesNotExist:
            return 0

    def release_rate(self, tenant_id: str, window: str, unused: int) -> None:
        """Give back starts claimed but not used (the segment ended first)."""
        if unused > 0:
            try:
                RateWindowItem(rate_pk(tenant_id), window).update(
                    actions=[RateWindowItem.used.add(-unused)],
                    condition=RateWindowItem.used >= unused,
                )
            except (UpdateError, PutError) as exc:
                if not is_condition_failure(exc):
                    raise
