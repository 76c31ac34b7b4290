"""The table's daily export for analysts (Athena, infra/athena/): where a day's export goes and
the token that makes starting it idempotent. Pure: no I/O.

One full export per UTC day, under a Hive-style dated prefix (`table/export_date=<day>/`), so
the Glue table's partitions are the days and DuckDB reads the same layout locally. DynamoDB
writes `AWSDynamoDB/<export id>/` below it: manifests, and `data/*.json.gz` with one
`{"Item": {...}}` per line (DynamoDB JSON).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypedDict

# The Glue table's location (infra/platform.yaml): every export lives under it.
EXPORTS_ROOT = "table"


class ExportStarted(TypedDict):
    export_date: str
    export_arn: str
    status: str  # IN_PROGRESS | COMPLETED | FAILED, as DynamoDB reports it


def export_day(scheduled_at: str | None, now: datetime) -> date:
    """The UTC day a run exports: the schedule's own time (the same for every retry of one
    run, even one retried after midnight), else now."""
    if scheduled_at:
        return datetime.fromisoformat(scheduled_at.replace("Z", "+00:00")).date()
    return now.date()


def export_prefix(day: date) -> str:
    return f"{EXPORTS_ROOT}/export_date={day.isoformat()}"


def client_token(table_name: str, day: date) -> str:
    """One export per table and day: DynamoDB answers a repeated token (within 8 hours) with
    the export it already started, so a retried run starts no second export."""
    return f"{table_name}-export-{day.isoformat()}"
