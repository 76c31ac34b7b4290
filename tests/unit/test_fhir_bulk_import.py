"""The pure rules of a bulk FHIR import: paths, a page's lines, the next position, what of a
refused line is kept."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.errors import FieldError
from chalicelib.domain.fhir_imports import (
    Position,
    added,
    line_values,
    new_progress,
    next_position,
    object_key,
    path_problems,
    rejected_fields,
    split_page,
    total,
)


@pytest.mark.parametrize(
    "path", ["history/patients.ndjson", "a.ndjson", "2024/q1/appointments-1_b.ndjson"]
)
def test_a_path_in_the_callers_own_folder(path: str) -> None:
    assert path_problems(path, "$.files[0]") == []
    assert object_key("renji-east", path) == f"renji-east/{path}"


@pytest.mark.parametrize(
    "path",
    [
        "../other-hospital/patients.ndjson",
        "history/../../x.ndjson",
        "./x.ndjson",
        "/renji-east/x.ndjson",
        "s3://bucket/other/x.ndjson",
        "https://example.org/x.ndjson",
        "history//x.ndjson",
        "history\\x.ndjson",
        "history/ x.ndjson",
        "c:x.ndjson",
    ],
)
def test_a_path_that_could_leave_the_folder_is_refused_by_its_field(path: str) -> None:
    [problem] = path_problems(path, "$.files[1]")
    assert problem.path == "$.files[1]"


def _read_whole(data: bytes, page_bytes: int, max_lines: int = 1000) -> list[tuple[int, str]]:
    """Reads `data` as the pages would: ranges of `page_bytes` from each page's offset."""
    position, seen = Position(), []
    while position.file_index == 0:
        chunk = data[position.offset : position.offset + page_bytes]
        split = split_page(
            chunk,
            first_line=position.line,
            at_file_start=position.offset == 0,
            at_end=position.offset + len(chunk) >= len(data),
            skipping=position.skipping,
            max_lines=max_lines,
        )
        seen += [(line.number, line.text if line.text is not None else "?") for line in split.lines]
        following = next_position(position, split, len(data), 1)
        assert following != position, "a page must move on"
        position = following
    return seen


@pytest.mark.parametrize("page_bytes", [13, 16, 40, 1000])  # longer than any line
@pytest.mark.parametrize("max_lines", [1, 2, 1000])
def test_every_line_is_read_once_whatever_cuts_the_ranges(page_bytes: int, max_lines: int) -> None:
    lines = ['{"a":1}', "", '{"b":"二"}', '{"c":3}', "x"]
    data = ("\ufeff" + "\n".join(lines[:2]) + "\r\n" + "\n".join(lines[2:])).encode()
    assert _read_whole(data, page_bytes, max_lines) == list(enumerate(lines, start=1))


def test_a_trailing_newline_makes_no_extra_line() -> None:
    assert _read_whole(b"one\ntwo\n", 4) == [(1, "one"), (2, "two")]


def test_a_cut_line_is_left_for_the_next_page() -> None:
    split = split_page(
        b'{"a":1}\n{"b"', first_line=5, at_file_start=False, at_end=False, skipping=False
    )
    assert [(line.number, line.text) for line in split.lines] == [(5, '{"a":1}')]
    assert (split.consumed, split.skipping) == (8, False)


def test_a_line_longer_than_a_range_is_refused_and_skipped_to_its_end() -> None:
    data = b"short\n" + b"L" * 50 + b"\nafter\n"
    seen = _read_whole(data, 16)
    assert seen == [(1, "short"), (2, "?"), (3, "after")]
    first = split_page(data[6:22], first_line=2, at_file_start=False, at_end=False, skipping=False)
    assert first.lines[0].too_long and first.skipping and first.consumed == 16


def test_a_line_that_is_not_utf8_is_its_own() -> None:
    split = split_page(
        b"\xff\xfe\nok\n", first_line=1, at_file_start=True, at_end=True, skipping=False
    )
    assert [(line.number, line.text) for line in split.lines] == [(1, None), (2, "ok")]


def test_the_next_position_moves_to_the_next_file_at_the_end() -> None:
    split = split_page(b"a\nb", first_line=1, at_file_start=True, at_end=True, skipping=False)
    assert next_position(Position(0, 0, 1), split, 3, 2) == Position(1, 0, 1, False)
    partial = split_page(b"a\nb", first_line=1, at_file_start=True, at_end=False, skipping=False)
    assert next_position(Position(0, 0, 1), partial, 10, 2) == Position(0, 2, 2, False)


def test_counts_add_per_file_and_in_total() -> None:
    files = new_progress(
        [
            {"path": "p.ndjson", "size": 10, "etag": "e"},
            {"path": "a.ndjson", "size": 5, "etag": "f"},
        ]
    )
    page = {"lines": 3, "created": 1, "updated": 1, "rejected": 1, "skipped": 0}
    once = added(files, 0, page, 6)  # type: ignore[arg-type]
    twice = added(once, 0, page, 10)  # type: ignore[arg-type]
    assert files[0]["lines"] == 0  # not changed in place
    assert (twice[0]["lines"], twice[0]["bytes_read"], twice[1]["lines"]) == (6, 10, 0)
    assert total(twice) == {
        "bytes": 15,
        "bytes_read": 10,
        "lines": 6,
        "created": 2,
        "updated": 2,
        "rejected": 2,
        "skipped": 0,
    }


def test_a_refused_line_keeps_paths_and_messages_but_none_of_its_values() -> None:
    line = json.dumps(
        {
            "resourceType": "Appointment",
            "status": "Zhang Wei",
            "note": "13800138000",
            "birthDate": "1961-13-45",
            "Li Na": 1,
        }
    )
    details = [
        FieldError("line[4].status", "'Zhang Wei' is not imported"),
        FieldError("line[4].birthDate", "1961-13-45 is not a date"),
        FieldError("line[4].Li Na", "is not an element of this resource"),
        FieldError("line[4].resource (guardian.phone)", 'phone "13800138000" is too long'),
        FieldError("line[4].gender", "is not one of female, male, other, unknown"),
        FieldError("line[4]", "the hospital's identifier is needed"),
    ]
    kept = rejected_fields(details, line_values(line))
    text = json.dumps(kept, ensure_ascii=False)
    for value in ("Zhang Wei", "13800138000", "1961-13-45", "Li Na"):
        assert value not in text
    assert [k["path"] for k in kept] == [
        "line[4].status",
        "line[4].birthDate",
        "line[4].…",
        "line[4].resource (guardian.phone)",
        "line[4].gender",
        "line[4]",
    ]
    assert kept[4]["message"] == "is not one of female, male, other, unknown"
    assert kept[5]["message"] == "the hospital's identifier is needed"
