"""Exact bookkeeping of the emulator's work, so the virtual clock knows when everything is quiet
without waiting for a stretch of wall-clock silence.

A *flow* is a thread doing journey work: an execution's threads (moto's interpreter runs each
execution, each Parallel branch, each Map iteration and each timed Task on threads of its own),
an SNS delivery to a handler, the schedules. `busy` counts the flows that can run. A flow stops
counting while it is blocked: on a timer of the virtual clock, on an event (a task token, a
branch's end) or joining another thread. Whoever unblocks it counts it again *before* letting it
go, under the same lock, so `busy` never reads 0 while work is about to continue. The
interpreter's modules are given `FlowThread` and `FlowEvent` in place of `threading`'s (see
`local/sfn_hooks.py`).

Quiet means busy == 0: every flow is waiting for a timer, a token or nothing at all. The clock
(local/vclock.py) fires timers only when quiet, earliest first, with "now" at each timer's moment.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any

# A quiet that never comes is a bug (a flow blocked on something this module does not see):
# fail loudly after this long without any change in what can run.
STALL_SECONDS = 120.0


class Blocked:
    """One flow's blocked spell; released (counted again) exactly once."""

    __slots__ = ("released",)

    def __init__(self) -> None:
        self.released = False


@dataclass(order=True)
class Timer:
    moment: datetime
    order: int
    cancelled: Callable[[], bool] = field(compare=False)
    blocked: Blocked | None = field(compare=False)
    wakeup: threading.Condition = field(compare=False)  # on the activity's lock
    fired: bool = field(default=False, compare=False)
    owner: object = field(default=None, compare=False)  # the clock it was set on


class Activity:
    def __init__(self) -> None:
        self._mutex = threading.RLock()
        self.lock = threading.Condition(self._mutex)  # notified when nothing can run
        self._busy = 0
        self._changes = 0  # every change of _busy: progress, for the stall check
        self._timers: list[Timer] = []  # a heap of pending timers, earliest first
        self._order = itertools.count()
        self._local = threading.local()

    # -- flows -------------------------------------------------------------------------------

    def in_flow(self) -> bool:
        return bool(getattr(self._local, "flow", False))

    def enter_flow(self) -> None:
        self._local.flow = True

    def begin(self) -> None:
        """Work that is about to run (counted before its thread starts)."""
        with self.lock:
            self._count(+1)

    def end(self) -> None:
        with self.lock:
            self._count(-1)

    def _count(self, delta: int) -> None:
        self._busy += delta
        self._changes += 1
        if self._busy < 0:
            raise RuntimeError("activity bookkeeping went below zero")
        if self._busy == 0:
            self.lock.notify_all()

    # -- blocking ----------------------------------------------------------------------------

    def block_on(self, waiting: list[Blocked], ready: Callable[[], bool]) -> Blocked | None:
        """As `block`, and listed in `waiting` for whoever frees the flow (in one step, so that
        a release between the check and the listing cannot be missed)."""
        if not self.in_flow():
            return None
        with self.lock:
            if ready():
                return None
            self._count(-1)
            blocked = Blocked()
            waiting.append(blocked)
            return blocked

    def release(self, blocked: Blocked | None) -> None:
        """Counts a blocked flow again, once (by whoever frees it, or by itself on a timeout)."""
        if blocked is None:
            return
        with self.lock:
            self.release_locked(blocked)

    def end_locked(self) -> None:
        self._count(-1)

    def release_locked(self, blocked: Blocked | None) -> None:
        if blocked is not None and not blocked.released:
            blocked.released = True
            self._count(+1)

    # -- timers of the virtual clock -----------------------------------------------------------

    def add_timer(
        self, moment: datetime, cancelled: Callable[[], bool], owner: object = None
    ) -> Timer:
        """Called with the lock held, by a thread about to sleep until `moment` on `owner`."""
        blocked = None
        if self.in_flow():
            self._count(-1)
            blocked = Blocked()
        timer = Timer(
            moment,
            next(self._order),
            cancelled,
            blocked,
            threading.Condition(self._mutex),
            owner=owner,
        )
        heapq.heappush(self._timers, timer)
        return timer

    def fire(self, timer: Timer) -> None:
        """With the lock held: the timer's sleeper may go on (counted now, before it wakes)."""
        if not timer.fired:
            timer.fired = True
            self.release_locked(timer.blocked)
            timer.wakeup.notify_all()

    def next_timer(self) -> Timer | None:
        """With the lock held: the earliest timer still pending."""
        while self._timers and self._timers[0].fired:
            heapq.heappop(self._timers)
        return self._timers[0] if self._timers else None

    def pending_timers(self, owner: object = None) -> int:
        """Timers not fired yet (of one clock's, when `owner` is given: a test's own clock
        shares the process with the runtime's)."""
        with self.lock:
            return sum(
                1
                for timer in self._timers
                if not timer.fired and (owner is None or timer.owner is owner)
            )

    def fire_due(self, moment: datetime) -> int:
        """With the lock held: fires every timer due at or before `moment`."""
        fired = 0
        while (timer := self.next_timer()) is not None and timer.moment <= moment:
            heapq.heappop(self._timers)
            self.fire(timer)
            fired += 1
        return fired

    def wake_cancelled(self) -> None:
        """A stopped execution's sleepers go on at once (to end)."""
        with self.lock:
            for timer in list(self._timers):
                if not timer.fired and timer.cancelled():
                    self.fire(timer)

    # -- quiet ---------------------------------------------------------------------------------

    def wait_quiet_locked(self, stall_seconds: float = STALL_SECONDS) -> None:
        """With the lock held: returns once nothing can run."""
        changes, since = self._changes, time.monotonic()
        while self._busy:
            self.lock.wait(timeout=1.0)
            if self._changes != changes:
                changes, since = self._changes, time.monotonic()
            elif time.monotonic() - since > stall_seconds:
                raise TimeoutError(f"journeys did not settle: {self._busy} flows still running")

    def settle(self, stall_seconds: float = STALL_SECONDS) -> None:
        with self.lock:
            self.wait_quiet_locked(stall_seconds)

    @property
    def busy(self) -> int:
        with self.lock:
            return self._busy


activity = Activity()


class FlowThread(threading.Thread):
    """A thread of journey work: counted from `start()` until its target returns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flow_done = False
        self._joiners: list[Blocked] = []

    def start(self) -> None:
        activity.begin()
        try:
            super().start()
        except BaseException:
            activity.end()
            raise

    def run(self) -> None:
        activity.enter_flow()
        try:
            super().run()
        finally:
            with activity.lock:
                self._flow_done = True
                for joiner in self._joiners:
                    activity.release_locked(joiner)
                activity.end_locked()

    def join(self, timeout: float | None = None) -> None:
        blocked = activity.block_on(self._joiners, lambda: self._flow_done)
        try:
            super().join(timeout)
        finally:
            activity.release(blocked)


class FlowEvent(threading.Event):
    """An event whose `set()` counts the flows waiting on it again before waking them."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: list[Blocked] = []

    def set(self) -> None:
        with activity.lock:
            for waiter in self._waiting:
                activity.release_locked(waiter)
            self._waiting.clear()
            super().set()

    def wait(self, timeout: float | None = None) -> bool:
        blocked = activity.block_on(self._waiting, self.is_set)
        try:
            return super().wait(timeout)
        finally:
            activity.release(blocked)


class _FlowThreading(ModuleType):
    """`threading` as the interpreter's modules see it: flows instead of plain threads."""

    Thread = FlowThread
    Event = FlowEvent

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)


flow_threading = _FlowThreading("threading")
