"""Tests for adaptive polling and progress lines, on a virtual clock (nothing sleeps)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import pytest
from conftest import HOSTILE

from scangate.model import ScanStatus
from scangate.polling import (
    HEARTBEAT,
    PollPolicy,
    PollSchedule,
    ProgressReporter,
    format_clock,
    format_duration,
    format_progress,
    format_timing,
    typical_duration,
)
from scangate.providers.interface import ScanProgress
from scangate.ratelimit import RateLimitState

HOUR = 3600.0
EPOCH = 1_800_000_000.0
"""The virtual wall clock's start, an epoch time like `RateLimitState` uses."""

Answer = Callable[[float], ScanProgress]
"""What a poll at `t` seconds after the start returns."""


def running(
    progress: float | None = None, eta: float | None = None, phase: str = ""
) -> ScanProgress:
    """A running scan's poll answer."""
    return ScanProgress(
        status=ScanStatus.RUNNING,
        raw_status="running",
        progress=progress,
        eta_seconds=eta,
        phase=phase,
    )


DONE = ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed", progress=100)


def blind(finish: float = float("inf")) -> Answer:
    """A provider that says nothing but running/done (VAddy)."""
    return lambda t: DONE if t >= finish else running()


def linear(finish: float) -> Answer:
    """Integer progress that grows linearly to 100 % at `finish`."""
    return lambda t: DONE if t >= finish else running(progress=int(100 * t / finish))


def eta_at_start(estimate: float, finish: float) -> Answer:
    """An ETA given at start that counts down (CyberOrigen `estimated_duration`)."""
    return lambda t: DONE if t >= finish else running(eta=max(0.0, estimate - t))


@dataclass
class Wait:
    """One simulated wait: when each poll happened and what each delay was."""

    times: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)

    def steps(self) -> list[tuple[float, float]]:
        """(poll time, delay after it) for every poll but the last."""
        return list(zip(self.times, self.delays, strict=False))

    @property
    def lag(self) -> float:
        """Seconds between the last two polls: the worst the detection could have lagged."""
        return self.times[-1] - self.times[-2]

    def most_in_window(self, window: float) -> int:
        """The most polls in any half-open interval [t, t + window)."""
        return max(sum(1 for u in self.times if t <= u < t + window) for t in self.times)


@dataclass
class RateLimiter:
    """A provider's fixed-window limit: `limit` requests per `window` s, like CyberOrigen's."""

    limit: int
    window: float
    clock: Callable[[], float]
    state: RateLimitState = field(default_factory=RateLimitState)
    lowest: int | None = None
    rejected: int = 0

    def request(self) -> None:
        """Count one request and update the headers the client would have seen."""
        now = self.clock()
        if self.state.reset_at is None or now >= self.state.reset_at:
            self.state.reset_at = now + self.window
            self.state.remaining = self.limit
        assert self.state.remaining is not None
        if self.state.remaining == 0:
            self.rejected += 1
            return
        self.state.remaining -= 1
        if self.lowest is None or self.state.remaining < self.lowest:
            self.lowest = self.state.remaining


def simulate(
    schedule: PollSchedule,
    answer: Answer,
    *,
    clock: list[float],
    until: float = 10 * HOUR,
    deadline: float = float("inf"),
    limiter: RateLimiter | None = None,
    hold: Callable[[float], float] | None = None,
    extra_requests: int = 0,
) -> Wait:
    """Poll from t = 0 until the scan ends, `until`, or the deadline; the clock is `clock[0]`."""
    wait, polls, requests = Wait(), 0, 0
    start = clock[0]
    while True:
        t = clock[0] - start
        wait.times.append(t)
        polls += 1
        requests += 1 + extra_requests
        if limiter is not None:
            limiter.request()
        progress = answer(t)
        if progress.status.terminal or t >= until or clock[0] >= start + deadline:
            return wait
        rate = limiter.state if limiter else RateLimitState()
        if hold is not None:
            rate.hold_until = hold(clock[0])
        delay = schedule.next_delay(
            progress,
            now=clock[0],
            started=start,
            polls=polls,
            rate=rate,
            deadline=start + deadline,
            requests=requests if extra_requests else None,
        )
        wait.delays.append(delay)
        clock[0] += delay


def make(policy: PollPolicy | None = None) -> tuple[PollSchedule, list[float]]:
    """A schedule whose wall clock is the virtual clock `clock[0]`."""
    clock = [EPOCH]
    return PollSchedule(policy, wall_clock=lambda: clock[0]), clock


