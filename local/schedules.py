"""Runs the app's `@app.schedule` handlers on the virtual clock, as EventBridge runs them on
AWS: `make run` starts this so a clock moved a day ahead also runs that day's sweep. Daily cron
expressions (minutes and hours fixed, every day) and rates (`Rate(15, unit=Rate.MINUTES)`) are
what the app uses and what is supported; the tests call the handlers themselves instead, with a
recorded event, through `run_scheduled` when they want Lambda's retries.

EventBridge invokes a schedule's function asynchronously, so a run that raises is retried as
Lambda retries it and, still failing, becomes a dead letter (local/dead_letters.py); the next
run comes at its usual time."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from local.activity import FlowThread
from local.dead_letters import DeadLetter, invoke_async
from local.lambdas import LambdaContext
from local.vclock import VirtualClock

RATE_UNITS = {"MINUTES": timedelta(minutes=1), "HOURS": timedelta(hours=1), "DAYS": timedelta(1)}


def _daily_time(expression: Any) -> time:
    fields = vars(expression)
    if any(fields[name] not in ("*", "?") for name in ("day_of_month", "month", "day_of_week")):
        raise ValueError(f"only daily schedules run locally: {expression.to_string()}")
    return time(int(fields["hours"]), int(fields["minutes"]))


def next_fire(expression: Any) -> Callable[[datetime], datetime]:
    """When the schedule fires next, strictly after a moment."""
    fields = vars(expression)
    if "unit" in fields:  # a Rate
        interval = int(fields["value"]) * RATE_UNITS[str(fields["unit"])]
        return lambda after: after + interval
    at = _daily_time(expression)

    def daily(after: datetime) -> datetime:
        today = datetime.combine(after.date(), at, tzinfo=after.tzinfo)
        return today if today > after else today + timedelta(days=1)

    return daily


def _event(moment: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "region": "us-east-1",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [],
        "detail": {},
    }


def run_scheduled(handler: Any, name: str, moment: datetime) -> DeadLetter | None:
    """One run of a schedule at `moment`, as EventBridge invokes it; the dead letter if every
    attempt failed."""
    context = LambdaContext(function_name=name, invoked_function_arn="")
    return invoke_async(handler, _event(moment), context, event_kind="schedule", function=name)


class ScheduleRunner:
    """Fires each of the app's schedules when its moment on the virtual clock has come, until
    stopped."""

    def __init__(
        self, app_module: Any, clock: VirtualClock, only: tuple[str, ...] | None = None
    ) -> None:
        self._clock = clock
        self._stopped = threading.Event()
        self.runs: list[tuple[str, datetime]] = []  # (schedule, moment), in the order run
        self._jobs: list[tuple[Any, Callable[[datetime], datetime], str]] = []
        for source in app_module.app.event_sources:
            expression = getattr(source, "schedule_expression", None)
            if expression is not None and (only is None or source.name in only):
                handler = getattr(app_module, source.handler_string.split(".")[1])
                self._jobs.append((handler, next_fire(expression), source.name))
        self._thread = FlowThread(target=self._run, name="schedules", daemon=True)

    def _run(self) -> None:
        clock = self._clock
        due = {name: following(clock.now()) for _, following, name in self._jobs}
        while clock.sleep_until(min(due.values()), cancelled=self._stopped.is_set):
            now = clock.now()
            for handler, following, name in self._jobs:
                if now >= due[name]:
                    self.runs.append((name, now))
                    run_scheduled(handler, name, now)
                    due[name] = following(now)

    def start(self) -> ScheduleRunner:
        if self._jobs:
            self._thread.start()
        return self

    def stop(self) -> None:
        from local.activity import activity

        self._stopped.set()
        activity.wake_cancelled()
        if self._thread.is_alive():
            self._thread.join()


def start(app_module: Any, clock: VirtualClock) -> ScheduleRunner:
    """The app's schedules, running on the virtual clock."""
    return ScheduleRunner(app_module, clock).start()
