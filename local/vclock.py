"""A virtual clock shared by the application (`chalicelib.clock`) and the Step Functions
emulator's Wait states, so a journey of weeks plays out in seconds.

The clock either flows with real time from a chosen start (for `make run`) or stands still until
advanced (for tests). `advance` wakes every Wait whose moment has come.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from chalicelib.domain.common import LATEST_YEAR

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
    def __init__(self, start: datetime | None = None, *, flowing: bool = False) -> None:
        self._base = (start or datetime.now(UTC)).astimezone(UTC)
        self._real_base = time.monotonic()
        self._flowing = flowing
        self._changed = threading.Condition()

    def now(self) -> datetime:
        with self._changed:
            return self._now_locked()

    def _now_locked(self) -> datetime:
        if not self._flowing:
            return self._base
        return self._base + timedelta(seconds=time.monotonic() - self._real_base)

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta():
            raise ValueError("the clock only moves forward")
        with self._changed:
            if delta > LATEST - self._now_locked():
                raise ValueError(TOO_LATE)
            self._base += delta
            self._changed.notify_all()
            return self._now_locked()

    def set(self, moment: datetime) -> datetime:
        with self._changed:
            target = moment.astimezone(UTC)
            current = self._now_locked()
            if target < current:
                raise ValueError("the clock only moves forward")
            if target > LATEST:
                raise ValueError(TOO_LATE)
            self._base += target - current
            self._changed.notify_all()
            return self._now_locked()

    def sleep_until(self, moment: datetime, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Block until virtual time reaches `moment`. Returns False if cancelled first.

        Polls `cancelled` a few times a second so a stopped execution ends promptly.
        """
        with self._changed:
            while True:
                remaining = (moment - self._now_locked()).total_seconds()
                if remaining <= 0:
                    return True
                if cancelled():
                    return False
                self._changed.wait(timeout=min(remaining, 0.2) if self._flowing else 0.2)
