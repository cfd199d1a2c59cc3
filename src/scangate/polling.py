"""Adaptive status polling: when to ask the provider about a scan next, and what to tell the user.

`PollSchedule.next_delay` is called after every status poll and returns the seconds to sleep
before the next one (design.md §5). It never sleeps, takes the time as an argument and reads an
injectable wall clock only to place `Retry-After` and `X-RateLimit-Reset`, so it is tested on a
virtual clock. Polling is a policy of its own, apart from the HTTP layer's
per-request retries (after google-api-core's `future/polling.py`).

The algorithm:

1. **Expected finish.** Each poll may give a *reading* of when the scan will end, with a
   *spread* (half-width of the window it is likely to end in):
   - progress `p` %: finish = now + elapsed × (100 − p) / p, where elapsed runs from the anchor
     (the moment progress started counting: the start, the last poll that showed no progress
     yet, or the first poll of a scan found already running); spread = how far the finish moves
     if `p` is off by `progress_tolerance` points (integer percentages, jitter);
   - ETA: finish = now + eta; spread = `eta_tolerance` × (elapsed + eta), because an estimate
     such as CyberOrigen's `estimated_duration` is off by a share of the whole scan.

   - history (status-only providers): the durations of the target's past finished scans
     (`PollSchedule.learn`): finish = start + their median; spread = `history_spread` robust
     standard deviations (1.4826 × the median absolute deviation, at least `history_floor` of
     the median). A history of fewer than `history_min_scans` usable durations, one spread
     wider than `history_max_spread` of its median (the target's scans vary too much to say),
     or one mostly longer than the timeout is no history: the schedule stays as without it.

   Readings are fused by inverse-variance weights with a memory that halves per poll, so a
   noisy early percentage counts little, a change of pace shows within two polls, and repeated
   (correlated) readings do not shrink the window below their own spread.
2. **Approach.** Before the window `[finish − spread, finish + spread]` it sleeps `approach`
   of the expected remaining time (a new reading halfway refines the estimate), but never past
   the window's start.
3. **End game.** Inside the window it polls every `max(end_game, 2 × spread / end_game_polls)`
   seconds (`end_game_polls` per window, or per hour of a window longer than an hour;
   `history_polls`, and never sparser than `maximum`, while the window is the history's
   alone, which no poll narrows): the detection lag is about half of that. A window of
   under `end_game` seconds (a short scan whose percentage pins its end down) is met by one
   poll just after the expected finish, once no approach step would land well before it;
   a window open only because the first reading is loose is polled again within the time
   waited so far. Past `end_game_polls` such polls within an hour (the
   scan is late, or stuck at 99 %), the interval grows by `multiplier` up to `maximum`. For a
   scan of well under a minute, `end_game` shrinks to `elapsed_fraction` of the time waited
   (never below `minimum`).
4. **No progress, no ETA** (VAddy): exponential backoff `initial × multiplier^n`, capped at
   `maximum` and at `elapsed_fraction` of the time waited so far (a 2-minute scan is not
   polled once a minute).
5. **Limits**, applied last: never below `minimum`; not before `Retry-After` (`hold_until`);
   once `X-RateLimit-Remaining` is at or below `rate_low_water`, spread the requests left (minus
   `rate_reserve` kept for fetching and cancelling) evenly until `X-RateLimit-Reset`; within
   `max_requests_per_hour` over any sliding hour (once three quarters are used, the rest is
   spread until the oldest request leaves the hour); and never past the deadline: at the
   deadline the caller stops waiting instead of polling.

`ProgressReporter` turns polls into log lines: one per status or phase change, and otherwise a
heartbeat every `heartbeat` seconds; each line says how long the wait has taken, how much of
`scan.timeout` is left and how many polls and requests it cost, and a `note` (how long the start
was queued behind the plan's limits) rides along.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from scangate.model import ScanProgress, ScanStatus
from scangate.ratelimit import RateLimitState, RequestWindow
from scangate.text import no_workflow_commands, one_line

HEARTBEAT = 30.0
"""Seconds between "still waiting" lines when nothing changes. design.md §5 allows up to 60 s;
30 s matches the queue and rate-limit lines (issue 17: "a line at least every 30 s"), so no
kind of wait leaves the CI log quiet long enough to look hung."""
_HOUR = 3600.0
_MEMORY = 0.5
"""Weight an older reading keeps per later poll when readings are fused."""
_MAX_EXPONENT = 64
"""Cap on backoff exponents: the delay is capped long before, and floats must not overflow."""
_MAD_SIGMA = 1.4826
"""Median absolute deviation × this = the standard deviation, for normally spread values."""


@dataclass(frozen=True, kw_only=True)
class PollPolicy:
    """How to pace status polls; see the module docstring for the algorithm.

    The defaults keep the mean completion-detection lag of a scan that reports progress
    under 15 s (5 s for a one-minute scan, in at most 5 polls), and of a status-only scan with
    a history under 15 s too, while sending a small fraction of a fixed 5-20 s schedule's
    requests (`benchmarks/polling.py` checks all of it).
    """

    initial: float = 5.0
    """First delay when the scan gives no progress or ETA."""
    multiplier: float = 1.5
    """Backoff growth per poll."""
    maximum: float = 60.0
    """Longest delay without a progress or ETA estimate (also the cap for a late scan)."""
    elapsed_fraction: float = 0.2
    """Without an estimate, never sleep more than this share of the time waited so far."""
    minimum: float = 2.0
    """Shortest delay, except to wake exactly at the deadline."""
    end_game: float = 10.0
    """Densest interval, used around the expected finish (mean lag about half of it)."""
    end_game_polls: int = 30
    """Polls to spread over the expected-finish window; at most this many per hour."""
    approach: float = 0.8
    """Share of the expected remaining time slept in one go before the window."""
    progress_tolerance: float = 2.0
    """Percentage points a reported progress may be off (integer rounding plus jitter)."""
    eta_tolerance: float = 0.3
    """Share of the whole scan an ETA may be off (CyberOrigen `estimated_duration`: ±30 %)."""
    heartbeat: float = HEARTBEAT
    """Seconds between progress lines when nothing changes."""
    max_requests_per_hour: int | None = None
    """The plan's request budget over any sliding hour, when it has one (all requests count)."""
    rate_reserve: int = 5
    """`X-RateLimit-Remaining` requests kept back for fetching results and cancelling."""
    rate_low_water: int = 20
    """From this `X-RateLimit-Remaining` down, requests are spread until the window resets."""
    history_min_scans: int = 3
    """Fewest usable past durations that make a history (one or two say nothing of spread)."""
    history_spread: float = 2.5
    """Half-width of the history's window, in robust standard deviations of its durations."""
    history_floor: float = 0.1
    """Least half-width of the history's window, as a share of the median duration."""
    history_max_spread: float = 0.3
    """Past durations whose robust deviation exceeds this share of their median are no history:
    the target's scans differ too much (different crawls, plans, outages) to time a poll by."""
    history_polls: int = 40
    """Polls spread over a window known from history alone (no live reading narrows it)."""

    def __post_init__(self) -> None:
        """Refuse settings that would poll in a hot loop or never back off."""
        if not 0 < self.minimum <= self.initial <= self.maximum:
            raise ValueError("PollPolicy needs 0 < minimum <= initial <= maximum")
        if not self.minimum <= self.end_game <= self.maximum:
            raise ValueError("PollPolicy needs minimum <= end_game <= maximum")
        if self.multiplier < 1 or not 0 < self.approach < 1 or self.end_game_polls < 1:
            raise ValueError(
                "PollPolicy needs multiplier >= 1, 0 < approach < 1, end_game_polls >= 1"
            )
        if self.max_requests_per_hour is not None and self.max_requests_per_hour < 1:
            raise ValueError("PollPolicy.max_requests_per_hour must be at least 1")
        if self.history_min_scans < 2 or self.history_polls < 1:
            raise ValueError("PollPolicy needs history_min_scans >= 2, history_polls >= 1")
        if not 0 < self.history_floor <= self.history_max_spread or self.history_spread <= 0:
            raise ValueError(
                "PollPolicy needs history_spread > 0 and 0 < history_floor <= history_max_spread"
            )


