"""CyberSec Pro's plan budgets, and the pacer that keeps a run within them.

CyberSec Pro documents 10/30/60/300 requests a minute with bursts of 5/15/30/100 (fact sheet
"Rate limits"); the implementation sends no `X-RateLimit-*` headers, so the budget must be known
in advance (option `plan`). The window and the headers are read through `scangate.ratelimit`,
the engine the HTTP client and the poll schedule use too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from scangate.http import HttpClient
from scangate.ratelimit import RequestWindow

logger = logging.getLogger("scangate.providers.cybersecpro")

WINDOW = 61.0
"""The plan's one-minute window plus a second for clock differences."""
REFILL_MARGIN = 0.9
"""Share of the plan's rate assumed for burst refills, for latency between us and the server."""
SPARE = 1
"""Requests of each budget kept back so that a cancel always gets through."""


@dataclass(frozen=True)
class Plan:
    """One plan's documented request budget (fact sheet "Rate limits", doc [S0])."""

    name: str
    per_minute: int
    burst: int


PLANS = {
    "trial": Plan("trial", 10, 5),
    "starter": Plan("starter", 30, 15),
    "professional": Plan("professional", 60, 30),
    "enterprise": Plan("enterprise", 300, 100),
}


class Pacer:
    """Keeps this run's requests within the plan's per-minute budget and burst.

    INFERRED: the burst is a token bucket of that size refilled at the per-minute rate. Every
    request except a cancel leaves `SPARE` of both budgets unused, and waits (on the client's
    injectable sleep) when it would not.
    """

    def __init__(self, plan: Plan, http: HttpClient, *, assumed: bool = False) -> None:
        """Create a new `Pacer` for `plan`, counting the requests `http` sends.

        An `assumed` plan (the policy names none) yields to any `X-RateLimit-Limit` the server
        sends; a configured one only to a smaller limit.
        """
        self.plan = plan
        self.http = http
        self.assumed = assumed
        self.urgent = False
        """While set, requests are counted but never held back (cancelling on a deadline)."""
        self._sent = RequestWindow(WINDOW)
        self._tokens = float(plan.burst)
        self._filled_at: float | None = None
        self._accounted = http.requests_sent
        self._refused = http.stats.limited

    def acquire(self) -> None:
        """Wait until one more request fits the budget, then count it as sent."""
        self._catch_up()
        wait = 0.0 if self.urgent else self._wait_needed()
        if wait > 0:
            logger.info("CyberSec Pro %s plan budget: waiting %.1f s", self.plan.name, wait)
            self.http.sleep(wait)
        self._take(1)
        self._accounted += 1

    def _catch_up(self) -> None:
        """Count requests sent without `acquire` (re-sends after a 401, malformed-JSON retries)."""
        self._adopt_server_limit()
        extra = self.http.requests_sent - self._accounted
        if extra > 0:
            self._take(extra)
            self._accounted += extra
        # A request answered 429 was not processed, and its `Retry-After` is waited out by the
        # HTTP client already: it gives its share of the budget back (jobs sharing an account
        # get many; counting them twice would stall each job far beyond the plan's own limit).
        refused = self.http.stats.limited - self._refused
        if refused > 0:
            self._refused += refused
            self._tokens = min(float(self.plan.burst), self._tokens + refused)
            self._sent.give_back(refused)

    def _adopt_server_limit(self) -> None:
        # The documented `X-RateLimit-Limit` is the plan's quota (fact sheet "Rate limits",
        # INFERRED): below the configured plan's, the account is on a smaller plan than the
        # policy says; without a configured plan, it tells which one.
        limit = self.http.rate.limit
        if limit is None or limit < 1 or limit == self.plan.per_minute:
            return
        if limit > self.plan.per_minute and not self.assumed:
            return
        match = [plan for plan in PLANS.values() if plan.per_minute == limit]
        self.plan = match[0] if match else Plan("reported", limit, max(1, limit // 2))
        self._tokens = min(self._tokens, float(self.plan.burst))
        log = logger.info if self.assumed else logger.warning
        log("CyberSec Pro reports %d requests a minute; pacing to that", limit)

    def _refill(self, now: float) -> None:
        rate = self.plan.per_minute / 60.0 * REFILL_MARGIN
        if self._filled_at is not None:
            self._tokens = min(self.plan.burst, self._tokens + (now - self._filled_at) * rate)
        self._filled_at = now
        self._sent.expire(now)

    def _take(self, count: int) -> None:
        now = self.http.clock()
        self._refill(now)
        self._tokens -= count
        self._sent.add(now, count)

    def _wait_needed(self) -> float:
        """Seconds until a request leaves `SPARE` of the window, the bucket and the headers."""
        now = self.http.clock()
        self._refill(now)
        # A plan of one or two a minute (a reported `X-RateLimit-Limit`) cannot keep the spare
        # at all: then the wait is for the whole window to empty.
        waits = [0.0, self._sent.wait_for_room(self.plan.per_minute - 1 - SPARE, now)]
        short = 1 + SPARE - self._tokens
        if short > 0:
            waits.append(short / (self.plan.per_minute / 60.0 * REFILL_MARGIN))
        rate = self.http.rate
        if rate.below(1 + SPARE) and rate.reset_at:
            # The budget is per minute: a reset further off than one window is a broken or
            # hostile header, and believing it could stall the job for years.
            waits.append(min(rate.until_reset(now), WINDOW))
        return max(waits)
