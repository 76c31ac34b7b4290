"""What a warm container may keep for a short while: a tenant's settings and wording, read by
the many journeys of a busy hospital within the same minute. Never consent, opt-outs, whether a
patient may be contacted, or the records a step decides on: those are read fresh every time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from chalicelib import clock

# How long a tenant's settings (quiet hours, sender, clinic name, journey offsets, its own
# message wording) are trusted once read: a change reaches running journeys within this.
TENANT_SETTINGS_FOR = timedelta(seconds=60)

Value = TypeVar("Value")


class BriefCache(Generic[Value]):
    """Values kept for `keep_for` (on the virtual clock locally), by key; None is not kept."""

    def __init__(self, keep_for: timedelta) -> None:
        self._keep_for = keep_for
        self._kept: dict[str, tuple[datetime, Value]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Value | None]) -> Value | None:
        now = clock.now()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept[0] <= now < kept[0] + self._keep_for:
            return kept[1]
        loaded = load()
        if loaded is not None:
            with self._lock:
                self._kept[key] = (now, loaded)
        return loaded
