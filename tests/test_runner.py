"""The runner's promises, driven with an in-memory provider: no HTTP, no emulator.

`Fake` is a `Provider` whose every answer the test scripts (what is running, how each start
ends, each status poll); it records every call, so a test asserts the exact conversation the
runner held with it. Time is virtual (`Clock`), except where the runner's own deadline alarm and
signal handlers are under test (`stoppable`, SIGALRM): those take a fraction of a real second.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
import responses

from scangate import runner as runner_module
from scangate.errors import (
    AmbiguousStartError,
    ExitStatus,
    ProviderAuthError,
    ProviderBusyError,
    ProviderError,
    ProviderRateLimitError,
    ScanIncompleteError,
)
from scangate.http import WAIT_SLICE, Connection
from scangate.model import ScanId, ScanResult, ScanStatus
from scangate.policy import IfRunning, OnTimeout, Policy, ProviderSettings, ScanSettings
from scangate.polling import PollPolicy, PollSchedule, format_clock
from scangate.providers.interface import (
    Capabilities,
    Provider,
    ScanHistory,
    ScanProgress,
    ScanRef,
    StartAttempt,
)
from scangate.redact import Redactor
from scangate.runner import MAX_POLL_FAILURES, Runner, Stop, stoppable

TARGET = "app.example.com"
PENDING = ScanProgress(status=ScanStatus.PENDING, raw_status="queued")
RUNNING = ScanProgress(status=ScanStatus.RUNNING, raw_status="scanning", progress=40.0)
DONE = ScanProgress(status=ScanStatus.COMPLETED, raw_status="finished", progress=100.0)


class Clock:
    """Virtual monotonic and wall time; `sleep` advances both."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


# How a scripted start ends.


@dataclass(frozen=True)
class Started:
    """The start went through: a scan exists and its id came back."""


@dataclass(frozen=True)
class Lost:
    """The answer was lost (`AmbiguousStartError`); `created` says whether a scan was made."""

    created: bool


@dataclass(frozen=True)
class Refused:
    """The provider refused the start with `error`."""

    error: ProviderError


@dataclass(frozen=True)
class Hang:
    """A scan is made, then the answer never comes (in real time: until a `Stop` cuts in)."""


StartOutcome = Started | Lost | Refused | Hang
Poll = ScanProgress | ProviderError


