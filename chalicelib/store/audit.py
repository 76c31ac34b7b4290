"""The audit trail (access patterns 52 to 55 in README.md): a few chains per tenant and UTC day
(`domain.audit.CHAIN_SHARDS`), each appended at its head; pointers from each patient's
pseudonym; entries by actor through GSI1."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.domain.audit import CHAIN_SHARDS, GENESIS_HASH, AuditEntry
from chalicelib.settings import get_settings
from chalicelib.store.models import AuditEntryItem, AuditSubjectItem, UniqueClaim, bind_models
from chalicelib.store.records import as_document, failed_items, plain, transaction_write

Page = tuple[list[dict[str, Any]], str | None]


class ChainMoved(Exception):
    """Another writer appended the same sequence number first: read the head again."""


def chain_pk(tenant_id: str, day: str, shard: int) -> str:
    return f"T#{tenant_id}#AUDIT#{day}#{shard}"


def _place(entry: AuditEntry) -> str:
    """Where an entry sits in time and chain: the sort key of its pointers and actor listing."""
    return f"{entry['at']}#{entry['day']}#{entry['shard']}#{_seq_key(entry['seq'])}"


def subject_pk(tenant_id: str, pseudonym: str) -> str:
    return f"T#{tenant_id}#AUDIT#S#{pseudonym}"


def actor_pk(tenant_id: str, subject: str) -> str:
    return f"T#{tenant_id}#AUDIT#ACTOR#{subject}"


TRANSACTION_MAX = 100  # DynamoDB's items per transaction


def pseudonym_pk(tenant_id: str, pseudonym: str) -> str:
    return f"T#{tenant_id}#PSEUDONYM#{pseudonym}"


PSEUDONYM_SK = "PATIENT"


def _seq_key(seq: int) -> str:
    return f"{seq:010d}"


def _expiry(entry: AuditEntry) -> datetime | None:
    expires = entry.get("expires_at")
    return datetime.fromtimestamp(expires, UTC) if expires else None


def _pointer(entry: AuditEntry, pseudonym: str, summary: dict[str, Any]) -> AuditSubjectItem:
    """Where a patient's audit and access log find the entry, with what they show of it."""
    return AuditSubjectItem(
        subject_pk(entry["tenant_id"], pseudonym),
        _place(entry),
        entity="audit_pointer",
        doc=plain(summary),
        expires_at=_expiry(entry),
    )


def _entry(item: Any) -> AuditEntry:
    doc = as_document(item.doc)
    doc["seq"] = int(doc["seq"])
    doc["shard"] = int(doc["shard"])
    entry: AuditEntry = doc  # type: ignore[assignment]
    return entry


class AuditRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def head(self, tenant_id: str, day: str, shard: int) -> tuple[int, str]:
        """A chain's last sequence number and hash ((0, genesis) for a new chain)."""
        items = list(
            AuditEntryItem.query(
                chain_pk(tenant_id, day, shard),
                scan_index_forward=False,
                limit=1,
                consistent_read=True,
            )
        )
        if not items:
            return 0, GENESIS_HASH
        last = _entry(items[0])
        return last["seq"], last["hash"]

    def append(self, entry: AuditEntry, summary: dict[str, Any]) -> None:
        """Put the entry at its sequence number, only if nobody took that number (the chain
        never forks), with a pointer from each patient it names: one transaction, so a lost race
        leaves no pointer behind. An entry naming more patients than a transaction holds (a
        page of a list) has its pointers batch-written after it."""
        tenant_id, day, seq = entry["tenant_id"], entry["day"], entry["seq"]
        body = plain({k: v for k, v in entry.items() if k != "expires_at"})
        item = AuditEntryItem(
            chain_pk(tenant_id, day, entry["shard"]),
            _seq_key(seq),
            entity="audit",
            doc=body,
            gsi1pk=actor_pk(tenant_id, entry["actor"]["subject"]),
            gsi1sk=_place(entry),
            expires_at=_expiry(entry),
        )
        pointers = [_pointer(entry, pseudonym, summary) for pseudonym in entry["subjects"]]
        together = len(pointers) < TRANSACTION_MAX
        try:
            with transaction_write() as tx:
                tx.save(item, condition=AuditEntryItem.pk.does_not_exist())
                for pointer in pointers if together else []:
                    tx.save(pointer)
        except TransactWriteError as exc:
            if 0 in failed_items(exc):
                raise ChainMoved from exc
            raise
        if not together:
            with AuditSubjectItem.batch_write() as batch:
                for pointer in pointers:
                    batch.save(pointer)

    def remember_pseudonym(self, tenant_id: str, pseudonym: str, patient_id: str) -> None:
        """Which patient a pseudonym stands for, while the patient exists (erasure deletes it:
        from then on the trail names no one)."""
        UniqueClaim(
            pseudonym_pk(tenant_id, pseudonym),
            PSEUDONYM_SK,
            entity="pseudonym",
            owner_id=patient_id,
        ).save()

    def forget_pseudonym(self, tenant_id: str, pseudonym: str) -> None:
        UniqueClaim(pseudonym_pk(tenant_id, pseudonym), PSEUDONYM_SK).delete()

    def patients_of(self, tenant_id: str, pseudonyms: set[str]) -> dict[str, str]:
        """pseudonym → patient id, for the pseudonyms whose patient still exists."""
        keys = [(pseudonym_pk(tenant_id, p), PSEUDONYM_SK) for p in sorted(pseudonyms)]
        return {item.pk.rsplit("#", 1)[1]: item.owner_id for item in UniqueClaim.batch_get(keys)}

    def day(self, tenant_id: str, day: str) -> dict[int, list[AuditEntry]]:
        """Every chain of the day (those with entries), each in order."""
        chains: dict[int, list[AuditEntry]] = {}
        for shard in range(CHAIN_SHARDS):
            pk = chain_pk(tenant_id, day, shard)
            entries = [_entry(item) for item in AuditEntryItem.query(pk, consistent_read=True)]
            if entries:
                chains[shard] = entries
        return chains

    def for_subject(self, tenant_id: str, pseudonym: str, limit: int, after: str | None) -> Page:
        """Newest first."""
        pk = subject_pk(tenant_id, pseudonym)
        start = {"PK": {"S": pk}, "SK": {"S": after}} if after else None
        result = AuditSubjectItem.query(
            pk, scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        docs = [as_document(item.doc) for item in result]
        last = result.last_evaluated_key
        return docs, (last["SK"]["S"] if last else None)

    def for_actor(self, tenant_id: str, subject: str, limit: int, after: str | None) -> Page:
        """Newest first, through GSI1."""
        pk = actor_pk(tenant_id, subject)
        start = None
        if after:
            place, seq, sort_key = after.split("/", 2)
            day, shard = place.split("#")
            start = {
                "PK": {"S": chain_pk(tenant_id, day, int(shard))},
                "SK": {"S": seq},
                "GSI1PK": {"S": pk},
                "GSI1SK": {"S": sort_key},
            }
        result = AuditEntryItem.by_actor.query(
            pk, scan_index_forward=False, limit=limit, last_evaluated_key=start
        )
        docs: list[dict[str, Any]] = [dict(_entry(item)) for item in result]
        last = result.last_evaluated_key
        cursor = None
        if last:
            day, shard = last["PK"]["S"].split("#")[-2:]
            cursor = f"{day}#{shard}/{last['SK']['S']}/{last['GSI1SK']['S']}"
        return docs, cursor
