"""What an AWS failure means for the caller, after the SDK's own retries.

Three kinds, decided here once for every service (DynamoDB through PynamoDB included):
- transient: throttling, 5xx, a connection that never reached the service. The same call may
  succeed later: raised as `DependencyUnavailable` (503 at the API; `Retryable` to a state machine).
- ambiguous: the request left but its answer was lost (a read timeout, a dropped connection).
  For a message this means it may have been sent: `OutcomeUnknown`, never retried elsewhere.
- permanent: anything else the service refused (bad number, disabled endpoint, rejected mail).

Exceptions are recognised by their botocore names and response codes, without importing
botocore or PynamoDB (the API path does not load them for this).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from chalicelib.domain.errors import DependencyUnavailable

THROTTLING = frozenset(
    {
        "Throttling",
        "Throttled",  # SNS
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "ProvisionedThroughputExceeded",
        "ThrottlingError",
        "LimitExceededException",
        "KMSThrottlingException",
        "SlowDown",
    }
)
SERVER_FAULTS = frozenset(
    {
        "InternalError",
        "InternalErrorException",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceException",
    }
)
# botocore errors raised before the request reached the service: safe to send again.
NOT_SENT = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ProxyConnectionError", "SSLError"}
)
# botocore errors raised after the request may have reached the service.
LOST_ANSWER = frozenset({"ReadTimeoutError", "ConnectionClosedError", "ResponseStreamingError"})


T = TypeVar("T")


def retried(call: Callable[[], T], attempts: int = 8) -> T:
    """Call again after a transient failure, with short backoff (50 ms doubling to 1 s), for a
    write that must not be left undone (what was sent; a claim given back). Anything else, or
    the last transient failure, is raised."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            time.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError("unreachable")


class SendRefused(Exception):
    """The provider refused this message for good (on this channel): try the next channel."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutcomeUnknown(Exception):
    """The request left, but whether the message was accepted is not known."""


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _unwrapped(exc: BaseException) -> BaseException:
    """PynamoDB wraps the botocore error it got in `cause`."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def error_code(exc: BaseException) -> str | None:
    response = getattr(_unwrapped(exc), "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def _status(exc: BaseException) -> int:
    response = getattr(_unwrapped(exc), "response", None)
    if not isinstance(response, dict):
        return 0
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _cancellation_codes(exc: BaseException) -> set[str]:
    """Reasons DynamoDB gave for cancelling a transaction (PynamoDB's TransactWriteError)."""
    reasons: list[Any] = getattr(exc, "cancellation_reasons", None) or []
    return {str(r.code) for r in reasons if r is not None and getattr(r, "code", None)}


def is_transient(exc: BaseException) -> bool:
    """Throttling, a server fault, or a request that never left: worth trying again later.

    A transaction cancelled because one of its items was throttled is transient too (DynamoDB
    reports it as TransactionCanceledException with reason ThrottlingError, not as throttling).
    """
    inner = _unwrapped(exc)
    if _names(inner) & (NOT_SENT | LOST_ANSWER):
        return True
    code = error_code(exc)
    if code in THROTTLING or code in SERVER_FAULTS or _status(exc) >= 500:
        return True
    return bool(_cancellation_codes(exc) & THROTTLING)


def is_lost_answer(exc: BaseException) -> bool:
    return bool(_names(_unwrapped(exc)) & LOST_ANSWER)


def as_retryable(exc: BaseException) -> DependencyUnavailable | None:
    """The domain error for a transient failure, or None if the failure is not transient."""
    if not is_transient(exc):
        return None
    return DependencyUnavailable(
        f"a service we depend on is busy or failing ({error_code(exc) or type(exc).__name__})"
    )


def raise_classified(exc: Exception) -> NoReturn:
    """Re-raise a failed call: as DependencyUnavailable when transient, else unchanged."""
    retryable = as_retryable(exc)
    if retryable is not None:
        raise retryable from exc
    raise exc


def classify_send(exc: Exception) -> Exception:
    """What a failed send means: OutcomeUnknown, DependencyUnavailable or SendRefused."""
    if is_lost_answer(exc):
        return OutcomeUnknown(type(_unwrapped(exc)).__name__)
    retryable = as_retryable(exc)
    if retryable is not None:
        return retryable
    return SendRefused(error_code(exc) or type(exc).__name__)
