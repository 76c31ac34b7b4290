"""The table's stream handler: each batch of changed records moves the analytics counters.
Thin: the records' images as plain values, one call. A failure raises, so Lambda delivers the
batch again (the counters move once per record whatever the deliveries)."""

from __future__ import annotations

from typing import Any

from chalicelib.services.analytics import ChangedRecord
from chalicelib.services.registry import services
from chalicelib.store.analytics import image_of


def changed_record(record: Any) -> ChangedRecord:
    keys = image_of(record.keys) or {}
    return {
        "event_id": record.event_id,
        "event_name": record.event_name,
        "pk": str(keys.get("PK", "")),
        "sk": str(keys.get("SK", "")),
        "old": image_of(record.old_image),
        "new": image_of(record.new_image),
    }


def analytics_stream(event: Any) -> None:
    services().analytics.count_changes(changed_record(record) for record in event)
