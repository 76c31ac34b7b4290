"""The table's daily export to S3 for analysts: one full export per UTC day, started once
however often the schedule's run is retried or run again by hand. What the export holds and
where is `domain/table_exports.py`'s; the calls are the adapter's."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from chalicelib.domain import table_exports as rules


class ExportStarter(Protocol):
    def start(
        self, table_arn: str, bucket: str, prefix: str, client_token: str
    ) -> tuple[str, str]: ...

    def listed(self, table_arn: str) -> list[str]: ...

    def described(self, export_arn: str) -> rules.KnownExport: ...


class TableExportService:
    def __init__(self, exports: ExportStarter, table_name: str, table_arn: str, bucket: str):
        self._exports = exports
        self._table_name = table_name
        self._table_arn = table_arn
        self._bucket = bucket

    def export(self, day: date) -> rules.ExportStarted:
        """Start (or find again) the export of `day`. DependencyUnavailable when DynamoDB
        throttles or fails: the caller's retry starts it later."""
        if not (self._table_arn and self._bucket):
            raise RuntimeError("TABLE_ARN and EXPORT_BUCKET must be set to export the table")
        # The client token alone guards 8 hours: a run later in the day (by hand, or a retry
        # after a failed export) finds the day's export among the table's own instead. Two
        # runs at once both find none and share the token, hence the export.
        day_exports = rules.of_day(
            [
                self._exports.described(arn)
                for arn in self._exports.listed(self._table_arn)
                if rules.may_be_of_day(arn, day)
            ],
            self._bucket,
            day,
        )
        standing = rules.standing_export(day_exports)
        if standing is not None:
            return {
                "export_date": day.isoformat(),
                "export_arn": standing.arn,
                "status": standing.status,
                "requested": False,
            }
        arn, status = self._exports.start(
            self._table_arn,
            self._bucket,
            rules.export_prefix(day),
            rules.client_token(self._table_name, day, rules.failed_attempts(day_exports)),
        )
        return {
            "export_date": day.isoformat(),
            "export_arn": arn,
            "status": status,
            "requested": True,
        }