class Fake(Provider):
    """A provider scripted by the test; `calls` is the whole conversation, in order."""

    name: ClassVar[str] = "fake"
    display_name: ClassVar[str] = "Fake"
    DEFAULT_BASE_URL: ClassVar[str] = "https://fake.invalid/v1"
    credentials = ()
    options_schema: ClassVar[Mapping[str, Any]] = {}
    capabilities: ClassVar[Capabilities] = Capabilities(progress=True)

    def __init__(
        self,
        clock: Clock,
        *,
        starts: list[StartOutcome] | None = None,
        polls: list[Poll] | None = None,
        running: ScanRef | None = None,
    ) -> None:
        """`starts` and `polls` answer one call each; the last poll answer then repeats."""
        super().__init__(
            settings=ProviderSettings(name=self.name), env={}, connection=_connection(clock)
        )
        self.clock = clock
        self.starts = list(starts or [Started()])
        self.polls = list(polls or [DONE])
        self.running = running
        self.calls: list[str] = []
        self.attempts: list[StartAttempt] = []
        self.lookup_error: ProviderError | None = None
        """Raised by `find_started` when set (the provider's search is down)."""
        self.scans: dict[str, ScanRef] = {}
        """Every scan that exists on the provider's side (ours and others'), by id."""
        self.made_by: dict[str, str] = {}
        """The start marker of each scan the runner made, by scan id."""
        self.poll_times: list[float] = []
        self.cancelled: list[tuple[str, ScanProgress | None]] = []
        self.hold = threading.Event()
        """Released at the end of a test: a hanging start or cancel stops waiting."""
        self.cancel_hangs = False
        if running is not None:
            self.scans[running.scan_id] = running

    def _made(self, attempt: StartAttempt) -> ScanRef:
        scan = ScanRef(scan_id=ScanId(f"scan-{len(self.scans) + 1}"), target=attempt.target)
        self.scans[scan.scan_id] = scan
        self.made_by[scan.scan_id] = attempt.marker
        return scan

    def preflight(self, target: str) -> None:
        self.calls.append("preflight")

    def find_running(self, target: str) -> ScanRef | None:
        self.calls.append("find_running")
        running, self.running = self.running, None  # theirs ends while (or before) we wait
        return running

    def known_scans(self, target: str) -> frozenset[str]:
        self.calls.append("known_scans")
        return frozenset(self.scans)

    def start(self, attempt: StartAttempt) -> ScanRef:
        self.calls.append("start")
        self.attempts.append(attempt)
        outcome = self.starts.pop(0)
        if isinstance(outcome, Refused):
            raise outcome.error
        if isinstance(outcome, Lost):
            if outcome.created:
                self._made(attempt)
            raise AmbiguousStartError("fake: the start's answer was lost")
        scan = self._made(attempt)
        if isinstance(outcome, Hang):
            self.hold.wait(30)
            raise AssertionError("the start was never cut short")
        return scan

    def find_started(self, attempt: StartAttempt) -> ScanRef | None:
        self.calls.append("find_started")
        assert attempt in self.attempts, "looked up an attempt that was never sent"
        if self.lookup_error is not None:
            raise self.lookup_error
        mine = [s for i, s in self.scans.items() if self.made_by.get(i) == attempt.marker]
        assert len(mine) <= 1, "two scans carry one start's marker"
        return mine[0] if mine else None

    def poll(self, scan: ScanRef) -> ScanProgress:
        self.calls.append(f"poll:{scan.scan_id}")
        self.poll_times.append(self.clock.now)
        assert len(self.poll_times) < 100_000, "the runner never stopped polling"
        answer = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    def fetch(self, scan: ScanRef, progress: ScanProgress) -> ScanResult:
        self.calls.append(f"fetch:{scan.scan_id}:{progress.status.value}")
        return ScanResult(
            provider=self.name,
            scanner=self.display_name,
            scan_id=scan.scan_id,
            target=scan.target,
            status=progress.status,
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
        )

    def cancel(self, scan: ScanRef, progress: ScanProgress | None) -> None:
        self.calls.append(f"cancel:{scan.scan_id}")
        self.cancelled.append((scan.scan_id, progress))
        if self.cancel_hangs:
            self.hold.wait(30)


def _connection(clock: Clock) -> Connection:
    """The provider's connection: never used to send anything, but the base class needs one."""
    return Connection(
        base_url=Fake.DEFAULT_BASE_URL,
        redactor=Redactor(),
        clock=clock.monotonic,
        sleep=clock.sleep,
    )


def make_runner(
    provider: Fake,
    *,
    timeout: float = 600.0,
    if_running: IfRunning = IfRunning.WAIT,
    on_timeout: OnTimeout = OnTimeout.CANCEL,
    real_time: bool = False,
) -> tuple[Runner, list[str]]:
    """A runner for `provider` and the lines it logs; on the virtual clock unless `real_time`."""
    lines: list[str] = []
    policy = Policy(
        provider=ProviderSettings(name=Fake.name),
        scan=ScanSettings(
            target=TARGET, timeout=timeout, if_running=if_running, on_timeout=on_timeout
        ),
    )
    clock = provider.clock
    monotonic, sleep = (time.monotonic, time.sleep) if real_time else (clock.monotonic, clock.sleep)
    made = Runner(
        provider=provider,
        policy=policy,
        log=lines.append,
        deadline=monotonic() + timeout,
        schedule=lambda: PollSchedule(PollPolicy(), wall_clock=clock.monotonic),
        monotonic=monotonic,
        sleep=sleep,
        rng=random.Random(7),
    )
    return made, lines


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def release() -> Iterator[list[Fake]]:
    """Providers to release at the end (a hanging start or cancel thread stops waiting)."""
    fakes: list[Fake] = []
    yield fakes
    for fake in fakes:
        fake.hold.set()


def run_to_the_end(run: Runner) -> ScanResult:
    """What `scangate run` does on the happy path: start, wait, fetch."""
    scan = run.start()
    progress = run.wait(scan)
    return run.fetch(scan, progress)


# -- exactly one start, one wait, one fetch -------------------------------------------------------


