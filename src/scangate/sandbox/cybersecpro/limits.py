"""CyberSec Pro rate limits: the plan's request budget and the scan-start limits.

Facts from `providers/cybersecpro.md` (cited as [FS]) "Rate limits" and "Create".

Every limit is "per minute". For tests and benchmarks of many jobs on one account, the
emulator's minute may be shortened (option `minute`, in seconds): each limit keeps its count
per minute, so the ratios stay those of the plan; only time runs faster.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime

from scangate.sandbox.clock import Clock
from scangate.sandbox.cybersecpro.auth import Plan

WINDOW = 60.0
STARTS_PER_MINUTE = 5
"""[FS "Create"]: more than 5 starts per 60 s per user answer 429."""


class PlanLimiter:
    """The documented per-plan budget [S0]: a one-minute window and a burst.

    The header semantics are INFERRED [FS "Rate limits"]: `X-RateLimit-Limit` is the plan's
    per-minute quota, `-Remaining` what is left in the current window, `-Reset` the Unix time it
    resets. The window is fixed and starts with its first request. INFERRED as well: the burst
    is a token bucket of that size refilled at the per-minute rate, so a whole minute's budget
    cannot be spent in one second.
    """

    def __init__(self, plan: Plan, clock: Clock, *, window: float = WINDOW) -> None:
        """Create a new `PlanLimiter` for `plan` on `clock`; `window` is its minute, in seconds."""
        self.plan = plan
        self.clock = clock
        self.window = window
        self._window_start: float | None = None
        self._reset_at = 0.0
        self._used = 0
        self._tokens = float(plan.burst)
        self._filled_at = clock.monotonic()

    def admit(self) -> float | None:
        """Count one request; None when admitted, else the seconds to wait (nothing counted)."""
        now = self.clock.monotonic()
        self._roll(now)
        rate = self.plan.per_minute / self.window
        self._tokens = min(self.plan.burst, self._tokens + (now - self._filled_at) * rate)
        self._filled_at = now
        assert self._window_start is not None
        if self._used >= self.plan.per_minute:
            return self._window_start + self.window - now
        if self._tokens < 1:
            return (1 - self._tokens) / rate
        self._used += 1
        self._tokens -= 1
        return None

    def _roll(self, now: float) -> None:
        if self._window_start is None or now - self._window_start >= self.window:
            self._window_start, self._used = now, 0
            self._reset_at = self.clock.time() + self.window

    def headers(self) -> dict[str, str]:
        """`X-RateLimit-*` for the current window (before any request: a fresh one)."""
        now = self.clock.monotonic()
        fresh = self._window_start is None or now - self._window_start >= self.window
        remaining = self.plan.per_minute if fresh else self.plan.per_minute - self._used
        reset = self.clock.time() + self.window if fresh else self._reset_at
        return {
            "X-RateLimit-Limit": str(self.plan.per_minute),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(math.ceil(reset)),
        }


class StartLimits:
    """Limits on creating scans [FS "Create"]: 5 a minute per user, and the trial's 3 a day."""

    def __init__(
        self, plan: Plan, clock: Clock, *, window: float = WINDOW, daily: int | None = None
    ) -> None:
        """Create new `StartLimits` for `plan` on `clock`.

        `window` is the minute of the starts-a-minute limit, in seconds; `daily`, when given,
        replaces the plan's daily scan limit.
        """
        self.plan = plan
        self.clock = clock
        self.window = window
        self.daily = plan.daily_scans if daily is None else daily
        self._recent: deque[float] = deque()
        self._days: dict[str, int] = {}

    def in_window(self) -> int:
        """Starts counted in the current minute (the per-minute limit is 5)."""
        now = self.clock.monotonic()
        return sum(1 for when in self._recent if when > now - self.window)

    def refusal(self) -> str | None:
        """The error of a start refused now, or None (and the start is counted)."""
        now = self.clock.monotonic()
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()
        if len(self._recent) >= STARTS_PER_MINUTE:
            return "Too many scan requests"
        day = datetime.fromtimestamp(self.clock.time(), UTC).date().isoformat()
        limit = self.daily
        if limit is not None and self._days.get(day, 0) >= limit:
            return "Daily scan limit reached"
        self._recent.append(now)
        self._days[day] = self._days.get(day, 0) + 1
        return None
