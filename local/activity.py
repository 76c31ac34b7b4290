"""Knows when the emulator's journeys have gone quiet: every in-process Lambda call and every
Wait marks activity. `settle()` returns once nothing has run for a short while, which is when a
test (or a demo) can look at the outbox or move the clock again."""

from __future__ import annotations

import threading
import time


class Activity:
    # A just-started execution shows no activity until its first state runs: give it this long.
    START_GRACE_SECONDS = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events = 0
        self._busy = 0
        self._last_start = 0.0

    def started(self) -> None:
        with self._lock:
            self._events += 1
            self._last_start = time.monotonic()

    def begin(self) -> None:
        with self._lock:
            self._events += 1
            self._busy += 1

    def end(self) -> None:
        with self._lock:
            self._events += 1
            self._busy -= 1

    def mark(self) -> None:
        with self._lock:
            self._events += 1

    def settle(self, quiet_seconds: float = 0.3, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while True:
            with self._lock:
                events, busy, last_start = self._events, self._busy, self._last_start
            now = time.monotonic()
            if events != seen or busy:
                seen, since = events, now
            elif now - since >= quiet_seconds and now - last_start >= self.START_GRACE_SECONDS:
                return
            if now > deadline:
                raise TimeoutError("journeys did not settle")
            time.sleep(0.02)


activity = Activity()