# --- policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"minimum": 0.0},
        {"minimum": 10.0, "initial": 5.0},
        {"initial": 90.0, "maximum": 60.0},
        {"end_game": 1.0, "minimum": 2.0},
        {"multiplier": 0.5},
        {"approach": 1.0},
        {"end_game_polls": 0},
        {"max_requests_per_hour": 0},
        {"history_min_scans": 1},
        {"history_polls": 0},
        {"history_spread": 0.0},
        {"history_floor": 0.0},
        {"history_floor": 0.5, "history_max_spread": 0.3},
    ],
)
def test_policy_refuses_settings_that_would_hot_loop_or_never_back_off(
    settings: dict[str, float],
) -> None:
    with pytest.raises(ValueError, match="PollPolicy"):
        PollPolicy(**settings)  # type: ignore[arg-type]


# --- no progress, no ETA --------------------------------------------------------------------


def test_without_progress_delays_grow_by_the_multiplier_from_initial_to_the_cap() -> None:
    policy = PollPolicy(initial=5, multiplier=1.5, maximum=60, elapsed_fraction=10)
    schedule, clock = make(policy)
    wait = simulate(schedule, blind(), clock=clock, until=600)

    assert wait.delays[0] == policy.initial
    growing = [d for d in wait.delays if d < policy.maximum]
    assert len(growing) >= 5
    for before, after in pairwise(growing):
        assert after == pytest.approx(before * policy.multiplier)
    assert wait.delays[len(growing) :] == [policy.maximum] * (len(wait.delays) - len(growing))


def test_without_progress_a_short_wait_is_not_polled_at_the_cap() -> None:
    policy = PollPolicy()
    schedule, clock = make(policy)
    wait = simulate(schedule, blind(), clock=clock, until=900)

    for t, delay in wait.steps():
        assert delay <= max(policy.initial, policy.elapsed_fraction * t) + 1e-9
    assert max(wait.delays) == policy.maximum


def test_a_repeated_call_after_a_failed_poll_does_not_advance_the_backoff() -> None:
    schedule, clock = make(PollPolicy(elapsed_fraction=10))
    for polls in range(1, 4):
        first = schedule.next_delay(
            running(), now=clock[0], started=EPOCH, polls=polls, rate=None, deadline=EPOCH + HOUR
        )
        again = schedule.next_delay(
            running(), now=clock[0], started=EPOCH, polls=polls, rate=None, deadline=EPOCH + HOUR
        )
        assert again == first
        clock[0] += first
    assert first > PollPolicy().initial


def test_a_failed_poll_inside_the_end_game_window_plans_again() -> None:
    policy = PollPolicy(eta_tolerance=0.05)
    schedule, clock = make(policy)
    first = schedule.next_delay(
        running(eta=HOUR), now=clock[0], started=EPOCH, polls=1, rate=None, deadline=EPOCH + 1e4
    )
    # The next poll fails (no new answer) after the window opened; the runner asks again.
    clock[0] += HOUR - 10
    again = schedule.next_delay(
        running(eta=HOUR), now=clock[0], started=EPOCH, polls=1, rate=None, deadline=EPOCH + 1e4
    )
    assert first >= policy.approach * HOUR
    assert again == max(policy.end_game, 2 * policy.eta_tolerance * HOUR / policy.end_game_polls)


# --- progress and ETA --------------------------------------------------------------------


def test_progress_sleeps_most_of_the_remaining_time_then_polls_densely_near_the_end() -> None:
    policy = PollPolicy()
    finish = 30 * 60.0
    schedule, clock = make(policy)
    wait = simulate(schedule, linear(finish), clock=clock)

    assert wait.times[-1] >= finish
    assert wait.times[-1] - finish <= policy.end_game
    # go-vaddy polls about 98 times for this scan (5 s ×10, then 20 s).
    assert len(wait.times) <= 98 / 3
    assert max(wait.delays) >= finish / 4
    last_minute = [d for t, d in wait.steps() if finish - 60 <= t < finish]
    assert last_minute
    # The first of them may be the approach's step onto the window's start.
    assert max(last_minute[1:]) <= policy.end_game