@dataclass(frozen=True)
class _Reading:
    """One guess at the finish time and the half-width of the window around it."""

    finish: float
    spread: float

    @property
    def weight(self) -> float:
        return 1.0 / (self.spread * self.spread)

    def combine(self, other: _Reading) -> _Reading:
        """Inverse-variance combination of two independent readings."""
        total = self.weight + other.weight
        finish = self.finish + other.weight / total * (other.finish - self.finish)
        return _Reading(finish, 1.0 / math.sqrt(total))


def typical_duration(
    durations: Sequence[float], policy: PollPolicy, *, limit: float = math.inf
) -> tuple[float, float] | None:
    """(median, half-width of the window) of a target's past scan `durations`, or None.

    Robust against odd entries: non-finite or non-positive durations are dropped, as are those
    over `limit` (the timeout: such a scan times out whatever the poll); a median and a median
    absolute deviation ignore a few outliers. None (no history) when too few remain, when most
    were over `limit`, or when they spread too widely to say when this scan will end.
    """
    usable = sorted(d for d in durations if math.isfinite(d) and d > 0)
    kept = [d for d in usable if d <= limit]
    if len(kept) < policy.history_min_scans or 2 * len(kept) < len(usable):
        return None
    median = _median(kept)
    sigma = _MAD_SIGMA * _median([abs(d - median) for d in kept])
    if sigma > policy.history_max_spread * median:
        return None
    spread = max(policy.history_spread * sigma, policy.history_floor * median, policy.minimum)
    return median, spread


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


