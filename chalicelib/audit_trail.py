"""What the current request or task touched, noted as it happens, for its audit entry.

The repositories note each patient-bearing record they read or write (`touched`); the API edge
and the task runner open a trail around each request or task (`recording`) and write one audit
entry from it at the end. Outside a trail, noting does nothing (the local runtime's own reads,
provisioning, tests of a repository alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Trail:
    patients: set[str] = field(default_factory=set)
    records: dict[tuple[str, str], None] = field(default_factory=dict)  # ordered, unique
    break_glass: str | None = None
    stated_reason: str | None = None  # what the caller gave for reading outside their departments
    reason: str | None = None  # why a change was made, where the change asks for one (erasure)
    erased: set[str] = field(default_factory=set)  # patients erased by this request or task


_current: ContextVar[Trail | None] = ContextVar("audit_trail", default=None)


@contextmanager
def recording(stated_reason: str | None = None) -> Iterator[Trail]:
    trail = Trail(stated_reason=stated_reason)
    token = _current.set(trail)
    try:
        yield trail
    finally:
        _current.reset(token)


def touched(kind: str, record_id: str | None, patient_id: str | None = None) -> None:
    trail = _current.get()
    if trail is None:
        return
    if record_id:
        trail.records[(kind, record_id)] = None
    if patient_id:
        trail.patients.add(patient_id)


def touched_docs(kind: str, docs: Iterable[Mapping[str, Any] | None]) -> None:
    """Records of one kind: each by its `id`; its patient by `patient_id` (or its own id, for a
    patient's profile)."""
    if _current.get() is None:
        return
    for doc in docs:
        if doc is None:
            continue
        record_id = doc.get("id") or doc.get("key")
        patient_id = record_id if kind == "patient" else doc.get("patient_id")
        touched(kind, str(record_id) if record_id else None, patient_id)


def stated_reason() -> str | None:
    trail = _current.get()
    return trail.stated_reason if trail is not None else None


def erased(patient_id: str) -> None:
    """This patient was erased here: their entry names them by pseudonym, which must not become
    findable again."""
    trail = _current.get()
    if trail is not None:
        trail.erased.add(patient_id)


def reason_given(reason: str) -> None:
    """The reason the caller gave for this change, for its audit entry."""
    trail = _current.get()
    if trail is not None:
        trail.reason = reason


def glass_broken(reason: str) -> None:
    """The caller read a patient outside their departments, giving this reason."""
    trail = _current.get()
    if trail is not None:
        trail.break_glass = reason


def noting(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a repository method: the records it returns (one, a list, or a page's list
    first in a tuple) are noted as touched."""

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        @wraps(method)
        def noted(*args: P.args, **kwargs: P.kwargs) -> R:
            result = method(*args, **kwargs)
            if _current.get() is not None:
                found = result[0] if isinstance(result, tuple) else result
                if isinstance(found, Mapping):
                    touched_docs(kind, [found])
                elif isinstance(found, list):
                    touched_docs(kind, found)
            return result

        return noted

    return wrap