def test_an_eta_at_start_gives_one_long_sleep_then_a_dense_end_game() -> None:
    policy = PollPolicy(eta_tolerance=0.05)
    estimate = finish = HOUR
    schedule, clock = make(policy)
    wait = simulate(schedule, eta_at_start(estimate, finish), clock=clock)

    assert wait.delays[0] >= policy.approach * estimate
    spread = policy.eta_tolerance * estimate
    dense = max(policy.end_game, 2 * spread / policy.end_game_polls)
    window = [d for t, d in wait.steps() if t >= finish - spread]
    assert window
    assert max(window) <= dense + 1e-9
    assert wait.lag <= dense + 1e-9
    assert len(wait.times) < 10 + policy.end_game_polls


def test_repeating_one_eta_does_not_narrow_the_window_it_may_be_wrong_by() -> None:
    policy = PollPolicy(eta_tolerance=0.3)
    schedule, clock = make(policy)
    simulate(schedule, eta_at_start(HOUR, 2 * HOUR), clock=clock, until=0.9 * HOUR)
    assert schedule.spread == pytest.approx(policy.eta_tolerance * HOUR)


def test_a_window_longer_than_an_hour_gets_end_game_polls_per_hour() -> None:
    policy = PollPolicy(eta_tolerance=0.3)
    estimate = 3 * HOUR
    schedule, clock = make(policy)
    wait = simulate(schedule, eta_at_start(estimate, 1.25 * estimate), clock=clock)

    opens = estimate * (1 - policy.eta_tolerance)
    first_hour = [t for t in wait.times if opens <= t < opens + HOUR]
    assert policy.end_game_polls - 2 <= len(first_hour) <= policy.end_game_polls + 1


def test_a_scan_later_than_its_eta_is_polled_with_backoff_up_to_the_cap() -> None:
    policy = PollPolicy(eta_tolerance=0.05)
    schedule, clock = make(policy)
    wait = simulate(schedule, eta_at_start(600, 3 * HOUR), clock=clock)

    late = [d for t, d in wait.steps() if t > 2 * HOUR]
    assert late
    assert set(late) == {policy.maximum}
    assert wait.most_in_window(HOUR) <= 100


def test_progress_stuck_at_99_never_sends_more_than_100_requests_an_hour() -> None:
    policy = PollPolicy()

    def stuck(t: float) -> ScanProgress:
        return DONE if t >= 5 * HOUR else running(progress=min(99, int(t / 30)))

    schedule, clock = make(policy)
    wait = simulate(schedule, stuck, clock=clock)

    assert wait.most_in_window(HOUR) <= 100
    assert wait.delays[-1] == policy.maximum
    assert wait.lag <= policy.maximum


def test_a_scan_found_already_running_is_not_assumed_to_have_started_at_zero() -> None:
    schedule, clock = make()
    # Attached at 50 %; one point per 10 s, so it ends 500 s after the first poll.
    answer: Answer = lambda t: DONE if t >= 500 else running(progress=50 + int(t / 10))  # noqa: E731
    schedule.next_delay(
        answer(0), now=clock[0], started=clock[0], polls=1, rate=None, deadline=EPOCH + HOUR
    )
    unknown_pace = schedule.expected_finish
    assert unknown_pace is None
    clock[0] += 100
    schedule.next_delay(
        answer(100), now=clock[0], started=EPOCH, polls=2, rate=None, deadline=EPOCH + HOUR
    )
    expected, spread = schedule.expected_finish, schedule.spread
    assert expected is not None
    assert spread is not None
    assert abs(expected - (EPOCH + 500)) <= spread


@pytest.mark.parametrize(("ours", "delay"), [(True, 2.0), (False, 5.0)])
def test_a_scan_we_started_is_paced_from_its_start_by_the_first_poll(
    ours: bool, delay: float
) -> None:
    # A short scan already at 96 % on the first poll: ours is timed from its start (due now:
    # the minimum interval), one found running has no pace yet (the blind `initial` delay).
    schedule, clock = make()
    if ours:
        schedule.own_scan(EPOCH)
    clock[0] += 0.2
    planned = schedule.next_delay(
        running(progress=96), now=clock[0], started=EPOCH, polls=1, rate=None, deadline=EPOCH + HOUR
    )
    assert planned == pytest.approx(delay, abs=0.05)


