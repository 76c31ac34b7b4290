"""Runs the app's `@app.schedule` handlers on the virtual clock, as EventBridge runs them on
AWS: `make run` starts this so a clock moved a day ahead also runs that day's sweep. Daily cron
expressions (minutes and hours fixed, every day) and rates are what the app uses and what is
supported; after a jump of the clock a schedule fires once, not once per interval missed. The
tests call the handlers themselves instead, with a recorded event."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, time, timedelta
from typing import Any

from local.lambdas import LambdaContext
from local.vclock import VirtualClock


def _daily_time(expression: Any) -> time:
    fields = vars(expression)
    if any(fields[name] not in ("*", "?") for name in ("day_of_month", "month", "day_of_week")):
        raise ValueError(f"only daily schedules run locally: {expression.to_string()}")
    return time(int(fields["hours"]), int(fields["minutes"]))


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


def _next_fire(expression: Any) -> Any:
    """When a schedule fires next after a moment: a daily cron at its time of day, a rate
    every interval."""
    from chalice.app import Rate

    if isinstance(expression, Rate):
        unit = {Rate.MINUTES: "minutes", Rate.HOURS: "hours", Rate.DAYS: "days"}[expression.unit]
        interval = timedelta(**{unit: expression.value})
        return lambda after: after + interval
    at = _daily_time(expression)

    def daily(after: datetime) -> datetime:
        today = datetime.combine(after.date(), at, tzinfo=after.tzinfo)
        return today if today > after else today + timedelta(days=1)

    return daily


def start(app_module: Any, clock: VirtualClock) -> threading.Thread | None:
    """Fire each schedule on the virtual clock: a daily one once per virtual day when its time
    of day has passed, a rate one at every interval."""
    jobs = []
    for source in app_module.app.event_sources:
        expression = getattr(source, "schedule_expression", None)
        if expression is not None:
            handler = getattr(app_module, source.handler_string.split(".")[1])
            jobs.append((handler, _next_fire(expression), source.name))

    def run() -> None:
        due = {name: next_fire(clock.now()) for _, next_fire, name in jobs}
        while True:
            clock.sleep_until(min(due.values()))
            now = clock.now()
            for handler, next_fire, name in jobs:
                if now >= due[name]:
                    context = LambdaContext(function_name=name, invoked_function_arn="")
                    try:
                        handler(_event(now), context)
                    except Exception:  # a failed run is logged; tomorrow's runs as usual
                        logging.getLogger(__name__).exception("scheduled %s failed", name)
                    due[name] = next_fire(now)

    if not jobs:
        return None
    thread = threading.Thread(target=run, name="schedules", daemon=True)
    thread.start()
    return thread
