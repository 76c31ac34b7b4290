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
same table answered with the export it started. Still unlike AWS: the items are the table as it
is when the thread runs (no ExportTime), and a token reused with other parameters is not refused.
Reading the whole table here is the emulator's own work (local/ is not a request path).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import threading
from typing import Any

ITEMS_PER_FILE = 500  # AWS splits an export into files by size; a few files here, not one

_by_token: dict[tuple[str, str, str], str] = {}  # (account, region, token) → export ARN
_lock = threading.Lock()


def install() -> None:
    from moto.dynamodb.models.table_export import TableExport
    from moto.dynamodb.responses import DynamoHandler

    original_init = TableExport.__init__
    original_handler = DynamoHandler.export_table_to_point_in_time

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        from chalicelib import clock

        self.started_at = clock.now()
        self.export_id = f"{int(self.started_at.timestamp() * 1000):014d}-{secrets.token_hex(4)}"
        self.arn = f"{self.table.table_arn}/export/{self.export_id}"

    def handler(self: Any) -> Any:
        from moto.core.responses import ActionResult

        token = self.body.get("ClientToken")
        key = (self.current_account, self.region, f"{self.body['TableArn']}|{token}")
        with _lock:
            known = _by_token.get(key) if token else None
            if known is not None:
                described = self.dynamodb_backend.describe_export(known)
                return ActionResult({"ExportDescription": described.response()})
            before = set(self.dynamodb_backend.table_exports)
            answer = original_handler(self)
            if token:
                (started,) = set(self.dynamodb_backend.table_exports) - before
                _by_token[key] = started
            return answer

    TableExport.__init__ = init  # type: ignore[method-assign]
    TableExport._backup_to_s3_file = write_export  # type: ignore[method-assign,assignment]
    DynamoHandler.export_table_to_point_in_time = handler  # type: ignore[method-assign]


def forget() -> None:
    """After a reset: the emulator's exports are gone, and so are their tokens."""
    with _lock:
        _by_token.clear()


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
    self.status = "COMPLETED"
