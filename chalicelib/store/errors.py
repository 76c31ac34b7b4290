"""Store-level failures, translated into domain errors by the repositories."""

from chalicelib.domain.errors import Conflict


def concurrent_change() -> Conflict:
    return Conflict(
        "another change to this record was in progress; retry", code="concurrent_change"
    )


def version_conflict() -> Conflict:
    return Conflict(
        "the record was changed by someone else; reload it and retry", code="version_conflict"
    )