def test_a_run_starts_one_scan_polls_it_to_the_end_and_fetches_it_once(clock: Clock) -> None:
    provider = Fake(clock, polls=[PENDING, RUNNING, RUNNING, DONE])
    run, lines = make_runner(provider)
    result = run_to_the_end(run)
    assert provider.calls == [
        "preflight",
        "find_running",
        "known_scans",
        "start",
        "poll:scan-1",
        "poll:scan-1",
        "poll:scan-1",
        "poll:scan-1",
        "fetch:scan-1:completed",
    ]
    assert list(provider.scans) == ["scan-1"]
    assert (result.scan_id, result.status) == ("scan-1", ScanStatus.COMPLETED)
    assert result.queue is not None and result.queue.retries == 0
    assert (run.scan, run.last, run.polls, run.pending) == (provider.scans["scan-1"], DONE, 4, None)
    assert "started Fake scan scan-1" in lines
    # Every wait between polls was a real wait on the clock, not a busy loop.
    gaps = [b - a for a, b in zip(provider.poll_times, provider.poll_times[1:], strict=False)]
    assert len(gaps) == 3 and min(gaps) > 0


def test_the_start_carries_a_marker_and_the_scans_that_existed_before(clock: Clock) -> None:
    theirs = ScanRef(scan_id=ScanId("theirs"), target=TARGET)
    provider = Fake(clock, running=theirs, polls=[DONE])
    run, _ = make_runner(provider)
    run.start()
    (attempt,) = provider.attempts
    assert attempt.target == TARGET
    assert attempt.known_ids == frozenset({"theirs"})
    assert attempt.marker.startswith("scangate-") and len(attempt.marker) == len("scangate-") + 16
    assert provider.made_by["scan-2"] == attempt.marker


# -- a lost start answer: look before starting again, never a duplicate ---------------------------


def test_a_lost_answer_is_looked_up_and_the_scan_it_made_is_used(clock: Clock) -> None:
    provider = Fake(clock, starts=[Lost(created=True)], polls=[RUNNING, DONE])
    run, lines = make_runner(provider)
    result = run_to_the_end(run)
    assert provider.calls[:5] == [
        "preflight",
        "find_running",
        "known_scans",
        "start",
        "find_started",
    ]
    assert provider.calls.count("start") == 1
    assert list(provider.scans) == ["scan-1"]  # no duplicate
    assert result.scan_id == "scan-1"
    assert "fake: the start's answer was lost; looking for the scan it may have created" in lines
    assert "found scan scan-1 created by that request; continuing" in lines


def test_a_lost_answer_that_made_nothing_starts_once_more_and_only_once(clock: Clock) -> None:
    provider = Fake(clock, starts=[Lost(created=False), Started()], polls=[DONE])
    run, lines = make_runner(provider)
    result = run_to_the_end(run)
    starting = [c for c in provider.calls if c in ("known_scans", "start", "find_started")]
    assert starting == ["known_scans", "start", "find_started", "known_scans", "start"]
    assert list(provider.scans) == ["scan-1"] and result.scan_id == "scan-1"
    first, second = provider.attempts
    assert first.marker != second.marker  # each attempt is recognisable on its own
    assert provider.made_by["scan-1"] == second.marker
    assert "no scan was created by that request; starting once more" in lines


def test_two_lost_answers_that_made_nothing_give_up_without_a_third_start(clock: Clock) -> None:
    provider = Fake(clock, starts=[Lost(created=False), Lost(created=False)])
    run, _ = make_runner(provider)
    with pytest.raises(ProviderError, match="the start request failed twice") as err:
        run.start()
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert provider.calls.count("start") == 2 and provider.calls.count("find_started") == 2
    assert provider.calls[-1] == "find_started"
    assert provider.scans == {} and run.scan is None


def test_a_failed_lookup_after_a_lost_answer_never_starts_again(clock: Clock) -> None:
    provider = Fake(clock, starts=[Lost(created=True), Started()])
    failing = provider.lookup_error = ProviderError("fake: the search is down")
    run, _ = make_runner(provider)
    with pytest.raises(ProviderError) as err:
        run.start()
    assert err.value is failing
    assert provider.calls.count("start") == 1 and len(provider.scans) == 1
    assert run.scan is None and run.pending is not None  # a stop would still look for it


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ProviderRateLimitError("fake: monthly scan quota used up"),
        ProviderAuthError("fake: the key may not start scans"),
        ProviderError("fake: target not verified"),
    ],
    ids=["quota", "auth", "error"],
)
def test_a_refused_start_is_final_and_never_looked_up_or_retried(
    clock: Clock, error: ProviderError
) -> None:
    provider = Fake(clock, starts=[Refused(error), Started()])
    run, _ = make_runner(provider)
    with pytest.raises(ProviderError) as err:
        run.start()
    assert err.value is error
    assert provider.calls == ["preflight", "find_running", "known_scans", "start"]
    assert clock.now == 1000.0 and provider.scans == {}


