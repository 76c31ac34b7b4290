"""Starting a DynamoDB export of the table to S3 (ExportTableToPointInTime): a full export in
DynamoDB JSON, encrypted with S3's own keys, read by Athena through the Glue table
(infra/platform.yaml). An export reads the table's point-in-time backup, not the table: it uses
no read capacity and never throttles the product's own traffic.

A transient failure (throttling, too many exports at once, a failing service) raises
DependencyUnavailable; anything else is raised as it came.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.adapters.clients import client
from chalicelib.adapters.failures import raise_classified


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
