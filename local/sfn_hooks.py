"""Hooks that make moto's Step Functions interpreter read the virtual clock (and report its
activity, for `settle()`).

Wait states (Seconds, SecondsPath, Timestamp, TimestampPath) wait in virtual time and end at once
when their execution is stopped. Retry back-off does not sleep at all: it is seconds of real time
that would only slow tests and demos down.
"""

from __future__ import annotations

import threading
from datetime import UTC, timedelta
from typing import Any

from local.activity import activity
from local.vclock import VirtualClock

# The absolute moment a Timestamp wait computed, handed to the wait on the same thread.
_absolute = threading.local()


class _NoSleep:
    """Stands in for the `time` module inside moto's retrier."""

    @staticmethod
    def sleep(_seconds: float) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)


def _count_parsing_as_busy() -> None:
    """An execution parses its definition (ANTLR, slow: over a second on a loaded machine)
    before its first state runs; until then it is busy, not quiet."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original_worker_start = ExecutionWorker.start

    def worker_start(self: Any) -> None:
        activity.begin()
        parse = self._get_evaluation_entrypoint

        def parsed() -> Any:
            try:
                return parse()
            finally:
                activity.end()

        self._get_evaluation_entrypoint = parsed
        original_worker_start(self)  # type: ignore[no-untyped-call]

    ExecutionWorker.start = worker_start  # type: ignore[method-assign]


def install(clock: VirtualClock) -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
        timestamp,
        wait_function,
    )

    def timestamp_wait_seconds(self: Any, env: Any) -> int:
        self.string.eval(env=env)
        raw: str = env.stack.pop()
        moment = self._from_timestamp_string(timestamp=raw)
        if moment is None:
            raise FailureEventException(self._create_failure_event(env, raw))
        # moto parses the timestamp as naive UTC; compare it with virtual UTC "now". The moment
        # itself is what the wait waits for: the clock may move before the wait begins.
        until = moment.replace(tzinfo=UTC)
        _absolute.until = until
        return int((until - clock.now()).total_seconds())

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        activity.mark()
        until, _absolute.until = getattr(_absolute, "until", None), None
        target = until or clock.now() + timedelta(seconds=wait_seconds)
        if target <= clock.now():
            return
        clock.sleep_until(target, cancelled=lambda: not env.is_running())
        activity.mark()

    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_start = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, *args: Any, **kwargs: Any) -> Any:
        activity.started()
        return original_start(self, *args, **kwargs)

    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    original_eval_body = CommonStateField._eval_body

    def eval_body(self: Any, env: Any) -> None:
        # Every state entered and left counts as activity, so settle() does not take the gap
        # between two states of a busy (slow, loaded) machine for quiet.
        activity.mark()
        try:
            original_eval_body(self, env)
        finally:
            activity.mark()

    if not getattr(StepFunctionsParserBackend, "_careloop_hooked", False):
        _count_parsing_as_busy()
        CommonStateField._eval_body = eval_body  # type: ignore[method-assign]
        StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]
        StepFunctionsParserBackend._careloop_hooked = True  # type: ignore[attr-defined]
    timestamp.Timestamp._get_wait_seconds = timestamp_wait_seconds  # type: ignore[method-assign]
    wait_function.WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]
    retrier_decl.time = _NoSleep()  # type: ignore[attr-defined,assignment]