def test_a_start_refused_for_now_is_sent_again_and_makes_one_scan(clock: Clock) -> None:
    busy = ProviderBusyError("fake: 2 of 2 slots", usage="2 of 2 in use", start_refused=True)
    provider = Fake(clock, starts=[Refused(busy), Started()])
    run, _ = make_runner(provider)
    result = run_to_the_end(run)
    assert provider.calls.count("start") == 2 and "find_started" not in provider.calls
    assert list(provider.scans) == ["scan-1"] and result.scan_id == "scan-1"
    assert clock.now > 1000.0  # it waited before trying again
    assert result.queue is not None and result.queue.retries == 1


# -- if_running -----------------------------------------------------------------------------------


THEIRS = ScanRef(scan_id=ScanId("theirs"), target=TARGET)


def test_if_running_fail_exits_4_naming_the_scan_and_starts_nothing(clock: Clock) -> None:
    provider = Fake(clock, running=THEIRS)
    run, _ = make_runner(provider, if_running=IfRunning.FAIL)
    with pytest.raises(ScanIncompleteError) as err:
        run.start()
    assert err.value.exit_status == ExitStatus.SCAN_INCOMPLETE
    assert int(err.value.exit_status) == 4
    assert "theirs" in err.value.message
    assert provider.calls == ["preflight", "find_running"]
    assert run.scan is None


def test_if_running_attach_gates_the_running_scan_and_starts_nothing(clock: Clock) -> None:
    provider = Fake(clock, running=THEIRS, polls=[RUNNING, DONE])
    run, lines = make_runner(provider, if_running=IfRunning.ATTACH)
    result = run_to_the_end(run)
    assert provider.calls == [
        "preflight",
        "find_running",
        "poll:theirs",
        "poll:theirs",
        "fetch:theirs:completed",
    ]
    assert result.scan_id == "theirs" and run.scan == THEIRS
    assert "attaching to scan theirs, already running for app.example.com" in lines


class Slow(Fake):
    """A provider whose every status answer takes 0.2 s, as a real request does."""

    def poll(self, scan: ScanRef) -> ScanProgress:
        self.clock.sleep(0.2)
        return super().poll(scan)


@pytest.mark.parametrize(("mode", "gap"), [(IfRunning.WAIT, 2.0), (IfRunning.ATTACH, 5.0)])
def test_the_first_poll_of_our_own_scan_already_times_the_next(
    clock: Clock, mode: IfRunning, gap: float
) -> None:
    # At 96 % on the first poll: our scan is nearly done (next poll after the minimum
    # interval); a scan we attached to shows no pace until a second reading.
    almost = ScanProgress(status=ScanStatus.RUNNING, raw_status="scanning", progress=96.0)
    running = THEIRS if mode is IfRunning.ATTACH else None
    provider = Slow(clock, running=running, polls=[almost, DONE])
    run, _ = make_runner(provider, if_running=mode)
    assert run_to_the_end(run).status is ScanStatus.COMPLETED
    assert len(provider.poll_times) == 2
    assert provider.poll_times[1] - provider.poll_times[0] == pytest.approx(gap + 0.2, abs=0.05)


def test_if_running_wait_waits_for_that_scan_to_end_then_starts_its_own(clock: Clock) -> None:
    provider = Fake(clock, running=THEIRS, polls=[RUNNING, DONE, RUNNING, DONE])
    run, lines = make_runner(provider, if_running=IfRunning.WAIT)
    scan = run.start()
    assert provider.calls == [
        "preflight",
        "find_running",
        "poll:theirs",
        "poll:theirs",
        "known_scans",
        "start",
    ]
    assert scan.scan_id == "scan-2" and run.scan == scan
    assert run.last is None  # their scan's states are not ours (a stop must not read them)
    assert lines == [
        "Fake target app.example.com busy with scan theirs (not ours); "
        "waiting for it to end before starting ours",
        "other client's scan running (scanning) 40% · 0s elapsed, "
        "10m00s of scan.timeout left · 1 poll, 0 requests",
        "app.example.com free after 5s (the other scan ended: finished); starting our scan",
        "started Fake scan scan-2",
    ]
    run.fetch(scan, run.wait(scan))
    assert provider.calls[6:] == ["poll:scan-2", "poll:scan-2", "fetch:scan-2:completed"]
    # Only our own scan's lines name it and say "completed".
    ours = lines[4:]
    assert ours[0].startswith("scan scan-2 running (scanning) 40% · ")
    assert ours[-1].startswith("scan scan-2 completed (finished) 100% · ")