def test_progress_that_starts_over_in_a_new_phase_replaces_the_old_estimate() -> None:
    # Crawling 0→100 % in 100 s, then the diagnosis counts 0→100 % again over 1000 s.
    def two_phases(t: float) -> ScanProgress:
        if t < 100:
            return running(progress=int(t), phase="crawl")
        return running(progress=int((t - 100) / 10), phase="diagnosis")

    schedule, clock = make()
    for polls, t in enumerate((0, 50, 90, 150, 300), start=1):
        clock[0] = EPOCH + t
        schedule.next_delay(
            two_phases(t), now=clock[0], started=EPOCH, polls=polls, rate=None, deadline=EPOCH + 1e4
        )
    expected = schedule.expected_finish
    assert expected is not None
    assert abs(expected - (EPOCH + 1100)) < 150


# --- limits ------------------------------------------------------------------------------


def test_retry_after_holds_the_next_poll_back() -> None:
    schedule, clock = make()
    rate = RateLimitState(hold_until=EPOCH + 120)
    delay = schedule.next_delay(
        running(), now=clock[0], started=EPOCH, polls=1, rate=rate, deadline=EPOCH + HOUR
    )
    assert delay == pytest.approx(120)


def test_retry_after_is_read_on_the_wall_clock_while_now_is_monotonic() -> None:
    # The runner passes `time.monotonic()` values; `hold_until` is an epoch time.
    schedule = PollSchedule(wall_clock=lambda: EPOCH)
    rate = RateLimitState(hold_until=EPOCH + 45)
    delay = schedule.next_delay(running(), now=12.0, started=10.0, polls=1, rate=rate, deadline=900)
    assert delay == pytest.approx(45)


def test_a_past_retry_after_does_not_slow_polling() -> None:
    schedule, clock = make()
    rate = RateLimitState(hold_until=EPOCH - 5)
    delay = schedule.next_delay(
        running(), now=clock[0], started=EPOCH, polls=1, rate=rate, deadline=EPOCH + HOUR
    )
    assert delay == PollPolicy().initial


def test_rate_limit_remaining_is_spread_until_the_reset_and_never_exhausted() -> None:
    # Dense end-game polling (10 s) would need 60 requests per 10-minute window; 40 allowed.
    policy = PollPolicy(eta_tolerance=0.2)
    schedule, clock = make(policy)
    limiter = RateLimiter(limit=40, window=600, clock=lambda: clock[0])
    simulate(schedule, eta_at_start(HOUR, 1.5 * HOUR), clock=clock, limiter=limiter)

    assert limiter.rejected == 0
    assert limiter.lowest is not None
    assert limiter.lowest >= policy.rate_reserve


def test_the_last_usable_request_waits_until_just_after_the_reset() -> None:
    policy = PollPolicy()
    schedule, clock = make(policy)
    rate = RateLimitState(limit=100, remaining=policy.rate_reserve + 1, reset_at=EPOCH + 100)
    delay = schedule.next_delay(
        running(), now=clock[0], started=EPOCH, polls=1, rate=rate, deadline=EPOCH + HOUR
    )
    # A second after the reset: the provider's clock may be a little behind ours.
    assert 100 < delay <= 102


def test_low_remaining_without_a_reset_time_backs_off_to_the_cap() -> None:
    policy = PollPolicy()
    schedule, clock = make(policy)
    rate = RateLimitState(limit=100, remaining=policy.rate_reserve)
    delay = schedule.next_delay(
        running(), now=clock[0], started=EPOCH, polls=1, rate=rate, deadline=EPOCH + HOUR
    )
    assert delay == policy.maximum


def test_the_hourly_budget_holds_over_every_sliding_hour_without_going_quiet() -> None:
    policy = PollPolicy(minimum=2, initial=2, end_game=2, maximum=5, max_requests_per_hour=30)
    schedule, clock = make(policy)
    wait = simulate(schedule, blind(), clock=clock, until=3 * HOUR)

    assert wait.most_in_window(HOUR) <= 30
    # It keeps polling at about the budget's pace, with no gap of most of an hour.
    assert len(wait.times) >= 2 * 30
    assert max(wait.delays) <= HOUR / 4


def test_the_hourly_budget_counts_every_request_the_client_sent() -> None:
    policy = PollPolicy(minimum=2, initial=2, end_game=2, maximum=5, max_requests_per_hour=30)
    schedule, clock = make(policy)
    wait = simulate(schedule, blind(), clock=clock, until=3 * HOUR, extra_requests=2)

    assert wait.most_in_window(HOUR) * 3 <= 30


