"""Lambda's event filtering of a stream's records, for the patterns the stream handlers declare
(`STREAM_FILTERS` of analytics and of loyalty): infra/package.py gives each function's mapping
its own, and the local runtime's poller applies the same ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _matches(pattern: Any, value: Any) -> bool:
    """A dict descends, a list lists the values allowed (or `{"prefix": ...}`)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            _matches(sub, value.get(key)) for key, sub in pattern.items()
        )
    return any(
        isinstance(value, str) and value.startswith(a["prefix"])
        if isinstance(a, dict)
        else value == a
        for a in pattern
    )


def passes(filters: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """Whether any of the filters lets a stream record through (the filters are or-ed)."""
    return any(_matches(pattern, record) for pattern in filters)