# -- failed polls ---------------------------------------------------------------------------------


def test_failed_polls_short_of_the_limit_never_lose_the_scan(clock: Clock) -> None:
    failures = [ProviderError(f"fake: 502 #{n}") for n in range(MAX_POLL_FAILURES - 1)]
    provider = Fake(clock, polls=[*failures, RUNNING, *failures, DONE])
    run, lines = make_runner(provider, timeout=7200)
    result = run_to_the_end(run)
    assert result.status is ScanStatus.COMPLETED
    assert provider.calls.count("poll:scan-1") == 2 * MAX_POLL_FAILURES
    assert provider.calls.count("start") == 1 and provider.calls[-1] == "fetch:scan-1:completed"
    tracked = [line for line in lines if line.startswith("status poll failed")]
    assert len(tracked) == 2 * (MAX_POLL_FAILURES - 1)
    assert tracked[0] == "status poll failed (fake: 502 #0); still tracking scan-1"
    assert run.polls == 2  # only the answered polls count
    # Each failure backs off: 2 s, 4 s, 8 s ... up to 30 s before the next try.
    gaps = [b - a for a, b in zip(provider.poll_times, provider.poll_times[1:], strict=False)]
    for n, gap in enumerate(gaps[: MAX_POLL_FAILURES - 1], start=1):
        assert gap >= min(2.0**n, 30.0)


def test_the_limit_of_failed_polls_in_a_row_ends_the_wait_with_the_error(clock: Clock) -> None:
    last = ProviderError("fake: still down")
    provider = Fake(clock, polls=[*[ProviderError("down")] * (MAX_POLL_FAILURES - 1), last])
    run, _ = make_runner(provider, timeout=7200)
    scan = run.start()
    with pytest.raises(ProviderError) as err:
        run.wait(scan)
    assert err.value is last
    assert provider.calls.count("poll:scan-1") == MAX_POLL_FAILURES
    assert not any(c.startswith(("fetch", "cancel")) for c in provider.calls)
    assert run.scan == scan  # kept: the error path reports it and says how to resume


def test_a_rejected_credential_while_polling_ends_the_wait_at_once(clock: Clock) -> None:
    provider = Fake(clock, polls=[ProviderAuthError("fake: token revoked")])
    run, _ = make_runner(provider)
    scan = run.start()
    with pytest.raises(ProviderAuthError):
        run.wait(scan)
    assert provider.calls.count("poll:scan-1") == 1


# -- timeout and signals: cancel within the budget ------------------------------------------------


@pytest.fixture
def main_thread() -> None:
    """The deadline alarm and the signal handlers only exist in the main thread."""
    assert threading.current_thread() is threading.main_thread()


def _wait_until_stopped(run: Runner, text: str = "scan.timeout of 1s reached") -> Stop:
    with pytest.raises(Stop) as stopped, stoppable(run.deadline, text):
        scan = run.start()
        run.wait(scan)
    return stopped.value


@pytest.mark.usefixtures("main_thread")
def test_the_timeout_stops_the_wait_cancels_the_scan_and_exits_4(clock: Clock) -> None:
    provider = Fake(clock, polls=[RUNNING])
    run, _ = make_runner(provider, timeout=0.3, real_time=True)
    began = time.monotonic()
    stop = _wait_until_stopped(run)
    assert time.monotonic() - began == pytest.approx(0.3, abs=0.25)
    assert (stop.status, stop.exit_status) == (ScanStatus.TIMED_OUT, ExitStatus.SCAN_INCOMPLETE)
    assert int(stop.exit_status) == 4
    assert run.stop_remote() == "cancelled scan scan-1"
    assert provider.cancelled == [("scan-1", RUNNING)]  # the right call for its last state
    partial = run.partial(stop.status, stop.why)
    assert (partial.scan_id, partial.status, partial.completeness) == (
        "scan-1",
        ScanStatus.TIMED_OUT,
        40,
    )
    assert partial.message == "scan.timeout of 1s reached"
    assert not any(c.startswith("fetch") for c in provider.calls)