@pytest.mark.parametrize(
    "answer",
    [blind(), linear(5 * HOUR), eta_at_start(HOUR, 5 * HOUR)],
    ids=["blind", "progress", "eta"],
)
@pytest.mark.parametrize("held", [False, True], ids=["free", "retry-after"])
def test_the_deadline_is_never_overshot(answer: Answer, held: bool) -> None:
    schedule, clock = make(PollPolicy(max_requests_per_hour=50))
    deadline = 2345.6
    wait = simulate(
        schedule,
        answer,
        clock=clock,
        deadline=deadline,
        hold=(lambda now: now + 1000) if held else None,
    )
    assert wait.times[-1] == pytest.approx(deadline)
    assert all(t <= deadline + 1e-6 for t in wait.times)


def test_at_the_deadline_the_delay_is_zero() -> None:
    schedule, clock = make()
    delay = schedule.next_delay(
        running(), now=clock[0], started=EPOCH - 60, polls=1, rate=None, deadline=clock[0] - 1
    )
    assert delay == 0.0


@pytest.mark.parametrize(
    "answer",
    [blind(), linear(90), linear(HOUR), eta_at_start(300, 400), eta_at_start(20, 3000)],
)
def test_no_delay_is_below_the_minimum_interval(answer: Answer) -> None:
    policy = PollPolicy(minimum=4, initial=4, end_game=4)
    schedule, clock = make(policy)
    wait = simulate(schedule, answer, clock=clock, until=2 * HOUR)
    assert min(wait.delays) >= policy.minimum


def test_the_minimum_interval_applies_when_the_window_opens_in_a_moment() -> None:
    policy = PollPolicy(minimum=3, initial=3, eta_tolerance=0.05)
    schedule, clock = make(policy)
    # Window [finish - spread, ...] opens in 0.5 s: eta = 0.5 + 0.05 × (100 + eta), so the
    # window (2 × 5.3 s) is wider than `end_game` and is polled, not jumped past.
    delay = schedule.next_delay(
        running(eta=5.5 / 0.95), now=clock[0] + 100, started=EPOCH, polls=1,
        rate=None, deadline=EPOCH + HOUR,
    )  # fmt: skip
    assert schedule.spread is not None and 2 * schedule.spread > policy.end_game
    assert delay == policy.minimum


def test_a_deadline_closer_than_the_minimum_interval_wins() -> None:
    policy = PollPolicy(minimum=5, initial=5, end_game=10)
    schedule, clock = make(policy)
    delay = schedule.next_delay(
        running(), now=clock[0], started=EPOCH, polls=1, rate=None, deadline=clock[0] + 1.5
    )
    assert delay == pytest.approx(1.5)


# --- progress lines ------------------------------------------------------------------------


class Lines:
    """A `write` callable on a virtual clock that remembers when each line was written."""

    def __init__(self) -> None:
        """Start empty at t = 0."""
        self.now = 0.0
        self.lines: list[tuple[float, str]] = []

    def __call__(self, line: str) -> None:
        """Record `line` at the current time."""
        self.lines.append((self.now, line))


def test_a_line_reads_status_progress_phase_eta_and_polls() -> None:
    progress = running(progress=45, eta=12 * 60, phase="vulnerability_scanning")
    assert (
        format_progress(progress, 7)
        == "status running 45% · phase vulnerability_scanning · ETA 12m · 7 polls"
    )


def test_a_line_shows_the_providers_own_status_word_when_it_differs() -> None:
    progress = ScanProgress(status=ScanStatus.RUNNING, raw_status="13", message="crawling")
    assert format_progress(progress, 1) == "status running (13) · 1 poll · crawling"


def test_a_line_names_the_scan_the_time_taken_the_budget_left_and_the_requests() -> None:
    progress = ScanProgress(
        status=ScanStatus.RUNNING, raw_status="scanning", progress=42, eta_seconds=180
    )
    line = format_progress(
        progress,
        14,
        subject="scan 1234",
        timing=format_timing(370, 1430),
        requests=31,
    )
    assert line == (
        "scan 1234 running (scanning) 42% · ETA 3m · 6m10s elapsed, "
        "23m50s of scan.timeout left · 14 polls, 31 requests"
    )