class PollSchedule:
    """Plans the delay before each status poll of one scan (stateful, deterministic).

    `now`, `started` and `deadline` share one clock (the runner's monotonic one); the epoch
    times in `RateLimitState` are read against `wall_clock`.
    """

    def __init__(
        self, policy: PollPolicy | None = None, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        """Create a new `PollSchedule` following `policy` (the defaults when None).

        `wall_clock` gives epoch seconds, the clock of `RateLimitState.hold_until` and
        `reset_at`; it is only read when a rate state is passed.
        """
        self.policy = policy or PollPolicy()
        self._wall_clock = wall_clock
        self._last_polls = -1
        self._last_requests = 0
        self._sent = RequestWindow(_HOUR)
        self._blind_polls = 0
        self._dense: deque[float] = deque()
        self._anchor: tuple[float, float] | None = None
        self._last_seen: tuple[float, float] | None = None
        self._estimate: _Reading | None = None
        self._weight = 0.0
        self._count = 0.0
        self._history_only = False
        """The estimate is the history's alone: no poll has given a reading since."""

    def learn(self, durations: Sequence[float], *, started: float, limit: float = math.inf) -> bool:
        """Take the target's past scan `durations` as a first reading of this scan's finish.

        `started` is when this scan began, on the `now` clock (before `now` for a scan found
        running); `limit` is the timeout. Returns False, and changes nothing, when the durations
        make no usable history (see `typical_duration`).
        """
        typical = typical_duration(durations, self.policy, limit=limit)
        if typical is None:
            return False
        median, spread = typical
        self._fuse(_Reading(started + median, spread))
        self._history_only = True
        return True

    def own_scan(self, started: float) -> None:
        """This run started the scan at `started` (on the `now` clock): its progress counted
        from 0 there, so the first poll's percentage already shows the pace.

        Without this, a first poll that already shows progress is taken for a scan found
        running (`if_running: attach`), whose pace shows only from the next poll: a short scan
        of our own that is at 96 % on the first poll would wait a blind `initial` delay.
        """
        if self._anchor is None:
            self._anchor = (started, 0.0)

    @property
    def expected_finish(self) -> float | None:
        """When the scan is expected to end (on the `now` clock), once there is an estimate."""
        return self._estimate.finish if self._estimate else None

    @property
    def spread(self) -> float | None:
        """Half-width of the window around `expected_finish` the scan likely ends in."""
        return self._estimate.spread if self._estimate else None

    def next_delay(
        self,
        progress: ScanProgress,
        *,
        now: float,
        started: float,
        polls: int,
        rate: RateLimitState | None,
        deadline: float,
        requests: int | None = None,
    ) -> float:
        """Return the seconds to sleep before the next status poll.

        `progress` is the answer of the poll just made at `now`; `polls` counts the polls made
        so far, this one included (a call with an unchanged count, after a failed poll, plans
        again without taking `progress` as new). `requests`, when given, is the client's total
        request count (`HttpClient.requests_sent`), so retries and other calls count against
        `max_requests_per_hour`; otherwise each poll counts as one request. The result is
        never more than the time left until `deadline`.
        """
        fresh = polls > self._last_polls
        self._count_requests(now, polls, requests)
        if fresh:
            self._observe(progress, now, started)
        planned = self._plan(now, started, fresh)
        delay = max(
            planned,
            self.policy.minimum,
            self._rate_floor(rate),
            self._budget_floor(now),
        )
        return max(0.0, min(delay, deadline - now))

    def _count_requests(self, now: float, polls: int, requests: int | None) -> None:
        """Log the requests sent since the last call at `now` (a conservative time)."""
        if requests is None:
            new = polls - max(self._last_polls, 0)
        else:
            new = requests - self._last_requests
            self._last_requests = requests
        self._last_polls = max(self._last_polls, polls)
        self._sent.add(now, new)
        self._sent.expire(now)

    def _observe(self, progress: ScanProgress, now: float, started: float) -> None:
        """Turn the poll's progress and ETA into a reading and fuse it into the estimate."""
        readings = [
            r
            for r in (
                self._progress_reading(progress.progress, now, started),
                self._eta_reading(progress.eta_seconds, now, started),
            )
            if r is not None
        ]
        if not readings:
            return
        reading = readings[0] if len(readings) == 1 else readings[0].combine(readings[1])
        self._fuse(reading)
        self._history_only = False

    def _progress_reading(self, pct: float | None, now: float, started: float) -> _Reading | None:
        """A reading from a percentage, extrapolated from the anchor at the pace so far."""
        if self._anchor is None:
            if pct is not None and 0 < pct < 100:
                # A scan whose first poll already shows progress was running before we came
                # (`if_running: attach`, `scangate wait`): its pace shows from the next poll.
                self._anchor = self._last_seen = (now, pct)
                return None
            self._anchor = (started, 0.0)
        if pct is None or pct <= 0 or pct >= 100:
            if self._last_seen is None:
                # Queued, or a phase without a percentage: progress starts counting later.
                self._anchor = (now, 0.0)
            return None
        tolerance = self.policy.progress_tolerance
        if self._last_seen is not None and pct < self._last_seen[1] - tolerance:
            # The percentage went back: a new phase counts from 0 again (it began after the
            # previous poll), and the old estimate no longer applies.
            self._anchor = (self._last_seen[0], 0.0)
            self._estimate, self._weight, self._count = None, 0.0, 0.0
            self._history_only = False
        self._last_seen = (now, pct)
        return self._extrapolate(pct, now, tolerance)

    def _extrapolate(self, pct: float, now: float, tolerance: float) -> _Reading | None:
        anchor_time, anchor_pct = self._anchor or (now, 0.0)
        gained, span = pct - anchor_pct, now - anchor_time
        if gained <= 0 or span <= 0:
            return None
        finish = now + (100.0 - pct) * span / gained
        # d(finish)/d(pct) = -span × (100 - anchor) / gained²: the finish's sensitivity to the
        # percentage being off by `tolerance` points.
        spread = tolerance * (100.0 - anchor_pct) * span / (gained * gained)
        return _Reading(finish, max(spread, self.policy.minimum))

    def _eta_reading(self, eta: float | None, now: float, started: float) -> _Reading | None:
        if eta is None or eta < 0 or not math.isfinite(eta):
            return None
        spread = self.policy.eta_tolerance * (max(now - started, 0.0) + eta)
        return _Reading(now + eta, max(spread, self.policy.minimum))

    def _fuse(self, reading: _Reading) -> None:
        """Weighted running mean of finish times; older readings fade by `_MEMORY` per poll."""
        self._weight = _MEMORY * self._weight + reading.weight
        self._count = _MEMORY * self._count + 1.0
        if self._estimate is None:
            finish = reading.finish
        else:
            share = reading.weight / self._weight
            finish = self._estimate.finish + share * (reading.finish - self._estimate.finish)
        # sqrt(count / weight) is the typical spread of the remembered readings: fusing
        # repeats of one (possibly wrong) estimate must not narrow the window.
        self._estimate = _Reading(finish, math.sqrt(self._count / self._weight))

    def _plan(self, now: float, started: float, fresh: bool) -> float:
        """The delay the progress, ETA or backoff asks for, before the limits."""
        if self._estimate is None:
            self._blind_polls += int(fresh)
            grown = self.policy.initial * self._grow(self._blind_polls - 1)
            relative = max(self.policy.initial, self.policy.elapsed_fraction * (now - started))
            return min(grown, relative, self.policy.maximum)
        return self._estimated_delay(now, started, fresh)

    def _estimated_delay(self, now: float, started: float, fresh: bool) -> float:
        policy, estimate = self.policy, self._estimate
        assert estimate is not None
        remaining, spread = estimate.finish - now, estimate.spread
        # A history's window is as wide as the target's scans vary, and no poll narrows it (a
        # status-only provider says nothing until the end): it gets its own number of polls.
        polls = policy.history_polls if self._history_only else policy.end_game_polls
        # `polls` per window, or per hour of a window longer than an hour; a scan shorter than
        # a minute is not polled less often than a fifth of its age allows.
        short = max(policy.minimum, policy.elapsed_fraction * (now - started))
        dense = max(min(policy.end_game, short), min(2.0 * spread, _HOUR) / polls)
        if self._history_only:
            # A long scan's history window is wide: never sparser than a blind backoff's cap,
            # or the history would cost more lag than it saves requests.
            dense = min(dense, policy.maximum)
        if 0 < remaining and 2.0 * spread <= policy.end_game:
            # A window narrower than the densest interval (a short scan whose percentage pins
            # its end down), and no approach step left that would land well before it: one
            # poll just after the expected finish sees the end, not two or three around it.
            if remaining <= spread or (1.0 - policy.approach) * remaining <= policy.end_game:
                return remaining + spread
        if remaining > spread:
            return min(remaining - spread, max(policy.approach * remaining, dense))
        if 0 < remaining < spread and not self._history_only:
            # The window is open already because the reading is loose (a first percentage of
            # 1 or 2 taken after an unseen queue): poll again before trusting its width.
            dense = min(dense, max(policy.minimum, now - started))
        if fresh:
            self._dense.append(now)
        while self._dense and self._dense[0] <= now - _HOUR:
            self._dense.popleft()
        # Counted over the last hour, so an estimate that keeps slipping cannot restart the
        # end game: a late scan, or one stuck at 99 %, backs off towards `maximum`.
        late = len(self._dense) - polls
        if late <= 0:
            return dense
        return max(dense, min(policy.end_game * self._grow(late), policy.maximum))

    def _grow(self, exponent: int) -> float:
        return float(self.policy.multiplier ** min(max(exponent, 0), _MAX_EXPONENT))

    def _rate_floor(self, rate: RateLimitState | None) -> float:
        """The shortest delay `Retry-After` and `X-RateLimit-*` allow (0 when unlimited)."""
        if rate is None:
            return 0.0
        wall = self._wall_clock()
        floor = rate.held_for(wall)
        remaining, reset_at = rate.remaining, rate.reset_at
        if remaining is None or remaining > self.policy.rate_low_water:
            return floor
        if reset_at is None:
            # Low, with no reset time to spread over: back off as far as a blind scan would.
            return (
                max(floor, self.policy.maximum) if remaining <= self.policy.rate_reserve else floor
            )
        if reset_at <= wall:
            return floor  # The window has reset since: the count is stale.
        reserve = self.policy.rate_reserve
        if rate.limit:
            # A 10-a-minute plan (CyberSec Pro Trial) cannot keep 5 back in every window.
            reserve = min(reserve, max(1, rate.limit // 5))
        usable = max(remaining - reserve, 1)
        return max(floor, rate.until_reset(wall) / usable)

    def _budget_floor(self, now: float) -> float:
        """The shortest delay that keeps every sliding hour within `max_requests_per_hour`."""
        budget = self.policy.max_requests_per_hour
        if budget is None:
            return 0.0
        sent = len(self._sent)
        if sent >= budget:
            # The budget-th most recent request must leave the window first.
            return self._sent.wait_for_room(budget - 1, now)
        left = budget - sent
        if sent and left <= max(budget // 4, 1):
            # Running low: spread what is left until the oldest request leaves the window,
            # rather than bursting into the cap and then going quiet for most of an hour.
            return self._sent.spread(left, now)
        return 0.0


class ProgressReporter:
    """Writes wait progress: one line per status or phase change, else a periodic heartbeat.

    A line reads `scan 1234 running (scanning) 42% · ETA 3m · 6m10s elapsed, 23m50s of
    scan.timeout left · 14 polls, 31 requests`: what the provider said, how long the wait has
    taken and may still take, and what it cost. Provider text is flattened to one line and
    cannot form a CI workflow command.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: float = HEARTBEAT,
        note: Callable[[], str] | None = None,
        subject: str = "status",
        deadline: float | None = None,
        requests: Callable[[], int] | None = None,
    ) -> None:
        """Create a new `ProgressReporter` writing lines through `write`, timed by `clock`.

        The wait is taken to begin now. `subject` opens every line (`scan 1234`); `deadline`
        (on `clock`) is when `scan.timeout` runs out, for the budget left; `requests` gives the
        requests sent so far. `note`, when given, returns text appended to every line (empty:
        nothing appended).
        """
        self._write = write
        self._clock = clock
        self._heartbeat = heartbeat
        self._note = note
        self._subject = subject
        self._deadline = deadline
        self._requests = requests
        self._began = clock()
        self._key: tuple[ScanStatus, str, str] | None = None
        self._last: ScanProgress | None = None
        self._seen_at = self._began
        self._polls = 0
        self._written_at = -math.inf

    def update(self, progress: ScanProgress, polls_used: int) -> bool:
        """Report one poll's answer; return True when a line was written."""
        key = (progress.status, progress.raw_status, progress.phase)
        changed = key != self._key
        self._key, self._last, self._polls = key, progress, polls_used
        self._seen_at = self._clock()
        if changed or self._seen_at - self._written_at >= self._heartbeat:
            self._emit()
            return True
        return False

    def tick(self, *, early: float = 0.0) -> bool:
        """Write a heartbeat of the last state if one is due (for long sleeps between polls).

        `early`: seconds before it is due that it may come, so a caller sleeping until it is
        due (`due_in`) writes it on waking whatever the clock's rounding.
        """
        if self._last is None or self._clock() - self._written_at < self._heartbeat - early:
            return False
        self._emit()
        return True

    def due_in(self) -> float:
        """Seconds until the next heartbeat is due (infinite before the first poll's answer)."""
        if self._last is None:
            return math.inf
        return max(0.0, self._written_at + self._heartbeat - self._clock())

    def elapsed(self) -> float:
        """Seconds since the wait began."""
        return max(0.0, self._clock() - self._began)

    def _emit(self) -> None:
        assert self._last is not None
        now = self._written_at = self._clock()
        last = self._last
        if last.eta_seconds is not None and math.isfinite(last.eta_seconds):
            # A heartbeat between polls counts the provider's estimate down, not repeats it.
            last = replace(last, eta_seconds=max(0.0, last.eta_seconds - (now - self._seen_at)))
        left = None if self._deadline is None else self._deadline - now
        requests = None if self._requests is None else self._requests()
        line = format_progress(
            last,
            self._polls,
            subject=self._subject,
            timing=format_timing(now - self._began, left),
            requests=requests,
        )
        note = self._note() if self._note is not None else ""
        self._write(f"{line} · {no_workflow_commands(note)}" if note else line)


def format_timing(elapsed: float, left: float | None) -> str:
    """`6m10s elapsed, 23m50s of scan.timeout left` (the budget only when known)."""
    text = f"{format_clock(elapsed)} elapsed"
    if left is None:
        return text
    return f"{text}, {format_clock(max(0.0, left))} of scan.timeout left"


def format_progress(
    progress: ScanProgress,
    polls_used: int,
    *,
    subject: str = "status",
    timing: str = "",
    requests: int | None = None,
) -> str:
    """One progress line; provider text (raw status, phase, message) is flattened and capped.

    `subject` opens it (`scan 1234`), `timing` (`format_timing`) follows the provider's
    estimates, and `requests`, when known, joins the poll count.
    """
    status = progress.status.value
    raw = one_line(progress.raw_status, 60)
    head = f"{one_line(subject, 120)} {status}" + (
        f" ({raw})" if raw and raw.lower() != status else ""
    )
    if progress.progress is not None and math.isfinite(progress.progress):
        head += f" {format_percent(progress.progress)}%"
    parts = [head]
    if progress.phase:
        parts.append(f"phase {one_line(progress.phase, 60)}")
    if progress.eta_seconds is not None and math.isfinite(progress.eta_seconds):
        parts.append(f"ETA {format_duration(progress.eta_seconds)}")
    if timing:
        parts.append(timing)
    spent = f"{polls_used} poll" + ("" if polls_used == 1 else "s")
    if requests is not None:
        spent += f", {requests} request" + ("" if requests == 1 else "s")
    parts.append(spent)
    if progress.message:
        parts.append(one_line(progress.message, 120))
    return no_workflow_commands(" · ".join(parts))


def format_percent(value: float) -> str:
    """`45`, `45.5`: rounded down to a tenth, so an unfinished scan never shows 100."""
    tenths = math.floor(min(max(value, 0.0), 100.0) * 10) / 10
    return f"{tenths:.1f}".removesuffix(".0")


def format_clock(seconds: float) -> str:
    """`45s`, `4m10s`, `1h05m`: a budget or a wait, to the second below an hour."""
    whole = max(0, round(seconds)) if math.isfinite(seconds) else 0
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def format_duration(seconds: float) -> str:
    """`45s`, `12m`, `1h05m`: rounded to the unit that matters for a wait."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes = round(whole / 60)
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"