@pytest.mark.usefixtures("main_thread")
def test_a_cancel_that_hangs_is_given_up_within_the_budget(
    clock: Clock, release: list[Fake], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "CANCEL_BUDGET", 1.0)
    provider = Fake(clock, polls=[RUNNING])
    provider.cancel_hangs = True
    release.append(provider)
    run, _ = make_runner(provider, timeout=0.2, real_time=True)
    _wait_until_stopped(run)
    began = time.monotonic()
    said = run.stop_remote()
    assert time.monotonic() - began < 1.0 + 0.5
    assert said == "cancel of scan scan-1 not confirmed within 1 s"
    assert provider.calls.count("cancel:scan-1") == 1


@pytest.mark.usefixtures("main_thread")
def test_on_timeout_keep_cancels_nothing_and_says_how_to_resume(clock: Clock) -> None:
    provider = Fake(clock, polls=[RUNNING])
    run, _ = make_runner(provider, timeout=0.2, on_timeout=OnTimeout.KEEP, real_time=True)
    _wait_until_stopped(run)
    said = run.stop_remote()
    assert "left running (on_timeout: keep)" in said and "scangate wait --scan-id scan-1" in said
    assert provider.cancelled == []


@pytest.mark.usefixtures("main_thread")
@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGTERM, ExitStatus.TERMINATED), (signal.SIGINT, ExitStatus.INTERRUPTED)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_while_waiting_cancels_the_scan(
    clock: Clock, sig: signal.Signals, code: ExitStatus
) -> None:
    provider = Fake(clock, polls=[RUNNING])
    polled = provider.poll

    def poll_then_signal(scan: ScanRef) -> ScanProgress:
        answer = polled(scan)
        os.kill(os.getpid(), sig)  # the handler runs here, in the main thread, mid-poll
        return answer

    provider.poll = poll_then_signal  # type: ignore[method-assign]
    run, _ = make_runner(provider, timeout=60, real_time=True)
    stop = _wait_until_stopped(run)
    assert (stop.status, stop.exit_status) == (ScanStatus.INTERRUPTED, code)
    assert int(code) in (130, 143)
    assert provider.calls.count("poll:scan-1") == 1
    assert run.stop_remote() == "cancelled scan scan-1"
    assert provider.cancelled == [("scan-1", None)]  # the poll it cut short told nothing


@pytest.mark.usefixtures("main_thread")
def test_a_stop_during_the_start_finds_the_scan_it_made_and_cancels_it(
    clock: Clock, release: list[Fake]
) -> None:
    provider = Fake(clock, starts=[Hang()])
    release.append(provider)
    run, _ = make_runner(provider, timeout=0.2, real_time=True)
    _wait_until_stopped(run)
    owned, pending = run.scan, run.pending  # (read apart: the stop below changes `run.scan`)
    assert owned is None and pending is not None
    said = run.stop_remote()
    assert said == "the interrupted start request created scan scan-1; cancelled scan scan-1"
    assert run.scan == provider.scans["scan-1"]
    assert provider.calls[-2:] == ["find_started", "cancel:scan-1"]
    assert provider.calls.count("start") == 1


def test_a_scan_that_already_ended_is_not_cancelled(clock: Clock) -> None:
    provider = Fake(clock, polls=[DONE])
    run, _ = make_runner(provider)
    scan = run.start()
    run.wait(scan)
    assert run.stop_remote() == "scan scan-1 had already ended (finished)"
    assert provider.cancelled == []


# -- the target's history times the polls (issue 16) -------------------------------------------

SCANNING = ScanProgress(status=ScanStatus.RUNNING, raw_status="scanning")
"""A status-only answer (VAddy): no percentage, no ETA."""
PAST = ScanHistory((1790.0, 1750.0, 1820.0, 1700.0, 1880.0), source="fake list")


class Historied(Fake):
    """A status-only provider whose scans take 30 minutes and that knows their history."""

    def __init__(
        self, clock: Clock, *, history: ScanHistory | Exception | None, **kwargs: Any
    ) -> None:
        super().__init__(clock, **kwargs)
        self.history = history
        self.ends_at: float | None = None

    def expected_duration(self, target: str) -> ScanHistory | None:
        self.calls.append("history")
        if isinstance(self.history, Exception):
            raise self.history
        return self.history

    def start(self, attempt: StartAttempt) -> ScanRef:
        self.ends_at = self.clock.now + 1800.0
        return super().start(attempt)

    def poll(self, scan: ScanRef) -> ScanProgress:
        super().poll(scan)
        assert self.ends_at is not None
        return DONE if self.clock.now >= self.ends_at else SCANNING