def test_the_reporter_counts_elapsed_budget_and_requests_at_each_line() -> None:
    out = Lines()
    sent = [3]
    reporter = ProgressReporter(
        out, clock=lambda: out.now, subject="scan 7", deadline=600.0, requests=lambda: sent[0]
    )
    out.now = 10.0
    reporter.update(running(progress=10, eta=100), 1)
    out.now, sent[0] = 10.0 + HEARTBEAT, 9
    assert reporter.tick()
    first, beat = (line for _, line in out.lines)
    assert first == (
        "scan 7 running 10% · ETA 2m · 10s elapsed, 9m50s of scan.timeout left · 1 poll, 3 requests"
    )
    # Between polls the provider's ETA counts down with the clock; the requests are current.
    assert beat == (
        "scan 7 running 10% · ETA 1m · 40s elapsed, 9m20s of scan.timeout left · 1 poll, 9 requests"
    )


def test_the_budget_left_never_reads_negative() -> None:
    assert format_timing(90, -5) == "1m30s elapsed, 0s of scan.timeout left"
    assert format_timing(5, None) == "5s elapsed"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (44.6, "45s"), (59.6, "1m"), (730, "12m"), (3599, "1h00m"), (3900, "1h05m")],
)
def test_durations_are_short_and_rounded(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (44.6, "45s"), (60, "1m00s"), (250, "4m10s"), (3599, "59m59s"), (3900, "1h05m")],
)
def test_budgets_and_waits_show_seconds_below_an_hour(seconds: float, text: str) -> None:
    assert format_clock(seconds) == text


def test_every_line_carries_the_queue_note_once_there_is_one() -> None:
    out = Lines()
    note = [""]
    reporter = ProgressReporter(out, clock=lambda: out.now, note=lambda: note[0])
    reporter.update(running(progress=10), 1)
    note[0] = "queued 4m10s, 5 retries\n::error::x"
    out.now += 60
    reporter.update(running(progress=20), 2)
    assert out.lines[0][1] == "status running 10% · 0s elapsed · 1 poll"
    assert out.lines[1][1].startswith(
        "status running 20% · 1m00s elapsed · 2 polls · queued 4m10s, 5 retries"
    )
    assert "::error::" not in out.lines[1][1]


def test_an_unfinished_scan_never_shows_100_percent() -> None:
    assert "99.9%" in format_progress(running(progress=99.99), 1)


def test_one_line_per_status_or_phase_change() -> None:
    out = Lines()
    reporter = ProgressReporter(out, clock=lambda: out.now)
    answers = [
        ScanProgress(status=ScanStatus.PENDING, raw_status="pending"),
        ScanProgress(status=ScanStatus.PENDING, raw_status="pending"),
        running(progress=1, phase="discovery"),
        running(progress=3, phase="discovery"),
        running(progress=8, phase="enumeration"),
        running(progress=9, phase="enumeration"),
        DONE,
    ]
    for polls, answer in enumerate(answers, start=1):
        out.now += 5
        reporter.update(answer, polls)

    lines = [line for _, line in out.lines]
    assert len(lines) == 4
    assert lines[0].startswith("status pending")
    assert "phase discovery" in lines[1] and "3 polls" in lines[1]
    assert "phase enumeration" in lines[2] and "5 polls" in lines[2]
    assert lines[3].startswith("status completed")


def test_the_heartbeat_keeps_the_log_within_30_seconds_like_the_other_waits() -> None:
    assert HEARTBEAT <= 30.0


def test_heartbeats_come_every_heartbeat_when_nothing_changes() -> None:
    out = Lines()
    reporter = ProgressReporter(out, clock=lambda: out.now)
    for polls in range(1, 62):
        reporter.update(running(progress=polls, phase="scan"), polls)
        out.now += 10  # polls every 10 s for 10 minutes

    times = [t for t, _ in out.lines]
    assert times == [30.0 * n for n in range(21)]


def test_heartbeats_never_come_more_often_than_the_heartbeat_at_any_polling_pace() -> None:
    out = Lines()
    reporter = ProgressReporter(out, clock=lambda: out.now)
    for polls, gap in enumerate([7, 13, 1, 59, 2, 61, 3, 30, 29, 45, 14, 16] * 5, start=1):
        reporter.update(running(progress=polls / 2, phase="scan"), polls)
        out.now += gap

    times = [t for t, _ in out.lines]
    assert all(b - a >= HEARTBEAT for a, b in pairwise(times))
    assert len(times) >= (out.now - 2 * HEARTBEAT) // (2 * HEARTBEAT)


