"""DynamoDB's table exports to S3 (ExportTableToPointInTime), written as AWS writes them.

moto 5.2.5 accepts the call and exports in a thread, but writes one gzip file of every item at
`<prefix>/AWSDynamoDB/<uuid>/data/<uuid>.gz` under an export id that is not its ARN's, writes no
manifests, and ignores ClientToken (each call starts another export). This replaces its writer
and its handler so that the emulated bucket holds the layout AWS documents for DYNAMODB_JSON:

    <prefix>/AWSDynamoDB/<export id>/_started
    <prefix>/AWSDynamoDB/<export id>/manifest-summary.json  (+ .md5)
    <prefix>/AWSDynamoDB/<export id>/manifest-files.json    (+ .md5), one line per data file
    <prefix>/AWSDynamoDB/<export id>/data/<name>.json.gz    one {"Item": {...}} per line

with the export's ARN `<table ARN>/export/<export id>`, and a ClientToken already used for the
same table within 8 hours (on the virtual clock) answered with the export it started; after 8
hours the token starts another, as on AWS. DescribeExport tells its StartTime, EndTime and
ClientToken too (moto's tells none of them). ListExports is moto's: every export of the table, one
page. `fail_next_export` makes an export fail part way, as one can on AWS: its `_started` and a
first data file written, no manifest. Still unlike AWS: the items are the table as it is when
the thread runs (no ExportTime), and a token reused with other parameters is not refused.
Reading the whole table here is the emulator's own work (local/ is not a request path).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import threading
from datetime import timedelta
from typing import Any

ITEMS_PER_FILE = 500  # AWS splits an export into files by size; a few files here, not one
TOKEN_LIFE = timedelta(hours=8)  # how long DynamoDB answers a ClientToken with its export

# (account, region, table ARN|token) → (export ARN, when the token was first used)
_by_token: dict[tuple[str, str, str], tuple[str, Any]] = {}
_failing: list[str] = []  # the failure codes of the next exports to start, in order
_lock = threading.RLock()  # held while an export starts, and taken again by its init


def fail_next_export(code: str = "UNKNOWN") -> None:
    """The next export started fails part way (`code` its FailureCode), leaving a data file
    and no manifest behind."""
    with _lock:
        _failing.append(code)


def install() -> None:
    from moto.dynamodb.models.table_export import TableExport
    from moto.dynamodb.responses import DynamoHandler

    original_init = TableExport.__init__
    original_response = TableExport.response
    original_handler = DynamoHandler.export_table_to_point_in_time

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        from chalicelib import clock

        self.started_at = clock.now()
        self.ended_at = None
        self.client_token = None
        self.export_id = f"{int(self.started_at.timestamp() * 1000):014d}-{secrets.token_hex(4)}"
        self.arn = f"{self.table.table_arn}/export/{self.export_id}"
        with _lock:
            self.failing = _failing.pop(0) if _failing else None

    def response(self: Any) -> dict[str, Any]:
        described: dict[str, Any] = original_response(self)
        described["StartTime"] = self.started_at
        if self.ended_at is not None:
            described["EndTime"] = self.ended_at
        if self.client_token:
            described["ClientToken"] = self.client_token
        return {k: v for k, v in described.items() if v is not None}

    def handler(self: Any) -> Any:
        from moto.core.responses import ActionResult

        from chalicelib import clock

        token = self.body.get("ClientToken")
        key = (self.current_account, self.region, f"{self.body['TableArn']}|{token}")
        with _lock:
            known = _by_token.get(key) if token else None
            if known is not None and clock.now() - known[1] < TOKEN_LIFE:
                described = self.dynamodb_backend.describe_export(known[0])
                return ActionResult({"ExportDescription": described.response()})
            before = set(self.dynamodb_backend.table_exports)
            answer = original_handler(self)
            if token:
                (started,) = set(self.dynamodb_backend.table_exports) - before
                self.dynamodb_backend.table_exports[started].client_token = token
                _by_token[key] = (started, clock.now())
            return answer

    TableExport.__init__ = init  # type: ignore[method-assign]
    TableExport.response = response  # type: ignore[method-assign]
    TableExport._backup_to_s3_file = write_export  # type: ignore[method-assign,assignment]
    DynamoHandler.export_table_to_point_in_time = handler  # type: ignore[method-assign]


def forget() -> None:
    """After a reset: the emulator's exports are gone, and so are their tokens."""
    with _lock:
        _by_token.clear()
        _failing.clear()


def _md5(data: bytes) -> tuple[str, str]:
    digest = hashlib.md5(data)  # noqa: S324 - S3's entity tag and AWS's manifest checksums
    return base64.b64encode(digest.digest()).decode(), digest.hexdigest()


def write_export(self: Any, s3: Any) -> None:
    """moto's `TableExport._backup_to_s3_file`, writing AWS's layout."""
    from moto.dynamodb.models.utilities import dynamo_json_dump

    from chalicelib import clock

    base = f"{self.s3_prefix}/AWSDynamoDB/{self.export_id}"

    def put(key: str, body: bytes) -> str:
        s3.put_object(bucket_name=self.s3_bucket, key_name=key, value=body)
        return _md5(body)[1]

    put(f"{base}/_started", b"")
    lines = [
        dynamo_json_dump(item.to_json(root_attr_name="Item")) for item in self.table.all_items()
    ]
    manifest_lines = []
    for first in range(0, max(len(lines), 1), ITEMS_PER_FILE):
        chunk = lines[first : first + ITEMS_PER_FILE]
        body = gzip.compress("".join(f"{line}\n" for line in chunk).encode())
        key = f"{base}/data/{secrets.token_hex(13)}.json.gz"
        etag = put(key, body)
        self.processed_bytes += sum(len(line) for line in chunk)
        self.item_count += len(chunk)
        if self.failing:
            # As an export fails on AWS: what it wrote stays, no manifest says it completed.
            self.ended_at = clock.now()
            self.failure_code = self.failing
            self.failure_message = "The export failed (local/table_exports.fail_next_export)"
            self.status = "FAILED"
            return
        manifest_lines.append(
            json.dumps(
                {
                    "itemCount": len(chunk),
                    "md5Checksum": _md5(body)[0],
                    "etag": etag,
                    "dataFileS3Key": key,
                }
            )
        )
    files = "".join(f"{line}\n" for line in manifest_lines).encode()
    put(f"{base}/manifest-files.json", files)
    put(f"{base}/manifest-files.md5", _md5(files)[0].encode())
    started = clock.iso(self.started_at)
    summary = json.dumps(
        {
            "version": "2020-06-30",
            "exportArn": self.arn,
            "startTime": started,
            "endTime": clock.iso(clock.now()),
            "tableArn": self.table.table_arn,
            "tableId": self.table.table_arn.rsplit("/", 1)[-1],
            "exportTime": started,
            "s3Bucket": self.s3_bucket,
            "s3Prefix": self.s3_prefix,
            "s3SseAlgorithm": "AES256",
            "s3SseKmsKeyId": None,
            "manifestFilesS3Key": f"{base}/manifest-files.json",
            "billedSizeBytes": self.processed_bytes,
            "itemCount": self.item_count,
            "outputFormat": "DYNAMODB_JSON",
            "exportType": "FULL_EXPORT",
        }
    ).encode()
    put(f"{base}/manifest-summary.json", summary)
    put(f"{base}/manifest-summary.md5", _md5(summary)[0].encode())
    self.ended_at = clock.now()
    self.status = "COMPLETED"