def test_the_history_is_asked_once_and_spares_most_polls_of_a_status_only_scan(
    clock: Clock,
) -> None:
    provider = Historied(clock, history=PAST)
    run, _ = make_runner(provider, timeout=3600.0)
    result = run_to_the_end(run)

    assert result.status is ScanStatus.COMPLETED
    assert provider.calls.count("history") == 1
    assert provider.calls.index("history") == provider.calls.index("start") + 1
    # Without history: about 46 polls for 30 minutes (benchmarks/polling.py).
    assert len(provider.poll_times) <= 30
    gaps = [b - a for a, b in zip(provider.poll_times, provider.poll_times[1:], strict=False)]
    assert gaps[0] >= 1000


@pytest.mark.parametrize(
    "failure",
    [
        ProviderError("fake: the list is down (HTTP 503)"),
        ProviderAuthError("fake: HTTP 401"),
        KeyError("start_time"),
        None,
        ScanHistory(()),
    ],
    ids=["provider-error", "auth-error", "bug", "none", "empty"],
)
def test_a_history_that_fails_or_is_missing_leaves_the_wait_as_without_it(
    clock: Clock, failure: Exception | ScanHistory | None
) -> None:
    def polls_of(history: Exception | ScanHistory | None) -> list[float]:
        here = Clock()
        provider = Historied(here, history=history)
        run, _ = make_runner(provider, timeout=3600.0)
        assert run_to_the_end(run).status is ScanStatus.COMPLETED
        assert provider.calls.count("history") == 1
        return [t - provider.poll_times[0] for t in provider.poll_times]

    assert polls_of(failure) == polls_of(ScanHistory((1800.0,)))  # one scan: no history


def test_an_attached_scan_is_timed_from_its_own_start(clock: Clock) -> None:
    # Found running, begun 20 minutes ago: it should end in about 10 minutes, not 30.
    began = datetime.fromtimestamp(clock.now - 1200.0, UTC)
    theirs = ScanRef(scan_id=ScanId("scan-theirs"), target=TARGET, created_at=began)
    provider = Historied(clock, history=PAST, running=theirs)
    provider.ends_at = clock.now + 600.0
    run, _ = make_runner(provider, timeout=3600.0, if_running=IfRunning.ATTACH)
    scan = run.start()
    assert run.wait(scan).status is ScanStatus.COMPLETED

    assert provider.calls.count("history") == 1
    first_gap = provider.poll_times[1] - provider.poll_times[0]
    assert 200 <= first_gap <= 600


def test_a_scan_of_unknown_age_is_waited_for_without_asking_for_history(clock: Clock) -> None:
    theirs = ScanRef(scan_id=ScanId("scan-theirs"), target=TARGET)
    provider = Historied(clock, history=PAST, running=theirs)
    provider.ends_at = clock.now + 600.0
    run, _ = make_runner(provider, timeout=3600.0, if_running=IfRunning.ATTACH)
    assert run.wait(run.start()).status is ScanStatus.COMPLETED
    assert "history" not in provider.calls


# -- the waiting log: heartbeat and rate-limit lines (issue 17) -------------------------------

STATUS_ONLY = ScanProgress(status=ScanStatus.RUNNING, raw_status="running")
"""A poll answer with no progress or ETA (VAddy): the schedule backs off towards a minute."""


def stamped(run: Runner, clock: Clock) -> list[tuple[float, str]]:
    """Make `run` log (virtual time, line) pairs into the returned list."""
    lines: list[tuple[float, str]] = []
    run.log = lambda line: lines.append((clock.now, line))
    return lines


def longest_silence(lines: list[tuple[float, str]], begun: float, ended: float) -> float:
    """The longest stretch between `begun`, the lines' times and `ended`."""
    times = [begun, *(t for t, _ in lines), ended]
    return max(b - a for a, b in zip(times, times[1:], strict=False))


