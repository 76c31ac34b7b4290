"""A virtual clock shared by the application (`chalicelib.clock`) and the Step Functions
emulator's Wait states, so a journey of weeks plays out in seconds.

The clock either flows with real time from a chosen start (for `make run`) or stands still until
moved (for tests). A move plays out every timer due on the way, in time order.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from chalicelib.domain.common import LATEST_YEAR
from local.activity import activity

_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Past the last year the domain accepts, every date the app computes would be refused.
LATEST = datetime(LATEST_YEAR, 12, 31, 23, 59, 59, tzinfo=UTC)
TOO_LATE = f"the clock cannot move past {LATEST_YEAR}"


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d', '3w', or several joined by spaces or '+': '1d 2h'."""
    total = timedelta()
    parts = [p for p in re.split(r"[\s+]+", text.strip()) if p]
    if not parts:
        raise ValueError(f"not a duration: {text!r}")
    for part in parts:
        match = _DURATION.match(part)
        if not match:
            raise ValueError(f"not a duration: {part!r} (use e.g. 90s, 15m, 2h, 1d, 3w)")
        try:
            total += timedelta(**{_UNITS[match["unit"]]: int(match["n"])})
        except OverflowError as exc:  # beyond what a timedelta holds (~2.7 million years)
            raise ValueError(TOO_LATE) from exc
    return total


class VirtualClock:
    """Time for the app and the emulator. Moving it forward (`advance`, `set`) behaves like time
    passing: every timer due on the way (Wait states, schedules, campaign pacing) fires in time
    order with "now" at its moment, each only once the work before it is quiet
    (local/activity.py), and the move returns when everything is quiet at the target."""

    def __init__(self, start: datetime | None = None, *, flowing: bool = False) -> None:
        self._base = (start or datetime.now(UTC)).astimezone(UTC)
        self._real_base = time.monotonic()
        self._flowing = flowing
        self._paused = False  # a flowing clock stands still while a move plays out
        self._lock = activity.lock
        self._moving = threading.Lock()  # one move at a time

    def now(self) -> datetime:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> datetime:
        if not self._flowing or self._paused:
            return self._base
        return self._base + timedelta(seconds=time.monotonic() - self._real_base)

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta():
            raise ValueError("the clock only moves forward")
        with self._lock:
            if delta > LATEST - self._now_locked():
                raise ValueError(TOO_LATE)
            target = self._now_locked() + delta
        return self._move_to(target)

    def set(self, moment: datetime) -> datetime:
        target = moment.astimezone(UTC)
        with self._lock:
            if target < self._now_locked():
                raise ValueError("the clock only moves forward")
            if target > LATEST:
                raise ValueError(TOO_LATE)
        return self._move_to(target)

    def rewind(self, moment: datetime) -> None:
        """Back to `moment`, for a fresh runtime only (`Runtime.reset`): nothing may be waiting
        on the clock, since a timer set for a later moment would then be early."""
        with self._moving, self._lock:
            if activity.pending_timers(owner=self):
                raise RuntimeError("the clock cannot go back while timers are pending")
            self._base = moment.astimezone(UTC)
            self._real_base = time.monotonic()

    def _move_to(self, target: datetime) -> datetime:
        with self._moving, self._lock:
            self._pause()
            try:
                while True:
                    activity.wait_quiet_locked()
                    timer = activity.next_timer()
                    if timer is None or timer.moment > target:
                        break
                    self._base = max(self._base, timer.moment)
                    activity.fire_due(self._base)
                self._base = max(self._base, target)
                return self._base
            finally:
                self._resume()

    def _pause(self) -> None:
        if self._flowing:
            self._base = self._now_locked()
            self._paused = True

    def _resume(self) -> None:
        if self._flowing:
            self._real_base = time.monotonic()
            self._paused = False

    def sleep_until(self, moment: datetime, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Block until virtual time reaches `moment` (a timer the clock fires in its turn).
        Returns False if cancelled first: a stopped execution's sleepers are woken at once
        (`activity.wake_cancelled`); a flowing clock also looks a few times a second."""
        with self._lock:
            if moment <= self._now_locked():
                return True
            if cancelled():
                return False
            timer = activity.add_timer(moment, cancelled, owner=self)
            try:
                while not timer.fired:
                    flowing = self._flowing and not self._paused
                    if (flowing and moment <= self._now_locked()) or cancelled():
                        break
                    remaining = (moment - self._now_locked()).total_seconds()
                    # Looks again now and then: a flowing clock reaches moments by itself, and a
                    # cancellation (a stopped execution) is also woken by its stop.
                    timer.wakeup.wait(timeout=min(remaining, 0.2) if flowing else 0.5)
            finally:
                activity.fire(timer)  # counted again, whatever woke it
            return moment <= self._now_locked() or not cancelled()
