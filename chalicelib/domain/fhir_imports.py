"""A bulk FHIR import: a hospital's history as NDJSON files (one resource a line) in the
platform's import bucket under the hospital's own folder (`<tenant id>/...`), read page by page
by the fhir-import state machine.

Pure rules, no I/O: which paths a caller may name (relative to its own folder only), how a page
of bytes splits into complete lines (a line cut by the range's end is read again by the next
page), where the next page starts, how a page's counts add to the job's, and what of a refused
line is kept: its file, its number and the paths and messages of its failures, never the line
itself nor any value of it (a message that quotes the input is redacted).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from chalicelib.domain.errors import FieldError

# One page reads at most this many bytes of a file, and imports at most MAX_LINES_PER_PAGE of
# its lines: each line is a few DynamoDB calls (~10-30 ms), so a page stays well inside the task's
# 55 s Lambda timeout; what a page does not reach the next page reads again from its offset.
PAGE_BYTES = 256 * 1024
MAX_LINES_PER_PAGE = 200
# Pages one execution runs before it starts the next one from the job's position and ends: a
# page is about 6 history events (task scheduled, started, succeeded, entered, exited; the
# Choice), so 500 pages stay near 3,000 events, far below a Standard execution's 25,000 even
# with every page retried several times.
PAGES_PER_EXECUTION = 500
MAX_FILES = 20
# Refused lines kept as items for the report (each is counted either way): a file of the
# wrong kind refuses every line, and the report would otherwise grow with it.
MAX_REJECTIONS_KEPT = 10_000
# The job and its report are kept this long (the bucket deletes the files after 30 days).
KEEP_IMPORTS_DAYS = 90
UTF8_BOM = b"\xef\xbb\xbf"
COUNTERS = ("lines", "created", "updated", "rejected", "skipped")
# One part of a path: letters, digits, '.', '_', '-'; it starts with a letter or a digit, so
# '.' and '..' are never a part.
PATH_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ImportStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Counts(TypedDict):
    lines: int  # lines read (blank ones too)
    created: int  # lines whose patient or appointment was created (201)
    updated: int  # lines whose record was updated, or already so (200)
    rejected: int  # lines refused (listed in the report)
    skipped: int  # blank lines, and resources that keep nothing (a Slot, a Practitioner)


class FileProgress(Counts):
    path: str
    size: int
    bytes_read: int


class Progress(Counts):
    """Every file's counts added up."""

    bytes: int
    bytes_read: int


class ImportJob(TypedDict):
    """An import as the API shows it."""

    id: str
    status: str  # an ImportStatus
    files: list[FileProgress]
    progress: Progress
    created_at: str
    created_by: str
    finished_at: NotRequired[str]
    error: NotRequired[str]  # why it failed: an error's name, never its cause


class ImportFile(TypedDict):
    """A file as the job keeps it: its size and entity tag when the import was asked for (a
    file changed since is not read on)."""

    path: str
    size: int
    etag: str


class RejectedField(TypedDict):
    path: str  # `line[12].birthDate`
    message: str  # what is wrong, in our words, without the value


class Rejection(TypedDict):
    file: str
    line: int
    errors: list[RejectedField]


class ImportRef(TypedDict):
    """The fhir-import state machine's input: ids only (Step Functions keeps it 90 days)."""

    tenant_id: str
    import_id: str
    part: int  # 0, then one more for each execution that carries the import on
    pages: int  # pages run by this execution


@dataclass(frozen=True)
class Position:
    """Where the next page starts: the file, its byte offset, the number of the line that
    starts there, and whether that is the middle of a line too long to read (skipped to its
    end)."""

    file_index: int = 0
    offset: int = 0
    line: int = 1
    skipping: bool = False


@dataclass(frozen=True)
class Line:
    number: int
    text: str | None  # None: not UTF-8, or too long
    too_long: bool = False


@dataclass(frozen=True)
class PageSplit:
    lines: list[Line] = field(default_factory=list)
    consumed: int = 0  # bytes of the range the lines (and what was skipped) took
    skipping: bool = False  # the range ended inside a line too long to read


def execution_name(tenant_id: str, import_id: str, part: int) -> str:
    """One execution per import and part: a repeated start is a no-op. At most 40 + 20 + 6
    characters (Step Functions allows 80)."""
    return f"{tenant_id}-{import_id}-p{part}"


def object_key(tenant_id: str, path: str) -> str:
    """A caller's path is always under its own hospital's folder."""
    return f"{tenant_id}/{path}"


def path_problems(path: str, where: str) -> list[FieldError]:
    """What is wrong with a file's path as written: it names a file in the caller's own import
    folder, relative to it (no URL, no absolute path, no '..')."""
    if "://" in path or ":" in path:
        return [FieldError(where, "must be a path in your import folder, not a URL")]
    if path.startswith(("/", "\\")):
        return [FieldError(where, "must be relative to your import folder (no leading /)")]
    parts = path.split("/")
    if any(part in (".", "..") for part in parts):
        return [FieldError(where, "must not contain '.' or '..'")]
    if not all(PATH_PART.fullmatch(part) for part in parts):
        return [
            FieldError(
                where,
                "each part of the path holds letters, digits, '.', '_' and '-' only, "
                "starting with a letter or a digit",
            )
        ]
    return []


def _line(number: int, raw: bytes) -> Line:
    raw = raw.removesuffix(b"\r")
    try:
        return Line(number, raw.decode("utf-8"))
    except UnicodeDecodeError:
        return Line(number, None)