def test_a_long_status_only_wait_writes_a_line_every_30_seconds_with_time_and_budget(
    clock: Clock,
) -> None:
    provider = Fake(clock, polls=[*[STATUS_ONLY] * 40, DONE])
    run, _ = make_runner(provider, timeout=3600.0)
    lines = stamped(run, clock)
    scan = run.start()
    begun = clock.now
    run.wait(scan)
    waiting = [(t, line) for t, line in lines if line.startswith("scan scan-1 ")]
    assert clock.now - begun > 20 * 60  # the backoff reached its minute between polls
    assert longest_silence(waiting, begun, clock.now) <= 30.0
    # Every line, heartbeat or change, says how long it has been and what is left.
    for t, line in waiting:
        elapsed = format_clock(t - begun)
        left = format_clock(run.deadline - t)
        assert f" · {elapsed} elapsed, {left} of scan.timeout left · " in line, line
    assert waiting[-1][1].startswith("scan scan-1 completed (finished) 100% · ")
    assert waiting[-1][1].endswith(f" · {len(provider.poll_times)} polls, 0 requests")


@pytest.fixture
def http_mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def test_a_long_rate_limit_wait_writes_a_line_at_least_every_30_seconds(
    clock: Clock, http_mock: responses.RequestsMock
) -> None:
    # Waits over `backoff_max` (30 s) are the HTTP client's own: urllib3 hands them back.
    url = f"{Fake.DEFAULT_BASE_URL}/scans/1"
    for retry_after in ("40", "100"):
        http_mock.get(url, status=429, headers={"Retry-After": retry_after})
        http_mock.get(url, json={"status": "running"})
    provider = Fake(clock)
    run, _ = make_runner(provider, timeout=600.0)
    lines = stamped(run, clock)
    began = clock.now
    provider.http.request("GET", "scans/1")
    clock.sleep(2.0)
    provider.http.request("GET", "scans/1")  # a new long wait is said at once, in full
    assert [round(t - began) for t, _ in lines] == [0, 25, 42, 67, 92, 117]
    assert longest_silence(lines, began, clock.now) <= 30.0
    assert lines[0][1] == (
        "rate limited by Fake, waiting 40s (Retry-After; HTTP 429 on GET /v1/scans/1), "
        "10m00s of scan.timeout left"
    )
    assert lines[2][1] == (
        "rate limited by Fake, waiting 1m40s (Retry-After; HTTP 429 on GET /v1/scans/1), "
        "9m18s of scan.timeout left"
    )
    assert lines[3][1].startswith("rate limited by Fake, waiting 1m15s (Retry-After")


def told_to_wait(provider: Fake, clock: Clock, seconds: float) -> None:
    """What `HttpClient` does for a rate-limit wait: tell `on_wait`, sleep a slice, repeat."""
    assert provider.http.on_wait is not None, "the runner listens to the provider's waits"
    left = seconds
    while left > 0:
        provider.http.on_wait(left, "Retry-After; HTTP 429 on GET /v1/scans/1")
        clock.sleep(min(left, WAIT_SLICE))
        left -= WAIT_SLICE


def test_short_rate_limit_waits_within_the_cadence_add_no_line(clock: Clock) -> None:
    provider = Fake(clock)
    run, _ = make_runner(provider, timeout=600.0)
    lines = stamped(run, clock)
    began = clock.now
    for _ in range(10):  # a paced plan: a 3 s wait after every request, for a minute
        told_to_wait(provider, clock, 3.0)
        clock.sleep(3.0)
    # Ten waits, three lines: the first, then the one that runs into each 25 s cadence.
    assert [round(t - began) for t, _ in lines] == [0, 24, 48]
    assert all(line.startswith("rate limited by Fake, waiting 3s (") for _, line in lines)


def test_a_retry_after_that_sets_the_next_poll_says_so_then_keeps_the_heartbeat(
    clock: Clock,
) -> None:
    provider = Fake(clock, polls=[RUNNING, RUNNING, DONE])
    polled = provider.poll

    def poll_then_hold(scan: ScanRef) -> ScanProgress:
        answer = polled(scan)
        if len(provider.poll_times) == 1:  # the provider's answer asked for 90 s of quiet
            provider.http.rate.hold_until = clock.now + 90.0
        return answer

    provider.poll = poll_then_hold  # type: ignore[method-assign]
    run, _ = make_runner(provider, timeout=600.0)
    lines = stamped(run, clock)
    scan = run.start()
    begun = clock.now
    run.wait(scan)
    told = [line for _, line in lines if line.startswith("rate limited by Fake")]
    assert told == [
        "rate limited by Fake, waiting 1m30s (Retry-After, before the next status poll), "
        "10m00s of scan.timeout left"
    ]
    assert provider.poll_times[1] - provider.poll_times[0] >= 90.0
    assert longest_silence(lines[1:], begun, clock.now) <= 30.0
