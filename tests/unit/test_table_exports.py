"""The table's daily export: one export per UTC day under its dated prefix, started once however
often the run is retried, and a throttled start raised (the schedule's retry) with a log line
that names the day and the error only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.adapters.table_exports import TableExports
from chalicelib.domain import table_exports as rules
from chalicelib.domain.errors import DependencyUnavailable
from chalicelib.services.table_exports import TableExportService

TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/careloop-prod"


def test_a_run_exports_its_schedules_utc_day_even_when_retried_after_midnight() -> None:
    late_retry = datetime(2027, 3, 6, 0, 20, tzinfo=UTC)
    assert rules.export_day("2027-03-05T17:00:00Z", late_retry) == date(2027, 3, 5)
    assert rules.export_day(None, late_retry) == date(2027, 3, 6)
    assert rules.export_prefix(date(2027, 3, 5)) == "table/export_date=2027-03-05"
    day_token = rules.client_token("careloop-prod", date(2027, 3, 5))
    assert day_token == rules.client_token("careloop-prod", date(2027, 3, 5))
    assert day_token != rules.client_token("careloop-prod", date(2027, 3, 6))
    assert day_token != rules.client_token("careloop-staging", date(2027, 3, 5))


class FakeDynamoDB:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.calls: list[dict[str, Any]] = []

    def export_table_to_point_in_time(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        if self.failure is not None:
            raise self.failure
        arn = f"{params['TableArn']}/export/01234567890123-abcdef01"
        return {"ExportDescription": {"ExportArn": arn, "ExportStatus": "IN_PROGRESS"}}


def _throttled() -> Exception:
    from botocore.exceptions import ClientError

    throttled: Exception = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
        "ExportTableToPointInTime",
    )
    return throttled


def test_the_export_is_asked_for_once_per_day_in_dynamodb_json_encrypted() -> None:
    dynamodb = FakeDynamoDB()
    service = TableExportService(
        TableExports(lambda _: dynamodb), "careloop-prod", TABLE_ARN, "exports-bucket"
    )
    first = service.export(date(2027, 3, 5))
    again = service.export(date(2027, 3, 5))
    assert first["export_arn"].startswith(f"{TABLE_ARN}/export/")
    assert first["export_date"] == "2027-03-05" and first["status"] == "IN_PROGRESS"
    # The same request twice: DynamoDB answers the second with the first's export.
    assert dynamodb.calls[0] == dynamodb.calls[1] and again == first
    assert dynamodb.calls[0] == {
        "TableArn": TABLE_ARN,
        "S3Bucket": "exports-bucket",
        "S3Prefix": "table/export_date=2027-03-05",
        "S3SseAlgorithm": "AES256",
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": "FULL_EXPORT",
        "ClientToken": "careloop-prod-export-2027-03-05",
    }


def test_a_throttled_export_raises_for_the_schedules_retry_and_logs_no_more_than_the_day(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from chalicelib.handlers import table_exports as handler

    dynamodb = FakeDynamoDB(failure=_throttled())
    service = TableExportService(
        TableExports(lambda _: dynamodb), "careloop-prod", TABLE_ARN, "exports-bucket"
    )
    monkeypatch.setattr(handler, "services", lambda: SimpleNamespace(table_exports=service))
    event = SimpleNamespace(time="2027-03-05T17:00:00Z")
    with pytest.raises(DependencyUnavailable):
        handler.analytics_export(event)
    (record,) = [r for r in caplog.records if r.name == "careloop-api"]
    assert record.levelname == "WARNING"
    logged = {k: v for k, v in vars(record).items() if k in ("export_date", "error")}
    assert logged == {"export_date": "2027-03-05", "error": "ThrottlingException"}
    # Nothing else of the event or the failure's message is in it.
    assert "slow down" not in record.getMessage()