def test_tick_keeps_the_log_alive_during_a_long_sleep() -> None:
    out = Lines()
    reporter = ProgressReporter(out, clock=lambda: out.now)
    assert not reporter.tick()  # nothing to repeat yet
    reporter.update(running(progress=10), 1)
    due = []
    written = []
    for out.now in (15.0, 29.0, 30.0, 45.0, 60.0):
        due.append(reporter.due_in())
        written.append(reporter.tick())
    assert due == [15.0, 1.0, 0.0, 15.0, 0.0]
    assert written == [False, False, True, False, True]
    assert all("1 poll" in line for _, line in out.lines)
    assert out.lines[-1][1] == "status running 10% · 1m00s elapsed · 1 poll"


def test_nothing_is_due_before_the_first_answer() -> None:
    reporter = ProgressReporter(Lines(), clock=lambda: 0.0)
    assert reporter.due_in() == float("inf")


def test_provider_text_stays_on_one_capped_line_after_scangates_own_words() -> None:
    out = Lines()
    reporter = ProgressReporter(out, clock=lambda: out.now)
    evil = "::error::pwned\n::add-mask::x " + HOSTILE
    reporter.update(
        ScanProgress(status=ScanStatus.RUNNING, raw_status=evil, phase=evil, message=evil), 1
    )
    (_, line) = out.lines[0]
    assert "\n" not in line and "\r" not in line
    assert line.startswith("status running (")
    assert len(line) < 400


# --- a short scan with progress (issue 16) -------------------------------------------------


def queued_then_linear(queued: float, finish: float) -> Answer:
    """Queued (no percentage) for `queued` s, then integer progress reaching 100 % at `finish`."""

    def answer(t: float) -> ScanProgress:
        if t >= finish:
            return DONE
        if t < queued:
            return ScanProgress(status=ScanStatus.PENDING, raw_status="queued")
        return running(progress=int(100 * (t - queued) / (finish - queued)))

    return answer


def test_one_minute_scans_with_progress_take_five_polls_with_a_5_s_lag_on_average() -> None:
    # Issue 16: 6 polls and 8.6 s before. Queues of 0-9 s, scans of 50-70 s.
    polls, lags = [], []
    for queued in (0.0, 3.0, 6.0, 9.0):
        for finish in (50.0, 55.0, 60.0, 65.0, 70.0):
            schedule, clock = make()
            wait = simulate(schedule, queued_then_linear(queued, finish), clock=clock)
            polls.append(len(wait.times))
            lags.append(wait.times[-1] - finish)
    assert sum(polls) / len(polls) <= 5
    assert sum(lags) / len(lags) <= 5
    assert 0 <= min(lags) and max(lags) <= 15


def test_a_pinned_down_finish_is_met_by_one_poll_just_after_it() -> None:
    policy = PollPolicy()
    schedule, clock = make(policy)
    for polls, (t, pct) in enumerate([(0.0, None), (20.0, 40), (40.0, 80)], start=1):
        delay = schedule.next_delay(
            running(progress=pct),
            now=EPOCH + t,
            started=EPOCH,
            polls=polls,
            rate=None,
            deadline=EPOCH + HOUR,
        )
    finish, spread = schedule.expected_finish, schedule.spread
    assert finish is not None and spread is not None
    assert 2 * spread <= policy.end_game
    # One sleep past the expected finish, not a poll at its window's start and another after.
    assert EPOCH + 40 + delay == pytest.approx(finish + spread)


def test_a_loose_first_percentage_is_checked_again_soon() -> None:
    # 1 % after 5 s (most of it queued) extrapolates to 500 s ± 1000 s: not a reason to
    # sleep a minute on a scan that may be nearly done.
    schedule, clock = make()
    schedule.next_delay(running(), now=EPOCH, started=EPOCH, polls=1, rate=None, deadline=1e12)
    delay = schedule.next_delay(
        running(progress=1), now=EPOCH + 5, started=EPOCH, polls=2, rate=None, deadline=1e12
    )
    assert delay <= 5


# --- history (issue 16) --------------------------------------------------------------------

HISTORY = (1750.0, 1820.0, 1790.0, 1700.0, 1880.0, 1810.0, 1760.0)


def test_typical_duration_is_the_median_with_a_robust_spread() -> None:
    policy = PollPolicy()
    typical = typical_duration(HISTORY, policy)
    assert typical is not None
    median, spread = typical
    assert median == 1790.0
    # 2.5 robust deviations (MAD 40 s × 1.4826), but at least a tenth of the median.
    assert spread == pytest.approx(max(2.5 * 1.4826 * 40, 179.0))


