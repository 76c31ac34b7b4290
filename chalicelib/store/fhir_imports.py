"""Bulk FHIR imports: the job and its report of refused lines. See README.md (rows 66-69).

The job (`T#<t>#FHIRIMPORT#<i>`, `JOB`) holds where the next page starts and every file's counts;
a page moves both in one update conditional on the position it started from, so a page run twice
(a retry after its answer was lost, a replay after a crash) counts once. A refused line is an
item of the same partition keyed by (file, line number): a replayed page puts the same items.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.domain.common import Document
from chalicelib.domain.fhir_imports import (
    KEEP_IMPORTS_DAYS,
    FileProgress,
    ImportFile,
    ImportStatus,
    Position,
    Rejection,
)
from chalicelib.settings import get_settings
from chalicelib.store.models import FhirImportItem, FhirImportRejectionItem, bind_models
from chalicelib.store.records import as_document, is_condition_failure

JOB_SK = "JOB"
REJECTION = "REJECT#"
RejectionPosition = tuple[int, int]  # (file index, line number) of the last one listed


def import_pk(tenant_id: str, import_id: str) -> str:
    return f"T#{tenant_id}#FHIRIMPORT#{import_id}"


def rejection_sk(file_index: int, line: int) -> str:
    return f"{REJECTION}{file_index:03d}#{line:010d}"


@dataclass(frozen=True)
class ImportRecord:
    id: str
    status: ImportStatus
    files: list[ImportFile]
    progress: list[FileProgress]
    position: Position
    created_at: str
    created_by: str
    error: str | None
    finished_at: str | None


def _record(item: FhirImportItem) -> ImportRecord:
    doc = as_document(item.doc)
    progress = as_document(item.progress)
    return ImportRecord(
        id=doc["id"],
        status=ImportStatus(item.status),
        files=[_file(f) for f in doc["files"]],
        progress=[_counts(f) for f in progress["files"]],
        position=Position(
            int(item.file_index), int(item.offset), int(item.line), bool(item.skipping)
        ),
        created_at=doc["created_at"],
        created_by=doc["created_by"],
        error=item.error,
        finished_at=item.finished_at,
    )


def _file(stored: Any) -> ImportFile:
    found = as_document(stored)
    return {"path": found["path"], "size": int(found["size"]), "etag": found["etag"]}


def _counts(stored: Any) -> FileProgress:
    found = as_document(stored)
    return {
        "path": found["path"],
        "size": int(found["size"]),
        "bytes_read": int(found["bytes_read"]),
        "lines": int(found["lines"]),
        "created": int(found["created"]),
        "updated": int(found["updated"]),
        "rejected": int(found["rejected"]),
        "skipped": int(found["skipped"]),
    }


def _expiry(created_at: str) -> datetime:
    return datetime.fromisoformat(created_at) + timedelta(days=KEEP_IMPORTS_DAYS)


class FhirImportRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def create(self, tenant_id: str, doc: Document, progress: list[FileProgress]) -> ImportRecord:
        """A new job, running from the first file's start."""
        item = FhirImportItem(
            import_pk(tenant_id, doc["id"]),
            JOB_SK,
            entity="fhir_import",
            doc=doc,
            status=ImportStatus.RUNNING.value,
            file_index=0,
            offset=0,
            line=1,
            skipping=0,
            progress={"files": [dict(p) for p in progress]},
            expires_at=_expiry(doc["created_at"]),
        )
        item.save(condition=FhirImportItem.pk.does_not_exist())
        return _record(item)

    def get(self, tenant_id: str, import_id: str) -> ImportRecord | None:
        try:
            item = FhirImportItem.get(import_pk(tenant_id, import_id), JOB_SK, consistent_read=True)
        except DoesNotExist:
            return None
        return _record(item)

    def advance(
        self,
        tenant_id: str,
        import_id: str,
        previous: Position,
        position: Position,
        progress: list[FileProgress],
        finished_at: str | None,
    ) -> bool:
        """Moves the job to `position` with `progress` (the previous counts plus the page's), and
        completes it when `finished_at` is given: only if it is still running at `previous`.
        False if another run of the same page got there first."""
        item = FhirImportItem(import_pk(tenant_id, import_id), JOB_SK)
        actions: list[Any] = [
            FhirImportItem.file_index.set(position.file_index),
            FhirImportItem.offset.set(position.offset),
            FhirImportItem.line.set(position.line),
            FhirImportItem.skipping.set(int(position.skipping)),
            FhirImportItem.progress.set({"files": [dict(p) for p in progress]}),
        ]
        if finished_at is not None:
            actions += [
                FhirImportItem.status.set(ImportStatus.COMPLETED.value),
                FhirImportItem.finished_at.set(finished_at),
            ]
        condition = (
            (FhirImportItem.status == ImportStatus.RUNNING.value)
            & (FhirImportItem.file_index == previous.file_index)
            & (FhirImportItem.offset == previous.offset)
            & (FhirImportItem.line == previous.line)
        )
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def fail(self, tenant_id: str, import_id: str, error: str, at: str) -> bool:
        """Failed, with the error's name; False if it had already ended."""
        item = FhirImportItem(import_pk(tenant_id, import_id), JOB_SK)
        try:
            item.update(
                actions=[
                    FhirImportItem.status.set(ImportStatus.FAILED.value),
                    FhirImportItem.error.set(error),
                    FhirImportItem.finished_at.set(at),
                ],
                condition=FhirImportItem.status == ImportStatus.RUNNING.value,
            )
        except UpdateError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def put_rejections(
        self,
        tenant_id: str,
        import_id: str,
        created_at: str,
        file_index: int,
        rejections: list[Rejection],
    ) -> None:
        """The page's refused lines, each keyed by its file and number: put again, the same."""
        if not rejections:
            return
        expires_at = _expiry(created_at)
        with FhirImportRejectionItem.batch_write() as batch:
            for rejection in rejections:
                batch.save(
                    FhirImportRejectionItem(
                        import_pk(tenant_id, import_id),
                        rejection_sk(file_index, rejection["line"]),
                        entity="fhir_import_rejection",
                        doc={
                            "file": rejection["file"],
                            "line": rejection["line"],
                            "errors": [dict(e) for e in rejection["errors"]],
                        },
                        expires_at=expires_at,
                    )
                )

    def rejections(
        self, tenant_id: str, import_id: str, limit: int, after: RejectionPosition | None
    ) -> tuple[list[Rejection], RejectionPosition | None]:
        """The refused lines in file and line order, a page at a time."""
        pk = import_pk(tenant_id, import_id)
        start = None
        if after is not None:
            start = {"PK": {"S": pk}, "SK": {"S": rejection_sk(*after)}}
        result = FhirImportRejectionItem.query(
            pk,
            FhirImportRejectionItem.sk.startswith(REJECTION),
            limit=limit,
            last_evaluated_key=start,
        )
        found: list[Rejection] = []
        last_key: tuple[int, int] | None = None
        for item in result:
            doc = as_document(item.doc)
            found.append(
                {
                    "file": doc["file"],
                    "line": int(doc["line"]),
                    "errors": [
                        {"path": e["path"], "message": e["message"]}
                        for e in (as_document(x) for x in doc["errors"])
                    ],
                }
            )
            _, file_part, line_part = item.sk.split("#")
            last_key = (int(file_part), int(line_part))
        more = result.last_evaluated_key is not None
        return found, last_key if more and found else None
