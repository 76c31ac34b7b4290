"""Starting a DynamoDB export of the table to S3 (ExportTableToPointInTime): a full export in
DynamoDB JSON, encrypted with S3's own keys, read by Athena through the Glue table
(infra/platform.yaml). An export reads the table's point-in-time backup, not the table: it uses
no read capacity and never throttles the product's own traffic. And the table's exports as
DynamoDB lists and describes them (ListExports, DescribeExport), so that a day's export is
found again after its client token has expired.

A transient failure (throttling, too many exports at once, a failing service) raises
DependencyUnavailable; anything else is raised as it came.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.clients import client
from chalicelib.adapters.failures import raise_classified
from chalicelib.domain.table_exports import KnownExport

PAGE = 25  # ListExports' largest page


class TableExports:
    def __init__(self, make_client: Callable[[str], Any] = client) -> None:
        self._client = make_client

    def start(self, table_arn: str, bucket: str, prefix: str, client_token: str) -> tuple[str, str]:
        """The export's ARN and status. The same `client_token` again answers with the export
        it already started."""
        try:
            answer = self._client("dynamodb").export_table_to_point_in_time(
                TableArn=table_arn,
                S3Bucket=bucket,
                S3Prefix=prefix,
                S3SseAlgorithm="AES256",
                ExportFormat="DYNAMODB_JSON",
                ExportType="FULL_EXPORT",
                ClientToken=client_token,
            )
        except Exception as exc:
            raise_classified(exc)
        description = answer["ExportDescription"]
        return str(description["ExportArn"]), str(description["ExportStatus"])

    def listed(self, table_arn: str) -> list[str]:
        """The ARNs of the table's exports (DynamoDB keeps them listed for 90 days), every
        page: the summaries name no prefix, so which day each wrote takes `described`."""
        arns: list[str] = []
        params: dict[str, Any] = {"TableArn": table_arn, "MaxResults": PAGE}
        try:
            while True:
                page = self._client("dynamodb").list_exports(**params)
                arns.extend(str(s["ExportArn"]) for s in page.get("ExportSummaries", []))
                if not page.get("NextToken"):
                    return arns
                params["NextToken"] = page["NextToken"]
        except Exception as exc:
            raise_classified(exc)

    def described(self, export_arn: str) -> KnownExport:
        try:
            answer = self._client("dynamodb").describe_export(ExportArn=export_arn)
        except Exception as exc:
            raise_classified(exc)
        description = answer["ExportDescription"]
        started = description.get("StartTime")
        return KnownExport(
            arn=str(description["ExportArn"]),
            status=str(description["ExportStatus"]),
            bucket=str(description.get("S3Bucket", "")),
            prefix=str(description.get("S3Prefix", "")).strip("/"),
            started_at=started.astimezone(UTC) if isinstance(started, datetime) else None,
        )
