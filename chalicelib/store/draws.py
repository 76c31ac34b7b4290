"""Draws, their eligible lists and patients' entries. See README.md (rows 95-99) and
`domain.draws`.

A draw's seed is sealed in its document (under the tenant's fields key), so that nobody who reads
the table or its daily export learns it before the draw has run. Its eligible list is stored in
chunks under a reference (`list_ref`) made for each attempt to close the draw; the draw's item
names the chunks its commitment was made of, so an attempt that lost a race leaves only chunks
and entries nobody reads.
"""

from __future__ import annotations

import secrets
from typing import cast

from pynamodb.exceptions import DoesNotExist

from chalicelib.audit_trail import touched
from chalicelib.domain.draws import Draw
from chalicelib.settings import get_settings
from chalicelib.store.keys import patient_pk
from chalicelib.store.models import (
    DrawEligibleItem,
    DrawEntryItem,
    DrawItem,
    bind_models,
)
from chalicelib.store.records import as_document, put_versioned, stored_body
from chalicelib.store.sealing import seal, unseal

DRAW_SK = "DRAW"
ELIGIBLE_PREFIX = "ELIGIBLE#"
ENTRY_PREFIX = "DRAW#"
CHUNK_SIZE = 1000  # ~19 bytes an id: a chunk stays far below DynamoDB's 400 KB item limit
BATCH_GET_MAX = 100
SEALED = ("seed",)
KIND = "draw"
DrawPosition = tuple[str, str]  # (listing sort key, draw id)


def draw_pk(tenant_id: str, draw_id: str) -> str:
    return f"T#{tenant_id}#DRAW#{draw_id}"


def draws_listing_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#DRAWS"


def _chunk_sk(list_ref: str, index: int) -> str:
    return f"{ELIGIBLE_PREFIX}{list_ref}#{index:05d}"


class StoredDraw:
    """A draw as read: the document (without the seed), its version, and where its list is."""

    def __init__(self, tenant_id: str, item: DrawItem) -> None:
        raw = as_document(item.doc)
        opened = unseal(KIND, tenant_id, raw["id"], raw)
        self.seed: str | None = opened.pop("seed", None)
        self.doc = cast(Draw, opened)
        self.version: int = int(item.version or 0)
        self.list_ref: str | None = item.list_ref
        self.chunks: int = int(item.chunks or 0)


class DrawRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def _item(self, tenant_id: str, draw: Draw, seed: str | None) -> DrawItem:
        body = stored_body(dict(draw))
        if seed is not None:
            body["seed"] = seed
        return DrawItem(
            draw_pk(tenant_id, draw["id"]),
            DRAW_SK,
            entity="draw",
            doc=seal(KIND, tenant_id, draw["id"], body, SEALED),
            gsi2pk=draws_listing_pk(tenant_id),
            gsi2sk=f"{draw['created_at']}#{draw['id']}",
        )

    def create(self, tenant_id: str, draw: Draw) -> StoredDraw:
        item = self._item(tenant_id, draw, None)
        put_versioned(item, None)
        return StoredDraw(tenant_id, item)

    def get(self, tenant_id: str, draw_id: str) -> StoredDraw | None:
        try:
            item = DrawItem.get(draw_pk(tenant_id, draw_id), DRAW_SK, consistent_read=True)
        except DoesNotExist:
            return None
        return StoredDraw(tenant_id, item)

    def save_list(self, tenant_id: str, draw_id: str, patient_ids: list[str]) -> tuple[str, int]:
        """Store a sorted eligible list under a new reference, and each member's entry (their
        app finds the draw through it); the reference and the number of chunks. BatchWrite:
        idempotent puts, read only once the draw's item names the reference."""
        list_ref = secrets.token_hex(4)
        chunks = [
            patient_ids[start : start + CHUNK_SIZE]
            for start in range(0, len(patient_ids), CHUNK_SIZE)
        ]
        with DrawEligibleItem.batch_write() as batch:
            for index, chunk in enumerate(chunks):
                batch.save(
                    DrawEligibleItem(
                        draw_pk(tenant_id, draw_id),
                        _chunk_sk(list_ref, index),
                        entity="draw_eligible",
                        ids="\n".join(chunk),
                    )
                )
        with DrawEntryItem.batch_write() as batch:
            for patient_id in patient_ids:
                batch.save(
                    DrawEntryItem(
                        patient_pk(tenant_id, patient_id),
                        ENTRY_PREFIX + draw_id,
                        entity="draw_entry",
                        draw_id=draw_id,
                        list_ref=list_ref,
                    )
                )
        return list_ref, len(chunks)

    def replace(
        self,
        tenant_id: str,
        current: StoredDraw,
        draw: Draw,
        *,
        seed: str | None = None,
        list_ref: str | None = None,
        chunks: int | None = None,
    ) -> StoredDraw:
        """Write `draw` over the version read (a version conflict if someone changed it since),
        keeping its seed and list unless new ones are given."""
        item = self._item(tenant_id, draw, seed if seed is not None else current.seed)
        item.list_ref = list_ref if list_ref is not None else current.list_ref
        item.chunks = chunks if chunks is not None else current.chunks
        put_versioned(item, current.version)
        return StoredDraw(tenant_id, item)

    def eligible(self, tenant_id: str, stored: StoredDraw) -> list[str]:
        """The committed eligible list, in its stored (sorted) order. Patient ids: the request's
        audit entry names the draw whose list was read."""
        if stored.list_ref is None:
            return []
        touched("draw", stored.doc["id"])
        items = DrawEligibleItem.query(
            draw_pk(tenant_id, stored.doc["id"]),
            DrawEligibleItem.sk.startswith(f"{ELIGIBLE_PREFIX}{stored.list_ref}#"),
            consistent_read=True,
        )
        ids: list[str] = []
        for item in items:
            ids += item.ids.split("\n") if item.ids else []
        if len(ids) != stored.doc.get("eligible_count", len(ids)):
            raise RuntimeError(f"draw {stored.doc['id']}: its eligible list is incomplete")
        return ids

    def page(
        self, tenant_id: str, limit: int, after: DrawPosition | None
    ) -> tuple[list[StoredDraw], DrawPosition | None]:
        """Newest first."""
        start = None
        if after is not None:
            sort_key, draw_id = after
            start = {
                "PK": {"S": draw_pk(tenant_id, draw_id)},
                "SK": {"S": DRAW_SK},
                "GSI2PK": {"S": draws_listing_pk(tenant_id)},
                "GSI2SK": {"S": sort_key},
            }
        result = DrawItem.by_tenant.query(
            draws_listing_pk(tenant_id),
            limit=limit,
            last_evaluated_key=start,
            scan_index_forward=False,
        )
        found = [StoredDraw(tenant_id, item) for item in result]
        last = result.last_evaluated_key
        position = (last["GSI2SK"]["S"], found[-1].doc["id"]) if last and found else None
        return found, position

    def entered(self, tenant_id: str, patient_id: str) -> list[StoredDraw]:
        """The draws whose committed list holds this patient (their entries, checked against
        each draw's list reference), newest first."""
        entries = {
            item.draw_id: item.list_ref
            for item in DrawEntryItem.query(
                patient_pk(tenant_id, patient_id), DrawEntryItem.sk.startswith(ENTRY_PREFIX)
            )
        }
        draws: list[StoredDraw] = []
        ids = sorted(entries)
        for start in range(0, len(ids), BATCH_GET_MAX):
            keys = [(draw_pk(tenant_id, d), DRAW_SK) for d in ids[start : start + BATCH_GET_MAX]]
            for item in DrawItem.batch_get(keys):
                stored = StoredDraw(tenant_id, item)
                if stored.list_ref is not None and stored.list_ref == entries.get(stored.doc["id"]):
                    draws.append(stored)
        draws.sort(key=lambda d: (d.doc["created_at"], d.doc["id"]), reverse=True)
        return draws
