"""The code's notion of "now".

On AWS this is the system clock. The local runtime installs a virtual clock here (and in the Step
Functions emulator's Wait states) so that weeks of a journey play out in seconds. Domain rules never
call this: services pass `now` in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from chalicelib.domain.common import utc_iso


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


_current: Clock = SystemClock()


def now() -> datetime:
    return _current.now()


def use_clock(clock: Clock) -> None:
    global _current  # noqa: PLW0603 - one process-wide clock is the point
    _current = clock


iso = utc_iso
