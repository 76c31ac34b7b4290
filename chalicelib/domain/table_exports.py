"""The table's daily export for analysts (Athena, infra/athena/): where a day's export goes and
the token that makes starting it idempotent. Pure: no I/O.

One full export per UTC day, under a Hive-style dated prefix (`table/export_date=<day>/`), so
the Glue table's partitions are the days and DuckDB reads the same layout locally. DynamoDB
writes `AWSDynamoDB/<export id>/` below it: manifests, and `data/*.json.gz` with one
`{"Item": {...}}` per line (DynamoDB JSON).

A day's prefix holds one export that counts. DynamoDB's client token only answers a repeated
request for 8 hours, so before starting, the service looks for the day's export among the
table's own (`standing_export`): one running or completed is the day's, and none is started.
A failed one is not: the next run starts another, under a new token (the old one would answer
with the failed export for 8 hours). The queries count the newest completed export of a day
anyway (infra/athena/), so a failed export's partial files, or two exports started at once
before either was listed, are never counted twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypedDict

# The Glue table's location (infra/platform.yaml): every export lives under it.
EXPORTS_ROOT = "table"
STANDING = frozenset({"IN_PROGRESS", "COMPLETED"})
# DynamoDB's export ids begin with the export's start in epoch milliseconds
# (`01695353076000-a1b2c3d4`). AWS does not document the form: an id of any other form is
# described anyway, never skipped.
_TIMED_ID = re.compile(r"(\d{13,14})-[0-9a-f]+")


class ExportStarted(TypedDict):
    export_date: str
    export_arn: str
    status: str  # IN_PROGRESS | COMPLETED | FAILED, as DynamoDB reports it
    requested: bool  # False: the day's export was already running or done, none asked for


@dataclass(frozen=True)
class KnownExport:
    """One of the table's exports, as DescribeExport tells it."""

    arn: str
    status: str
    bucket: str
    prefix: str
    started_at: datetime | None


def export_day(scheduled_at: str | None, now: datetime) -> date:
    """The UTC day a run exports: the schedule's own time (the same for every retry of one
    run, even one retried after midnight), else now."""
    if scheduled_at:
        return datetime.fromisoformat(scheduled_at.replace("Z", "+00:00")).date()
    return now.date()


def export_prefix(day: date) -> str:
    return f"{EXPORTS_ROOT}/export_date={day.isoformat()}"


def client_token(table_name: str, day: date, failed: int = 0) -> str:
    """One export per table, day and attempt: DynamoDB answers a repeated token (within 8
    hours) with the export it already started, so a retried run, or two runs at once, start no
    second export. After `failed` failed exports of the day, a new token: the day's first
    token would only answer with the failed export."""
    token = f"{table_name}-export-{day.isoformat()}"
    return f"{token}-retry-{failed}" if failed else token


def export_id(export_arn: str) -> str:
    return export_arn.rsplit("/", 1)[-1]


def may_be_of_day(export_arn: str, day: date) -> bool:
    """Whether an export may have written `day`'s prefix, from its ARN alone: a run exports its
    own day or an earlier one (a retry after midnight), so an export that started before the day
    began (a day's margin for clocks) did not. Saves describing the table's 90 days of
    exports on every run."""
    found = _TIMED_ID.fullmatch(export_id(export_arn))
    if found is None:
        return True
    started = datetime.fromtimestamp(int(found[1]) / 1000, UTC)
    return started.date() >= day - timedelta(days=1)


def of_day(exports: list[KnownExport], bucket: str, day: date) -> list[KnownExport]:
    return [e for e in exports if e.bucket == bucket and e.prefix == export_prefix(day)]


def standing_export(day_exports: list[KnownExport]) -> KnownExport | None:
    """The day's export already running or completed (the newest if there were ever two):
    starting another would put a second export in the day's partition."""
    standing = [e for e in day_exports if e.status in STANDING]
    if not standing:
        return None
    oldest = datetime.min.replace(tzinfo=UTC)
    return max(standing, key=lambda e: (e.started_at or oldest, export_id(e.arn)))


def failed_attempts(day_exports: list[KnownExport]) -> int:
    return sum(1 for e in day_exports if e.status == "FAILED")