def test_a_history_polls_a_status_only_scan_densely_only_near_its_usual_end() -> None:
    policy = PollPolicy()
    finish = 1800.0
    schedule, clock = make(policy)
    assert schedule.learn(HISTORY, started=EPOCH, limit=HOUR)
    assert schedule.expected_finish == EPOCH + 1790.0
    wait = simulate(schedule, blind(finish), clock=clock)

    # go-vaddy: about 100 polls for 30 minutes; without history scangate makes about 46.
    assert len(wait.times) <= 30
    assert wait.times[-1] - finish <= policy.maximum
    assert max(wait.delays) >= HOUR / 4
    early = [t for t in wait.times if t < 1790.0 - 179.0]
    assert len(early) <= 5


def test_a_stopped_scan_among_the_past_ones_does_not_move_the_estimate_much() -> None:
    # CyStack lists a user's stop like a finish (providers/cystack.md "Scan status model").
    schedule, _ = make()
    assert schedule.learn((*HISTORY, 120.0), started=EPOCH)
    assert schedule.expected_finish is not None
    assert abs(schedule.expected_finish - (EPOCH + 1790.0)) <= 30


def test_a_scan_found_running_is_timed_from_its_own_start() -> None:
    schedule, _ = make()
    assert schedule.learn(HISTORY, started=EPOCH - 600)
    assert schedule.expected_finish == EPOCH - 600 + 1790.0


@pytest.mark.parametrize(
    "durations",
    [
        (),
        (1800.0,),
        (1800.0, 1810.0),
        (float("nan"), float("inf"), -5.0, 0.0, 1800.0, 1790.0),
        (60.0, 1800.0, 7200.0, 300.0, 20000.0, 900.0),
        (1e6, 2e6, 3e6, 4e6, 1800.0, 1810.0, 1790.0),
    ],
    ids=["none", "one", "two", "unusable", "wildly-different", "beyond-timeout"],
)
def test_odd_history_is_no_history_and_the_schedule_is_exactly_as_without(
    durations: tuple[float, ...],
) -> None:
    plain, plain_clock = make()
    learnt, learnt_clock = make()
    assert not learnt.learn(durations, started=EPOCH, limit=2 * HOUR)
    assert learnt.expected_finish is None

    without = simulate(plain, blind(1800.0), clock=plain_clock)
    with_odd = simulate(learnt, blind(1800.0), clock=learnt_clock)
    assert with_odd.times == without.times


def test_a_live_reading_takes_over_from_the_history() -> None:
    # A progress provider's first percentage says the scan runs twice as long as usual.
    schedule, clock = make()
    assert schedule.learn(HISTORY, started=EPOCH)
    readings = [(300.0, 8), (600.0, 17), (900.0, 25), (1200.0, 33), (1500.0, 42), (1800.0, 50)]
    for polls, (t, pct) in enumerate(readings, start=1):
        schedule.next_delay(
            running(progress=pct),
            now=EPOCH + t,
            started=EPOCH,
            polls=polls,
            rate=None,
            deadline=EPOCH + 10 * HOUR,
        )
    assert schedule.expected_finish is not None
    assert schedule.expected_finish == pytest.approx(EPOCH + 3600, abs=200)


def test_the_hourly_budget_and_rate_headers_hold_with_a_history() -> None:
    policy = PollPolicy(minimum=2, initial=2, end_game=2, maximum=5, max_requests_per_hour=30)
    schedule, clock = make(policy)
    assert schedule.learn((600.0, 610.0, 590.0, 605.0), started=EPOCH)
    limiter = RateLimiter(limit=10, window=60.0, clock=lambda: clock[0])
    wait = simulate(schedule, blind(3 * HOUR), clock=clock, until=3 * HOUR, limiter=limiter)

    assert wait.most_in_window(HOUR) <= 30
    assert limiter.rejected == 0


def test_a_history_never_polls_a_long_scan_less_often_than_the_blind_cap() -> None:
    policy = PollPolicy()
    schedule, clock = make(policy)
    assert schedule.learn((10000.0, 11000.0, 12000.0, 10500.0, 11500.0), started=EPOCH)
    finish, spread = schedule.expected_finish, schedule.spread
    assert finish is not None and spread is not None
    wait = simulate(schedule, blind(11200.0), clock=clock)
    inside = [d for t, d in wait.steps() if EPOCH + t >= finish - spread]
    assert inside and max(inside) <= policy.maximum
