"""Domain errors. Each carries a stable `code`; the API maps them to HTTP by type, in one place
(`chalicelib/api/http.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One failing field, named by its JSON path (`$.phone`, `$.consent.sms.at`)."""

    path: str
    message: str


@dataclass
class DomainError(Exception):
    message: str
    code: str = "error"
    details: list[FieldError] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)


@dataclass
class ValidationFailed(DomainError):
    code: str = "validation_failed"


@dataclass
class Unauthenticated(DomainError):
    code: str = "unauthenticated"


@dataclass
class Forbidden(DomainError):
    code: str = "forbidden"


@dataclass
class NotFound(DomainError):
    code: str = "not_found"


@dataclass
class Conflict(DomainError):
    code: str = "conflict"


@dataclass
class PreconditionRequired(DomainError):
    code: str = "precondition_required"


@dataclass
class PayloadTooLarge(DomainError):
    code: str = "payload_too_large"


@dataclass
class UnsupportedMediaType(DomainError):
    code: str = "unsupported_media_type"


@dataclass
class Retryable(DomainError):
    """Transient: the same call may well succeed a little later. The API answers 503 with
    Retry-After; a state machine's task raises it under this one name (`Retryable`), which
    every Task state retries with backoff."""

    code: str = "retry_later"
    retry_after_seconds: int = 2


@dataclass
class TooManyRequests(DomainError):
    """The caller used up an allowance (wrong link codes in an hour): answered 429 with
    Retry-After."""

    code: str = "too_many_requests"
    retry_after_seconds: int = 60


@dataclass
class DependencyUnavailable(Retryable):
    """A service we depend on is throttling us or failing (after the SDK's own retries)."""

    code: str = "dependency_unavailable"


def invalid(path: str, message: str) -> ValidationFailed:
    """A validation failure of a single field."""
    return ValidationFailed(f"{path}: {message}", details=[FieldError(path, message)])


class Problems:
    """Collects field failures so that a 400 names every failing field, not only the first."""

    def __init__(self) -> None:
        self.details: list[FieldError] = []

    @contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except ValidationFailed as failure:
            self.details.extend(failure.details)

    def add(self, path: str, message: str) -> None:
        self.details.append(FieldError(path, message))

    def raise_if_any(self) -> None:
        if self.details:
            summary = "; ".join(f"{d.path}: {d.message}" for d in self.details[:5])
            raise ValidationFailed(f"request body is invalid: {summary}", details=self.details)