def split_page(
    data: bytes,
    *,
    first_line: int,
    at_file_start: bool,
    at_end: bool,
    skipping: bool,
    max_lines: int = MAX_LINES_PER_PAGE,
) -> PageSplit:
    """The complete lines of one range of a file (`data`, read from the page's offset), at most
    `max_lines` of them, numbered from `first_line`, and how many of its bytes they took. A line
    the range cuts is left for the next page, which reads it whole from its start; at the file's
    end the last line needs no newline. A line longer than a whole range is not read: it is
    reported too long and skipped to its end (the next pages skip on while `skipping`)."""
    position = len(UTF8_BOM) if at_file_start and data.startswith(UTF8_BOM) else 0
    number = first_line
    if skipping:
        newline = data.find(b"\n", position)
        if newline < 0:  # still inside it (or the file ends in it)
            return PageSplit([], len(data), skipping=not at_end)
        position = newline + 1
    range_start = position if not skipping else -1  # a line that starts here may be too long
    lines: list[Line] = []
    while len(lines) < max_lines and position < len(data):
        newline = data.find(b"\n", position)
        if newline >= 0:
            lines.append(_line(number, data[position:newline]))
            number += 1
            position = newline + 1
            continue
        if at_end:
            lines.append(_line(number, data[position:]))
            position = len(data)
        elif position == range_start:  # one line is the whole range, and goes on after it
            lines.append(Line(number, None, too_long=True))
            return PageSplit(lines, len(data), skipping=True)
        break  # the cut line is the next page's
    return PageSplit(lines, position, skipping=False)


def unreadable(line: Line) -> list[RejectedField]:
    """Why a line was not read at all."""
    source = f"line[{line.number}]"
    if line.too_long:
        return [{"path": source, "message": f"is longer than {PAGE_BYTES} bytes: not read"}]
    return [{"path": source, "message": "is not UTF-8 text"}]


def next_position(position: Position, split: PageSplit, size: int, file_count: int) -> Position:
    """Where the page after this one starts: further in the same file, or at the next file's
    start once this one is read to its end."""
    offset = position.offset + split.consumed
    line = position.line + len(split.lines)
    if offset >= size and not split.skipping:
        return Position(position.file_index + 1, 0, 1, False)
    return Position(position.file_index, offset, line, split.skipping)


def no_counts() -> Counts:
    return {"lines": 0, "created": 0, "updated": 0, "rejected": 0, "skipped": 0}


def new_progress(files: list[ImportFile]) -> list[FileProgress]:
    return [{"path": f["path"], "size": f["size"], "bytes_read": 0, **no_counts()} for f in files]


def added(
    files: list[FileProgress], index: int, counts: Counts, bytes_read: int
) -> list[FileProgress]:
    """The files' progress with one page of file `index` added."""
    updated: list[FileProgress] = [FileProgress(**f) for f in files]
    target = updated[index]
    for counter in COUNTERS:
        target[counter] += counts[counter]  # type: ignore[literal-required]
    target["bytes_read"] = max(target["bytes_read"], bytes_read)
    return updated


def total(files: list[FileProgress]) -> Progress:
    progress: Progress = {"bytes": sum(f["size"] for f in files), "bytes_read": 0, **no_counts()}
    progress["bytes_read"] = sum(f["bytes_read"] for f in files)
    for counter in COUNTERS:
        progress[counter] = sum(f[counter] for f in files)  # type: ignore[literal-required]
    return progress


def outcome_of(statuses: Iterable[str]) -> str:
    """A line's counter from what became of its entries (`201 Created`, `200 OK`)."""
    seen = list(statuses)
    if any(s.startswith("201") for s in seen):
        return "created"
    return "updated" if seen else "skipped"


# -- what of a refused line may be kept ---------------------------------------------------------

# A quoted span as Python's repr and the schema checks quote a value; a word's apostrophe
# (hospital's) is not an opening quote.
_QUOTED = re.compile(r"(?<![A-Za-z0-9])'[^'\n]*'(?![A-Za-z0-9])|\"[^\"\n]*\"")
REDACTED = "…"


# A path's part as our checks write them: an element (`birthDate`), indexed (`name[0]`), or a
# profile rule's field beside it (`resource (birth_date)`). Anything else came from the input
# (an unknown element's name) and is not kept.
_PATH_PART = re.compile(r"^[A-Za-z_$][A-Za-z0-9_]*(\[\d+\])*( \([A-Za-z0-9_.\[\]]+\))?$")


def _values(node: Any) -> set[str]:
    """Every string and number in a resource."""
    found: set[str] = set()
    if isinstance(node, Mapping):
        for value in node.values():
            found |= _values(value)
    elif isinstance(node, list):
        for value in node:
            found |= _values(value)
    elif isinstance(node, str | int | float) and not isinstance(node, bool):
        found.add(str(node))
    return found


def line_values(text: str) -> set[str]:
    """What a line holds that no report may repeat (nothing if it is not JSON: its messages
    then come from the JSON parser's own short list)."""
    try:
        return {v for v in _values(json.loads(text)) if v.strip()}
    except ValueError:
        return set()


def redacted(text: str, values: set[str]) -> str:
    """`text` without any of `values` (as whole words) and without quoted spans."""
    for value in sorted(values, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", REDACTED, text)
    return _QUOTED.sub(f"'{REDACTED}'", text)


def rejected_fields(details: Iterable[FieldError], values: set[str]) -> list[RejectedField]:
    """A refused line's failures as the report keeps them: paths and messages, redacted."""
    kept: list[RejectedField] = []
    for detail in details:
        kept.append({"path": safe_path(detail.path), "message": redacted(detail.message, values)})
    return kept


def safe_path(path: str) -> str:
    """A failure's path with every part our checks would not have written replaced."""
    parts = re.split(r"\.(?![^(]*\))", path)  # not the dots inside `(...)`
    return ".".join(part if _PATH_PART.fullmatch(part) else REDACTED for part in parts)
