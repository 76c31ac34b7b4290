"""Loyalty's handlers: the table's stream (points earned, confirmed and reversed from the
journeys' records) and the daily expiry sweep. Thin: the records' keys and images, one call.
A failure raises, so Lambda delivers the batch again (every entry is written once whatever the
deliveries)."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.common import Document
from chalicelib.services.loyalty import ChangedItem
from chalicelib.services.registry import services
from chalicelib.store.analytics import image_of


def _changed(record: Any) -> ChangedItem:
    keys = image_of(record.keys) or {}
    return {
        "pk": str(keys.get("PK", "")),
        "sk": str(keys.get("SK", "")),
        "old": image_of(record.old_image),
        "new": image_of(record.new_image),
    }


def loyalty_stream(event: Any) -> None:
    services().loyalty.on_changes(_changed(record) for record in event)


def loyalty_expiry_sweep(event: Any) -> Document:
    return services().loyalty.expiry_sweep()
