"""A tenant's outbound webhooks and each event's delivery to them. See README.md (rows 60-64).

A webhook is a configuration record (`T#<t>#CONFIG`, `WEBHOOK#<w>`) whose secret is sealed under
the tenant's key: a table export shows none, and only `get_with_secret` (the delivery task) opens
it. A delivery (`T#<t>#WEBHOOK-DELIVERY#<d>`) counts its attempts and keeps its last error; while
it is a dead letter it is listed, newest first, through GSI2 (`T#<t>#WEBHOOK-DEAD`).

Every write of a delivery carries the number of the replay that made it (`replays`), so a replay
marked after its own execution already ended cannot hide that outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError

from chalicelib.domain.common import Document
from chalicelib.domain.webhooks import KEEP_DELIVERIES_DAYS, DeliveryRef, DeliveryStatus
from chalicelib.settings import get_settings
from chalicelib.store.keys import config_pk
from chalicelib.store.models import ConfigItem, WebhookDeliveryItem, bind_models
from chalicelib.store.records import as_document, is_condition_failure, put_versioned, stored_body
from chalicelib.store.sealing import SEALED, seal, unseal

KIND = "webhook"
WEBHOOK = "WEBHOOK"
SEALED_FIELDS = ("secret",)  # the key the receiver checks our signatures with
DELIVERY_SK = "DELIVERY"
DeadLetterPosition = tuple[str, str]  # (listing sort key, delivery id) of the last one listed


def delivery_pk(tenant_id: str, delivery_id: str) -> str:
    return f"T#{tenant_id}#WEBHOOK-DELIVERY#{delivery_id}"


def dead_letters_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#WEBHOOK-DEAD"


@dataclass(frozen=True)
class DeliveryRecord:
    ref: DeliveryRef  # with `replay` = the replays made so far
    status: DeliveryStatus
    attempts: int
    last_error: str
    failed_at: str | None
    listed_at: str | None  # its dead-letter list key, while it is in the list


def _record(tenant_id: str, item: WebhookDeliveryItem) -> DeliveryRecord:
    stored = as_document(item.ref)
    replays = int(item.replays or 0)
    ref: DeliveryRef = {
        "tenant_id": tenant_id,
        "webhook_id": stored["webhook_id"],
        "delivery_id": stored["delivery_id"],
        "event": stored["event"],
        "resource_type": stored["resource_type"],
        "resource_id": stored["resource_id"],
        "patient_id": stored["patient_id"],
        "replay": replays,
    }
    return DeliveryRecord(
        ref=ref,
        status=DeliveryStatus(item.status),
        attempts=int(item.attempts or 0),
        last_error=item.last_error or "",
        failed_at=item.failed_at,
        listed_at=item.gsi2sk,
    )


def _listed_under_patient(ref: DeliveryRef) -> list[Any]:
    """Its place in the patient's list (GSI1), so that an erasure finds it."""
    pk = f"T#{ref['tenant_id']}#P#{ref['patient_id']}#WEBHOOKS"
    return [
        WebhookDeliveryItem.gsi1pk.set(pk),
        WebhookDeliveryItem.gsi1sk.set(ref["delivery_id"]),
    ]


def _stored_ref(ref: DeliveryRef) -> dict[str, str]:
    """The ids kept with the delivery (the tenant is its key; the replay its own counter)."""
    return {k: str(v) for k, v in ref.items() if k not in ("tenant_id", "replay")}


def _expiry(at: str) -> datetime:
    return datetime.fromisoformat(at) + timedelta(days=KEEP_DELIVERIES_DAYS)


def _without_secret(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if k != SEALED}


def _not_delivered() -> Any:
    return WebhookDeliveryItem.status.does_not_exist() | (
        WebhookDeliveryItem.status != DeliveryStatus.DELIVERED.value
    )


class WebhookRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    # -- the webhooks ----------------------------------------------------------------------------

    def create(self, tenant_id: str, doc: Document) -> Document:
        """A new webhook, its `secret` sealed; returned without the secret."""
        body = seal(KIND, tenant_id, doc["id"], stored_body(doc), SEALED_FIELDS)
        item = ConfigItem(config_pk(tenant_id), f"{WEBHOOK}#{doc['id']}", entity=KIND, doc=body)
        return _without_secret(put_versioned(item, None))

    def all(self, tenant_id: str) -> list[Document]:
        """Every webhook of the tenant, without their secrets (one Query of its configuration)."""
        items = ConfigItem.query(config_pk(tenant_id), ConfigItem.sk.startswith(f"{WEBHOOK}#"))
        return [
            {**_without_secret(as_document(item.doc)), "version": item.version} for item in items
        ]

    def _get(self, tenant_id: str, webhook_id: str) -> Document | None:
        try:
            item = ConfigItem.get(config_pk(tenant_id), f"{WEBHOOK}#{webhook_id}")
        except DoesNotExist:
            return None
        return {**as_document(item.doc), "version": item.version}

    def get(self, tenant_id: str, webhook_id: str) -> Document | None:
        """A webhook without its secret."""
        found = self._get(tenant_id, webhook_id)
        return _without_secret(found) if found else None

    def get_with_secret(self, tenant_id: str, webhook_id: str) -> Document | None:
        """A webhook with its secret opened: for signing a delivery, nothing else."""
        found = self._get(tenant_id, webhook_id)
        return unseal(KIND, tenant_id, webhook_id, found) if found else None

    def delete(self, tenant_id: str, webhook_id: str) -> bool:
        """False if there was no such webhook."""
        item = ConfigItem(config_pk(tenant_id), f"{WEBHOOK}#{webhook_id}")
        try:
            item.delete(condition=ConfigItem.pk.exists(), add_version_condition=False)
        except DeleteError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    # -- deliveries ------------------------------------------------------------------------------

    def delivery(self, tenant_id: str, delivery_id: str) -> DeliveryRecord | None:
        try:
            item = WebhookDeliveryItem.get(
                delivery_pk(tenant_id, delivery_id), DELIVERY_SK, consistent_read=True
            )
        except DoesNotExist:
            return None
        return _record(tenant_id, item)

    def attempted(self, ref: DeliveryRef, *, delivered: bool, summary: str, at: str) -> None:
        """One attempt made: counted, its outcome kept. A delivery already delivered stays so."""
        item = WebhookDeliveryItem(delivery_pk(ref["tenant_id"], ref["delivery_id"]), DELIVERY_SK)
        status = DeliveryStatus.DELIVERED if delivered else DeliveryStatus.PENDING
        actions: list[Any] = [
            WebhookDeliveryItem.entity.set("webhook_delivery"),
            WebhookDeliveryItem.ref.set(_stored_ref(ref)),
            *_listed_under_patient(ref),
            WebhookDeliveryItem.status.set(status.value),
            WebhookDeliveryItem.attempts.add(1),
            WebhookDeliveryItem.replays.set(ref["replay"]),
            WebhookDeliveryItem.last_error.set(summary),
            WebhookDeliveryItem.expires_at.set(_expiry(at)),
        ]
        if delivered:
            actions.append(WebhookDeliveryItem.delivered_at.set(at))
        try:
            item.update(actions=actions, condition=_not_delivered())
        except UpdateError as exc:
            if not is_condition_failure(exc):
                raise

    def dead(self, ref: DeliveryRef, error: str, at: str) -> bool:
        """Into the dead-letter list; False if it was delivered after all."""
        item = WebhookDeliveryItem(delivery_pk(ref["tenant_id"], ref["delivery_id"]), DELIVERY_SK)
        # An attempt's own summary says more than the state machine's error name: kept if any.
        last_error = WebhookDeliveryItem.last_error | error
        try:
            item.update(
                actions=[
                    WebhookDeliveryItem.entity.set("webhook_delivery"),
                    WebhookDeliveryItem.ref.set(_stored_ref(ref)),
                    *_listed_under_patient(ref),
                    WebhookDeliveryItem.status.set(DeliveryStatus.DEAD.value),
                    WebhookDeliveryItem.replays.set(ref["replay"]),
                    WebhookDeliveryItem.last_error.set(last_error),
                    WebhookDeliveryItem.failed_at.set(at),
                    WebhookDeliveryItem.expires_at.set(_expiry(at)),
                    WebhookDeliveryItem.gsi2pk.set(dead_letters_pk(ref["tenant_id"])),
                    WebhookDeliveryItem.gsi2sk.set(f"{at}#{ref['delivery_id']}"),
                ],
                condition=_not_delivered(),
            )
        except UpdateError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def replaying(self, tenant_id: str, delivery_id: str, replays_before: int) -> bool:
        """Out of the dead-letter list, as replay number `replays_before + 1`; False if that
        replay (or another) got there first."""
        item = WebhookDeliveryItem(delivery_pk(tenant_id, delivery_id), DELIVERY_SK)
        try:
            item.update(
                actions=[
                    WebhookDeliveryItem.status.set(DeliveryStatus.PENDING.value),
                    WebhookDeliveryItem.replays.set(replays_before + 1),
                    WebhookDeliveryItem.gsi2pk.remove(),
                    WebhookDeliveryItem.gsi2sk.remove(),
                ],
                condition=(WebhookDeliveryItem.status == DeliveryStatus.DEAD.value)
                & (WebhookDeliveryItem.replays == replays_before),
            )
        except UpdateError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def dead_letters(
        self, tenant_id: str, limit: int, after: DeadLetterPosition | None
    ) -> tuple[list[DeliveryRecord], DeadLetterPosition | None]:
        """The tenant's dead letters, newest first."""
        start = None
        if after is not None:
            sort_key, delivery_id = after
            start = {
                "PK": {"S": delivery_pk(tenant_id, delivery_id)},
                "SK": {"S": DELIVERY_SK},
                "GSI2PK": {"S": dead_letters_pk(tenant_id)},
                "GSI2SK": {"S": sort_key},
            }
        result = WebhookDeliveryItem.dead_letters.query(
            dead_letters_pk(tenant_id),
            limit=limit,
            last_evaluated_key=start,
            scan_index_forward=False,
        )
        found = [_record(tenant_id, item) for item in result]
        last = result.last_evaluated_key
        position = (last["GSI2SK"]["S"], found[-1].ref["delivery_id"]) if last and found else None
        return found, position
