"""The table's daily export: one export per UTC day under its dated prefix, started once however
often or late the run is repeated (the day's running or completed export is found among the
table's; after a failed one, another is started under a new token), and a throttled start
raised (the schedule's retry) with a log line that names the day and the error only."""

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


def _export_arn(started: datetime, suffix: str = "abcdef01") -> str:
    """An ARN as DynamoDB forms it: the export id begins with its start in milliseconds."""
    return f"{TABLE_ARN}/export/{int(started.timestamp() * 1000):014d}-{suffix}"


class FakeDynamoDB:
    """The table's exports, listed `page` at a time; each start adds one (a repeated token
    answers with its export, as DynamoDB does within 8 hours)."""

    def __init__(self, failure: Exception | None = None, page: int = 25) -> None:
        self.failure = failure
        self.page = page
        self.calls: list[dict[str, Any]] = []
        self.described: list[str] = []
        self.exports: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}

    def add(self, arn: str, status: str, prefix: str, bucket: str = "exports-bucket") -> None:
        started = datetime(2027, 3, 5, 8, tzinfo=UTC)
        self.exports[arn] = {
            "ExportArn": arn,
            "ExportStatus": status,
            "S3Bucket": bucket,
            "S3Prefix": prefix,
            "StartTime": started,
        }

    def export_table_to_point_in_time(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        if self.failure is not None:
            raise self.failure
        arn = self.tokens.get(params["ClientToken"]) or _export_arn(
            datetime(2027, 3, 5, 17, tzinfo=UTC), f"{len(self.exports):08x}"
        )
        if arn not in self.exports:
            self.add(arn, "IN_PROGRESS", params["S3Prefix"], params["S3Bucket"])
            self.tokens[params["ClientToken"]] = arn
        return {"ExportDescription": self.exports[arn]}

    def list_exports(self, **params: Any) -> dict[str, Any]:
        assert params["TableArn"] == TABLE_ARN and params["MaxResults"] <= 25
        arns = sorted(self.exports)
        first = int(params.get("NextToken", 0))
        page = arns[first : first + self.page]
        answer: dict[str, Any] = {
            "ExportSummaries": [
                {"ExportArn": a, "ExportStatus": self.exports[a]["ExportStatus"]} for a in page
            ]
        }
        if first + self.page < len(arns):
            answer["NextToken"] = str(first + self.page)
        return answer

    def describe_export(self, ExportArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.described.append(ExportArn)
        return {"ExportDescription": self.exports[ExportArn]}


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
    assert first["requested"]
    # Run again: the day's export is found running, and no other is asked for.
    assert again == {**first, "requested": False}
    assert len(dynamodb.calls) == 1
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


def _service(dynamodb: FakeDynamoDB) -> TableExportService:
    return TableExportService(
        TableExports(lambda _: dynamodb), "careloop-prod", TABLE_ARN, "exports-bucket"
    )


@pytest.mark.parametrize("status", ["IN_PROGRESS", "COMPLETED"])
def test_a_run_hours_after_the_days_export_started_finds_it_and_starts_none(status: str) -> None:
    # The token would no longer answer (8 hours): the listing does. Exports of other days, of
    # another bucket, and failed ones of the day are not the day's export.
    dynamodb = FakeDynamoDB(page=2)
    morning = datetime(2027, 3, 5, 8, tzinfo=UTC)
    days = "table/export_date=2027-03-05"
    dynamodb.add(_export_arn(morning, "0000000a"), "FAILED", days)
    dynamodb.add(_export_arn(morning, "0000000b"), status, days)
    dynamodb.add(_export_arn(morning, "0000000c"), "COMPLETED", days, bucket="someone-elses")
    dynamodb.add(_export_arn(morning, "0000000d"), "COMPLETED", "table/export_date=2027-03-04")
    started = _service(dynamodb).export(date(2027, 3, 5))
    assert started == {
        "export_date": "2027-03-05",
        "export_arn": _export_arn(morning, "0000000b"),
        "status": status,
        "requested": False,
    }
    assert dynamodb.calls == []


def test_after_a_failed_export_the_next_run_starts_another_under_a_new_token() -> None:
    dynamodb = FakeDynamoDB()
    days = "table/export_date=2027-03-05"
    dynamodb.add(_export_arn(datetime(2027, 3, 5, 17, tzinfo=UTC), "0000000a"), "FAILED", days)
    first = _service(dynamodb).export(date(2027, 3, 5))
    assert first["requested"] and first["export_arn"] != _export_arn(
        datetime(2027, 3, 5, 17, tzinfo=UTC), "0000000a"
    )
    (call,) = dynamodb.calls
    # The day's own token would answer with the failed export for 8 hours.
    assert call["ClientToken"] == "careloop-prod-export-2027-03-05-retry-1"
    assert call["S3Prefix"] == days
    # That one failing too, the next run's token is another again.
    dynamodb.exports[first["export_arn"]]["ExportStatus"] = "FAILED"
    assert _service(dynamodb).export(date(2027, 3, 5))["requested"]
    assert dynamodb.calls[1]["ClientToken"] == "careloop-prod-export-2027-03-05-retry-2"


def test_only_exports_that_may_have_started_since_the_day_before_are_described() -> None:
    # A run exports its own day or the day before (a retry after midnight): older exports,
    # by the start their id begins with, cannot be that day's. An id of another form is
    # described all the same.
    dynamodb = FakeDynamoDB()
    old = _export_arn(datetime(2027, 2, 1, 17, tzinfo=UTC))
    yesterday = _export_arn(datetime(2027, 3, 4, 17, tzinfo=UTC))
    odd = f"{TABLE_ARN}/export/not-a-timed-id"
    for arn in (old, yesterday, odd):
        dynamodb.add(arn, "COMPLETED", "table/export_date=2027-02-01")
    _service(dynamodb).export(date(2027, 3, 5))
    assert sorted(dynamodb.described) == sorted([yesterday, odd])
    assert rules.may_be_of_day(old, date(2027, 2, 1))
    assert not rules.may_be_of_day(old, date(2027, 2, 3))


def test_a_throttled_listing_raises_for_the_schedules_retry() -> None:
    dynamodb = FakeDynamoDB()

    def throttled(**params: Any) -> dict[str, Any]:
        raise _throttled()

    dynamodb.list_exports = throttled  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailable):
        _service(dynamodb).export(date(2027, 3, 5))
    assert dynamodb.calls == []
