"""Asynchronous invocations (SNS deliveries, EventBridge schedules) as Lambda runs them, and the
dead-letter queue of what still failed.

Lambda runs an asynchronous invocation once and then MaximumRetryAttempts more times (about a
minute and two minutes apart); what still fails goes to the function's OnFailure destination,
the platform's dead-letter queue. Both come from each function's AWS::Lambda::EventInvokeConfig
in `infra/platform.yaml`. Locally the retries come at once (no real waiting) and what still
failed is kept here, where `GET /local/dead-letters` and `python -m local dead-letters` list it.

A listing carries no PHI: which kind of event, which function, the error's name, when, an id.
The event itself (an SMS body, a bounced address) is kept beside it, as the queue's message
body is on AWS, for a test or a replay to read, but never listed.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from local.aws_calls import function_of, running

DEFAULT_RETRIES = 2  # Lambda's, for a function without an EventInvokeConfig

EventKind = Literal["sns", "schedule"]


class DeadLetter(TypedDict):
    id: str
    event_kind: EventKind
    function: str
    error: str
    attempts: int
    failed_at: str


@dataclass
class DeadLetterQueue:
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _letters: list[tuple[DeadLetter, dict[str, Any]]] = field(default_factory=list)

    retries: dict[str, int] = field(default_factory=dict)  # function logical id → retries

    def attempts(self, function: str) -> int:
        from chalice.utils import to_cfn_resource_name

        return 1 + self.retries.get(to_cfn_resource_name(function), DEFAULT_RETRIES)

    def put(self, letter: DeadLetter, event: dict[str, Any]) -> None:
        with self._lock:
            self._letters.append((letter, event))

    def clear(self) -> None:
        with self._lock:
            self._letters.clear()

    def listing(self, function: str | None = None) -> list[DeadLetter]:
        with self._lock:
            return [
                dict(letter)  # type: ignore[misc]  # a copy, so callers cannot change the queue
                for letter, _ in self._letters
                if function is None or letter["function"] == function
            ]

    def event(self, letter_id: str) -> dict[str, Any] | None:
        """The failed invocation's event, as the queue's message body holds it on AWS."""
        with self._lock:
            return next((e for letter, e in self._letters if letter["id"] == letter_id), None)


dead_letters = DeadLetterQueue()


def invoke_async(
    handler: Callable[[dict[str, Any], Any], Any],
    event: dict[str, Any],
    context: Any,
    *,
    event_kind: EventKind,
    function: str,
) -> DeadLetter | None:
    """Runs `handler` as Lambda runs an asynchronous invocation; returns the dead letter when
    every attempt failed."""
    from chalicelib import clock

    attempts = dead_letters.attempts(function)
    for attempt in range(1, attempts + 1):
        try:
            with running(function_of(function)):
                handler(event, context)
        except Exception as exc:
            if attempt < attempts:
                continue
            letter = DeadLetter(
                id=str(uuid.uuid4()),
                event_kind=event_kind,
                function=function,
                error=type(exc).__name__,
                attempts=attempt,
                failed_at=clock.iso(clock.now()),
            )
            # The error's name only: its message may quote the event.
            logging.getLogger(__name__).warning(
                "%s failed %d times (%s): dead letter %s",
                function,
                attempt,
                letter["error"],
                letter["id"],
            )
            dead_letters.put(letter, event)
            return letter
        return None
    return None
