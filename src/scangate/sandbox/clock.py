"""Emulator time: a clock protocol, the real clocks, and a fake clock for unit tests."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Time as the emulator sees it: `monotonic()` drives scans, `time()` stamps them."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def time(self) -> float:
        """Wall-clock Unix seconds."""
        ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        """See `Clock.monotonic`."""
        return time.monotonic()

    def time(self) -> float:
        """See `Clock.time`."""
        return time.time()


class FakeClock:
    """A clock that moves only when told to, for unit tests; both readings advance together."""

    def __init__(self, start: float = 1_768_471_200.0) -> None:
        """Create a new `FakeClock` whose wall time starts at `start` (2026-01-15 10:00Z)."""
        self._lock = threading.Lock()
        self._start = start
        self._elapsed = 0.0

    def advance(self, seconds: float) -> None:
        """Move both readings forward by `seconds`."""
        with self._lock:
            self._elapsed += seconds

    def monotonic(self) -> float:
        """See `Clock.monotonic`."""
        with self._lock:
            return 1000.0 + self._elapsed

    def time(self) -> float:
        """See `Clock.time`."""
        with self._lock:
            return self._start + self._elapsed
