"""Domain errors. Each carries a stable `code`; the API maps them to HTTP by type, in one place
(`chalicelib/api/http.py`)."""

from __future__ import annotations

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
class DependencyUnavailable(DomainError):
    """A service we depend on did not answer; the request may be retried."""

    code: str = "dependency_unavailable"


def invalid(path: str, message: str) -> ValidationFailed:
    """A validation failure of a single field."""
    return ValidationFailed(f"{path}: {message}", details=[FieldError(path, message)])
