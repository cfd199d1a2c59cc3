"""The one rate-budget engine: what a provider says about its budget, and what we sent of it.

`RateLimitState` keeps what the answers said (`X-RateLimit-*`, `Retry-After`); `rate_wait` turns a
"not processed" answer into a wait; `RequestWindow` counts the requests sent in a sliding window.
The HTTP client (`scangate.http`), the poll schedule (`scangate.polling`) and CyberSec Pro's plan
pacer all read their budgets through these, so a header is read one way everywhere.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 86_400.0
"""The longest `Retry-After` hold honoured, in seconds."""
RESET_MARGIN = 1.0
"""Seconds added to `X-RateLimit-Reset`: our clock and the provider's may disagree a little."""
_EPOCH_FLOOR = 1_000_000_000
"""An `X-RateLimit-Reset` above this is a Unix time; below, seconds from now."""


def not_processed(status: int, headers: Mapping[str, str]) -> bool:
    """True for a 429, or a 503 with `Retry-After`: the server did nothing and says so.

    RFC 6585 §4 (429) and RFC 9110 §15.6.4 (503 with `Retry-After`): the request may be sent
    again once the wait is over, a scan start included.
    """
    return status == 429 or (status == 503 and "Retry-After" in headers)


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    """An integer header (`X-RateLimit-Remaining: 7`, `7.0` too); None when absent or unusable."""
    try:
        value = float(headers[name])
    except (KeyError, ValueError):
        return None
    return int(value) if math.isfinite(value) else None  # `1e309` is inf: no number


def parse_retry_after(value: str, now: float) -> float | None:
    """Return the epoch time a `Retry-After` header (seconds or HTTP date) points at.

    A hold longer than `MAX_RETRY_AFTER` is cut to it: `time.sleep` refuses more than about
    292 years (OverflowError), and no provider asks for more than a day.
    """
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return now + min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        return min(parsedate_to_datetime(value).timestamp(), now + MAX_RETRY_AFTER)
    except (TypeError, ValueError, OverflowError):
        return None


def _reset_time(reset: int, now: float) -> float:
    """`X-RateLimit-Reset` as an epoch time: a small value is "seconds from now"."""
    return float(reset) if reset > _EPOCH_FLOOR else now + reset


def header_wait(headers: Mapping[str, str], now: float) -> tuple[float, str] | None:
    """The wait `Retry-After` or `X-RateLimit-Reset` asks for (see `rate_wait`), or None."""
    if "Retry-After" in headers:
        until = parse_retry_after(headers["Retry-After"], now)
        if until is not None:
            return max(0.0, until - now), "Retry-After"
    remaining = header_int(headers, "X-RateLimit-Remaining")
    reset = header_int(headers, "X-RateLimit-Reset")
    if reset is not None and (remaining is None or remaining <= 0):
        at = _reset_time(reset, now)
        if at > now:  # a reset already past is stale: the backoff applies
            return min(at - now + RESET_MARGIN, MAX_RETRY_AFTER), "X-RateLimit-Reset"
    return None


def rate_wait(
    headers: Mapping[str, str],
    *,
    now: float,
    attempt: int,
    base: float,
    cap: float,
    rng: random.Random,
) -> tuple[float, str]:
    """Seconds to wait before sending a "not processed" request again, and why.

    In this order: `Retry-After`; else `X-RateLimit-Reset` when `X-RateLimit-Remaining` is 0 or
    absent (with requests left, the refusal is not about the window); else exponential backoff
    with full jitter, uniform in [0, min(`cap`, `base` x 2^`attempt`)] (AWS Architecture Blog,
    "Exponential Backoff And Jitter"), so that jobs refused together do not come back together.
    """
    fixed = header_wait(headers, now)
    if fixed is not None:
        return fixed
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 0), 62))
    return rng.uniform(0.0, max(ceiling, 0.0)), "backoff"


@dataclass
class RateStats:
    """What rate limits cost one client: answers refused, requests resent, seconds waited."""

    limited: int = 0
    """429 answers received (urllib3's retries included)."""
    resent: int = 0
    """Requests sent again after a "not processed" answer."""
    waited: float = 0.0
    """Seconds slept out waiting for a rate limit (`Retry-After`, reset, backoff)."""


@dataclass
class RateLimitState:
    """What the provider last said about its request budget (`X-RateLimit-*`, `Retry-After`)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    """Wall-clock epoch seconds when the window resets."""
    hold_until: float = 0.0
    """Wall-clock epoch seconds before which no request may be sent (`Retry-After`)."""

    def note(self, headers: Mapping[str, str], now: float) -> None:
        """Take in what one answer's headers say about the budget."""
        limit = header_int(headers, "X-RateLimit-Limit")
        remaining = header_int(headers, "X-RateLimit-Remaining")
        reset = header_int(headers, "X-RateLimit-Reset")
        if limit is not None:
            self.limit = limit
        if remaining is not None:
            self.remaining = remaining
        if reset is not None:
            self.reset_at = reset if reset > _EPOCH_FLOOR else now + reset
        if "Retry-After" in headers:
            until = parse_retry_after(headers["Retry-After"], now)
            if until is not None:
                self.hold_until = max(self.hold_until, until)

    def held_for(self, now: float) -> float:
        """Seconds `Retry-After` still forbids sending (0 or less: nothing held)."""
        return self.hold_until - now

    def until_reset(self, now: float) -> float:
        """Seconds until the window resets, with `RESET_MARGIN`; needs a known `reset_at`."""
        assert self.reset_at is not None
        return self.reset_at + RESET_MARGIN - now

    def below(self, count: int) -> bool:
        """True when the provider said fewer than `count` requests are left."""
        return self.remaining is not None and self.remaining < count


class RequestWindow:
    """The times of the requests sent within the last `span` seconds (a sliding window)."""

    def __init__(self, span: float) -> None:
        """Create an empty window `span` seconds wide."""
        self.span = span
        self._sent: deque[float] = deque()

    def __len__(self) -> int:
        """Requests in the window (as of the last `expire`)."""
        return len(self._sent)

    def add(self, now: float, count: int = 1) -> None:
        """Count `count` requests sent at `now`."""
        self._sent.extend([now] * max(count, 0))

    def expire(self, now: float) -> None:
        """Forget the requests that have left the window by `now`."""
        while self._sent and self._sent[0] <= now - self.span:
            self._sent.popleft()

    def give_back(self, count: int) -> None:
        """Forget the `count` newest requests (refused ones, which cost nothing)."""
        for _ in range(min(count, len(self._sent))):
            self._sent.pop()

    def wait_for_room(self, keep: int, now: float) -> float:
        """Seconds until at most `keep` requests are left in the window (0 when already so).

        A negative `keep` waits for the whole window to empty.
        """
        leave = min(len(self._sent) - keep, len(self._sent))
        if leave <= 0:
            return 0.0
        return self._sent[leave - 1] + self.span - now

    def spread(self, left: int, now: float) -> float:
        """The delay that spreads `left` more requests until the oldest one leaves the window."""
        return (self._sent[0] + self.span - now) / left
