"""The one way a Step Functions step handler runs: validate the input against its schema, make
one service call, return what the state machine reads.

Every transient failure leaves the handler under one error name, `Retryable`, which every Task
state retries with backoff and jitter: throttling or a failing AWS service (after the SDK's own
retries), a transaction cancelled for throttling, a claim held by another attempt, a record
changed at the same moment. Anything else is a real error: the state's Catch reports it to staff.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from functools import wraps
from typing import Any, Protocol, TypeVar

from chalicelib.adapters.failures import as_retryable
from chalicelib.audit_trail import Trail, recording
from chalicelib.domain.audit import Activity, ActorKind
from chalicelib.domain.errors import Conflict, Retryable
from chalicelib.observability import count
from chalicelib.schemas import validate

Event = dict[str, Any]
# What a task returns: a TypedDict of domain.step_results, the keys its state machine reads.
Result = TypeVar("Result", bound=Mapping[str, object])


class Handler(Protocol):
    def __call__(self, event: Event, context: Any = None) -> Event: ...


# Conflicts that mean "someone wrote at the same moment": reading again settles them.
RACES = frozenset({"version_conflict", "concurrent_change"})


def retryable_form(exc: Exception) -> Retryable | None:
    """The Retryable a task raises for `exc`, or None when `exc` is not transient."""
    if isinstance(exc, Retryable):
        return Retryable(exc.message, code=exc.code)
    if isinstance(exc, Conflict) and exc.code in RACES:
        return Retryable(exc.message, code=exc.code)
    transient = as_retryable(exc)
    return Retryable(transient.message, code=transient.code) if transient else None


def step_handler(schema: str) -> Callable[[Callable[[Event], Result]], Handler]:
    def wrap(run: Callable[[Event], Result]) -> Handler:
        @wraps(run)
        def handler(event: Event, context: Any = None) -> Event:
            validate(schema, event)
            with recording() as trail:
                try:
                    result = dict(run(event))
                except Exception as exc:
                    with suppress(Exception):  # the failure itself is what matters here
                        _audit(run.__name__, event, context, trail, "failed")
                    retry = retryable_form(exc)
                    if retry is None:
                        raise
                    count("TaskRetryable")
                    raise retry from exc
                try:
                    _audit(run.__name__, event, context, trail, "ok")
                except Exception as exc:
                    # Unaudited is not done: the state retries, and the step's own claims make
                    # the retry repeat no side effect.
                    retry = retryable_form(exc) or Retryable("audit entry not written")
                    count("TaskRetryable")
                    raise retry from exc
                return result

        return handler

    return wrap


def _audit(task: str, event: Event, context: Any, trail: Trail, outcome: str) -> None:
    """One audit entry for a task that acted on a patient's data (journey actions)."""
    tenant_id = event.get("tenant_id")
    if not isinstance(tenant_id, str) or not (trail.patients or trail.records):
        return
    from chalicelib.services.registry import services

    activity = Activity(
        actor={"kind": ActorKind.JOURNEY, "subject": task, "role": "journey"},
        action=task,
        subjects=(),
        records=tuple({"type": kind, "id": record_id} for kind, record_id in trail.records),
        fields=(),
        outcome=outcome,
        source={"request_id": str(getattr(context, "aws_request_id", "") or "")},
    )
    services().audit.record(
        tenant_id, activity, trail.patients, found=trail.patients - trail.erased
    )
