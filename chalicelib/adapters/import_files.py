"""Reading a hospital's import files from the platform's import bucket (S3): a file's size and
entity tag, and one byte range of it, read only if the file is still the one that was looked at.

Keys are built by the caller from the tenant's own folder (`domain.fhir_imports.object_key`);
nothing here takes a key from a request. A transient failure raises DependencyUnavailable (503
at the API; `Retryable` to a state machine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.clients import client
from chalicelib.adapters.failures import error_code, raise_classified

# What S3 answers for a key that is not there (HeadObject has no body: only its status).
MISSING = frozenset({"NoSuchKey", "NotFound", "404"})
# A ranged read whose If-Match no longer matches: the file was replaced since it was looked at.
CHANGED = frozenset({"PreconditionFailed", "412"})


@dataclass(frozen=True)
class FileInfo:
    size: int
    etag: str


class FileChanged(Exception):
    """The file is not the one the import was asked for any more (replaced or deleted)."""


class ImportFiles:
    def __init__(self, make_client: Callable[[str], Any] = client) -> None:
        self._client = make_client

    def describe(self, bucket: str, key: str) -> FileInfo | None:
        """The file's size and entity tag; None if there is no such file."""
        try:
            answer = self._client("s3").head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if error_code(exc) in MISSING:
                return None
            raise_classified(exc)
        return FileInfo(size=int(answer["ContentLength"]), etag=str(answer["ETag"]))

    def read(self, bucket: str, key: str, start: int, length: int, etag: str) -> bytes:
        """`length` bytes from `start` (fewer at the file's end). FileChanged if the file is not
        the one `etag` names any more."""
        if length <= 0:
            return b""
        try:
            answer = self._client("s3").get_object(
                Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}", IfMatch=etag
            )
            body: bytes = answer["Body"].read()
        except Exception as exc:
            if error_code(exc) in CHANGED | MISSING:
                raise FileChanged(key) from exc
            raise_classified(exc)
        return body
