"""Hooks that make moto's Step Functions interpreter read the virtual clock, and count its threads
as journey work (local/activity.py) so the clock knows exactly when it is quiet.

Wait states (Seconds, SecondsPath, Timestamp, TimestampPath) wait in virtual time and end at once
when their execution is stopped. Retry back-off does not sleep at all: it is seconds of real time
that would only slow tests and demos down.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, timedelta
from typing import Any

from local.activity import FlowEvent, FlowThread, activity, flow_threading
from local.vclock import VirtualClock

logger = logging.getLogger(__name__)

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


# The interpreter's modules whose threads and events are journey work (local/activity.py).
_THREADING_MODULES = (
    "asl.component.program.program",
    "asl.component.state.exec.execute_state",
    "asl.component.state.exec.state_map.iteration.inline_iteration_component",
    "asl.component.state.exec.state_map.iteration.job",
    "asl.component.state.exec.state_parallel.branch_worker",
    "asl.component.state.exec.state_parallel.branches_decl",
    "asl.component.state.exec.state_task.service.state_task_service_callback",
)


def _count_the_interpreters_threads() -> None:
    import importlib

    root = "moto.stepfunctions.parser."
    for name in _THREADING_MODULES:
        importlib.import_module(root + name).threading = flow_threading  # type: ignore[attr-defined]
    execute_state = importlib.import_module(root + "asl.component.state.exec.execute_state")
    execute_state.Thread = FlowThread  # type: ignore[attr-defined]
    worker = importlib.import_module(root + "backend.execution_worker")
    worker.Thread = FlowThread  # type: ignore[attr-defined]
    callback = importlib.import_module(root + "asl.eval.callback.callback")
    callback.Event = FlowEvent  # type: ignore[attr-defined]

    from moto.stepfunctions.parser.asl.eval.environment import Environment

    original_set_stop = Environment.set_stop

    def set_stop(self: Any, *args: Any, **kwargs: Any) -> None:
        original_set_stop(self, *args, **kwargs)
        activity.wake_cancelled()  # its Waits end now, not at their moment

    Environment.set_stop = set_stop  # type: ignore[method-assign]


def _log_task_failures_outside_functions() -> None:
    """A Lambda task that failed before its function answered (the invoke itself failed) is
    retried at once here (no back-off) and would exhaust its retries unexplained: say why, in
    the log a failing test prints."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_lambda as service,
    )

    original = service.StateTaskServiceLambda._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, lambda_eval_utils.LambdaFunctionErrorException):
            logger.warning("a Lambda task failed outside its function: %r", ex, exc_info=ex)
        return original(self, env, ex)

    service.StateTaskServiceLambda._from_error = from_error  # type: ignore[method-assign]


def _parse_each_definition_once() -> None:
    """moto parses a machine's ASL (ANTLR: about 0.25 s) for every execution. The parsed program
    keeps no state of its own (an execution's state lives in its Environment), so one parse of
    each definition serves every execution of it."""
    import functools

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    parse = functools.lru_cache(maxsize=64)(
        lambda definition: AmazonStateLanguageParser.parse(definition)[0]
    )

    def entrypoint(self: Any) -> Any:
        return parse(self._evaluation_details.state_machine_details.definition)

    ExecutionWorker._get_evaluation_entrypoint = entrypoint  # type: ignore[method-assign]


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
        until, _absolute.until = getattr(_absolute, "until", None), None
        target = until or clock.now() + timedelta(seconds=wait_seconds)
        clock.sleep_until(target, cancelled=lambda: not env.is_running())

    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if not getattr(StepFunctionsParserBackend, "_careloop_hooked", False):
        _count_the_interpreters_threads()
        _parse_each_definition_once()
        _log_task_failures_outside_functions()
        StepFunctionsParserBackend._careloop_hooked = True  # type: ignore[attr-defined]
    timestamp.Timestamp._get_wait_seconds = timestamp_wait_seconds  # type: ignore[method-assign]
    wait_function.WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]
    retrier_decl.time = _NoSleep()  # type: ignore[attr-defined,assignment]
