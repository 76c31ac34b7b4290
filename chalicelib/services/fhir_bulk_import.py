"""A hospital's history imported in bulk: NDJSON files (one FHIR resource a line) the hospital put
in its own folder of the platform's import bucket, read asynchronously, with progress and a
report of the lines refused.

- `start` (`POST /fhir/imports`, admins): each named file must be in the caller's own folder
  (paths are relative to it) and exist; the job records each file's size and entity tag and
  starts one execution of the fhir-import machine, named after the tenant and the import.
- `page` (the machine's loop): reads the job's position, one bounded byte range of the file,
  and imports its complete lines one by one through `FhirImportService` (the same checks and
  idempotent upserts as `POST /fhir`; one bad line is a rejection, the others go on). The
  refused lines are put in the report keyed by (file, line); then the position and the counts
  move in one update conditional on the position the page started from. A page run again
  after a crash imports its lines again (changing nothing) and counts them once. After
  PAGES_PER_EXECUTION pages, the next execution carries on from the job's position.
- `failed` (the machine's Catch): the job is marked failed with the error's name.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from chalicelib import clock
from chalicelib.adapters.executions import Executions
from chalicelib.adapters.import_files import FileChanged, ImportFiles
from chalicelib.domain import fhir_imports as rules
from chalicelib.domain.access import Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id, utc_iso
from chalicelib.domain.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    FieldError,
    NotFound,
    Retryable,
    ValidationFailed,
    invalid,
)
from chalicelib.domain.fhir.common import mrn_system_of
from chalicelib.domain.fhir.imports import parse_ndjson_line
from chalicelib.domain.fhir_imports import (
    ImportJob,
    ImportRef,
    ImportStatus,
    Line,
    RejectedField,
    Rejection,
)
from chalicelib.domain.step_results import FhirImportFailed, FhirImportPage
from chalicelib.domain.tenants import is_active
from chalicelib.observability import count
from chalicelib.services.fhir_import import FhirImportService, Places
from chalicelib.services.patients import parse_limit
from chalicelib.services.tenants import TenantService
from chalicelib.settings import get_settings
from chalicelib.store.fhir_imports import FhirImportRepository, ImportRecord

IMPORTERS = frozenset({Role.ADMIN})
# Conflicts that mean "someone wrote at the same moment": the page is run again (tasks/runner).
RACES = frozenset({"version_conflict", "concurrent_change"})
CURSOR = re.compile(r"^(\d{1,3}):(\d{1,10})$")


def public(record: ImportRecord) -> ImportJob:
    job: ImportJob = {
        "id": record.id,
        "status": record.status.value,
        "files": [dict(f) for f in record.progress],  # type: ignore[misc]
        "progress": rules.total(record.progress),
        "created_at": record.created_at,
        "created_by": record.created_by,
    }
    if record.finished_at:
        job["finished_at"] = record.finished_at
    if record.error:
        job["error"] = record.error
    return job


def _encode_cursor(position: tuple[int, int]) -> str:
    raw = f"{position[0]}:{position[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error) as exc:
        raise invalid("cursor", "is not a cursor this API returned") from exc
    found = CURSOR.fullmatch(raw)
    if found is None:
        raise invalid("cursor", "is not a cursor this API returned")
    return int(found[1]), int(found[2])


class BulkImportService:
    def __init__(
        self,
        imports: FhirImportRepository,
        files: ImportFiles,
        executions: Executions,
        tenants: TenantService,
        importer: FhirImportService,
    ) -> None:
        self._imports = imports
        self._files = files
        self._executions = executions
        self._tenants = tenants
        self._importer = importer

    # -- admins ----------------------------------------------------------------------------------

    def start(self, principal: Principal, body: Document) -> ImportJob:
        require_role(principal, IMPORTERS)
        tenant_id = tenant_of(principal)
        self._tenants.require(tenant_id)
        files = self._checked_files(tenant_id, body["files"])
        now = clock.now()
        doc: Document = {
            "id": "imp-" + secrets.token_hex(8),
            "files": [dict(f) for f in files],
            "created_at": utc_iso(now),
            "created_by": principal.subject,
        }
        record = self._imports.create(tenant_id, doc, rules.new_progress(files))
        try:
            self._start(tenant_id, record.id, 0)
        except DependencyUnavailable:
            # Not started: the job says so, and the same request may be sent again.
            self._imports.fail(tenant_id, record.id, "not_started", utc_iso(clock.now()))
            raise
        count("FhirImportStarted")
        return public(record)

    def _checked_files(self, tenant_id: str, paths: list[str]) -> list[rules.ImportFile]:
        """Each file as it is now, in the caller's own folder; a 400 names every one that is
        not there."""
        problems: list[FieldError] = []
        found: list[rules.ImportFile] = []
        bucket = get_settings().import_bucket
        for index, path in enumerate(paths):
            where = f"$.files[{index}]"
            wrong = rules.path_problems(path, where)
            if wrong:
                problems += wrong
                continue
            info = self._files.describe(bucket, rules.object_key(tenant_id, path))
            if info is None:
                problems.append(FieldError(where, "no such file in your hospital's import folder"))
                continue
            found.append({"path": path, "size": info.size, "etag": info.etag})
        if problems:
            summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
            raise ValidationFailed(f"the files cannot be imported: {summary}", details=problems)
        return found

    def get(self, principal: Principal, import_id: str) -> ImportJob:
        require_role(principal, IMPORTERS)
        return public(self._require(tenant_of(principal), import_id))

    def rejections(
        self, principal: Principal, import_id: str, *, limit: str | None, cursor: str | None
    ) -> tuple[list[Rejection], str | None]:
        require_role(principal, IMPORTERS)
        tenant_id = tenant_of(principal)
        after = _decode_cursor(cursor) if cursor else None
        self._require(tenant_id, import_id)
        found, position = self._imports.rejections(tenant_id, import_id, parse_limit(limit), after)
        return found, _encode_cursor(position) if position else None

    def _require(self, tenant_id: str, import_id: str) -> ImportRecord:
        record = self._imports.get(tenant_id, import_id) if is_valid_id(import_id) else None
        if record is None:
            raise NotFound("import not found")
        return record

    def _start(self, tenant_id: str, import_id: str, part: int) -> None:
        ref: ImportRef = {"tenant_id": tenant_id, "import_id": import_id, "part": part, "pages": 0}
        self._executions.start(
            get_settings().fhir_import_arn,
            rules.execution_name(tenant_id, import_id, part),
            dict(ref),
        )

    # -- the fhir-import state machine -------------------------------------------------------------

    def page(self, ref: Document) -> FhirImportPage:
        """One page of the import (see the module's docstring)."""
        tenant_id, import_id, pages = ref["tenant_id"], ref["import_id"], int(ref["pages"])
        over: FhirImportPage = {"done": True, "pages": pages}
        record = self._imports.get(tenant_id, import_id)
        if record is None or record.status is not ImportStatus.RUNNING:
            return over
        if pages >= rules.PAGES_PER_EXECUTION:
            self._start(tenant_id, import_id, int(ref["part"]) + 1)
            return over
        tenant = self._tenants.require(tenant_id)
        if not is_active(tenant):
            self._imports.fail(tenant_id, import_id, "hospital_deactivated", utc_iso(clock.now()))
            return over
        position = record.position
        file = record.files[position.file_index]
        length = min(rules.PAGE_BYTES, file["size"] - position.offset)
        try:
            data = self._files.read(
                get_settings().import_bucket,
                rules.object_key(tenant_id, file["path"]),
                position.offset,
                length,
                file["etag"],
            )
        except FileChanged:
            self._imports.fail(tenant_id, import_id, "file_changed", utc_iso(clock.now()))
            count("FhirImportFailed")
            return over
        split = rules.split_page(
            data,
            first_line=position.line,
            at_file_start=position.offset == 0,
            at_end=position.offset + len(data) >= file["size"],
            skipping=position.skipping,
        )
        counts, rejections = self._import_lines(tenant, file["path"], split.lines)
        already = rules.total(record.progress)["rejected"]
        kept = rejections[: max(0, rules.MAX_REJECTIONS_KEPT - already)]
        self._imports.put_rejections(
            tenant_id, import_id, record.created_at, position.file_index, kept
        )
        following = rules.next_position(position, split, file["size"], len(record.files))
        read_to = file["size"] if following.file_index > position.file_index else following.offset
        progress = rules.added(record.progress, position.file_index, counts, read_to)
        finished = following.file_index >= len(record.files)
        advanced = self._imports.advance(
            tenant_id,
            import_id,
            position,
            following,
            progress,
            utc_iso(clock.now()) if finished else None,
        )
        if advanced:
            count("FhirImportLines", counts["lines"])
            if finished:
                count("FhirImportCompleted")
        # Not advanced: another run of this page counted it; the next page reads where it is.
        return {"done": finished and advanced, "pages": pages + 1}

    def _import_lines(
        self, tenant: Document, path: str, lines: list[Line]
    ) -> tuple[rules.Counts, list[Rejection]]:
        counts = rules.no_counts()
        rejections: list[Rejection] = []
        places = self._importer.places(tenant) if lines else None
        for line in lines:
            counts["lines"] += 1
            outcome = self._import_line(tenant, line, places)
            if isinstance(outcome, list):
                counts["rejected"] += 1
                rejections.append({"file": path, "line": line.number, "errors": outcome})
            else:
                counts[outcome] += 1  # type: ignore[literal-required]
        return counts, rejections

    def _import_line(
        self, tenant: Document, line: Line, places: Places | None
    ) -> str | list[RejectedField]:
        """What became of one line: `created`, `updated`, `skipped`, or why it was refused."""
        source = f"line[{line.number}]"
        if line.text is None:
            return rules.unreadable(line)
        try:
            parsed = parse_ndjson_line(
                line.text,
                line.number,
                mrn_system_of(tenant),
                phone_region=tenant.get("country"),
            )
            if not (parsed["patients"] or parsed["appointments"]):
                return "skipped"  # blank, or a resource that keeps nothing alone
            results = self._importer.import_parsed(tenant, parsed, source, places)
        except ValidationFailed as failure:
            details = failure.details or [FieldError(source, "cannot be imported")]
            return rules.rejected_fields(details, rules.line_values(line.text))
        except Retryable:
            raise  # the whole page again, later
        except Conflict as conflict:
            if conflict.code in RACES:
                raise
            return [{"path": source, "message": f"conflicts with what is stored ({conflict.code})"}]
        except DomainError as error:  # its code only: a message may name a value
            return [{"path": source, "message": f"cannot be imported ({error.code})"}]
        return rules.outcome_of(r["status"] for r in results.values())

    def failed(self, event: Document) -> FhirImportFailed:
        """The machine's Catch: the job ends failed, with the error's name (never its cause)."""
        failed = self._imports.fail(
            event["tenant_id"], event["import_id"], event["error"], utc_iso(clock.now())
        )
        if failed:
            count("FhirImportFailed")
        return {"failed": failed}
