"""The runner's start queue: a plan limit that clears by itself is waited for (issue 14).

A scripted provider on a virtual clock: each start answers from a list (a refusal for now, a
refusal that never clears, a lost answer, or a scan), so every path runs in microseconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from scangate.errors import (
    AmbiguousStartError,
    ExitStatus,
    ProviderBusyError,
    ProviderError,
    ProviderRateLimitError,
    QueueTimeoutError,
)
from scangate.http import Connection
from scangate.model import ScanId, ScanResult, ScanStatus
from scangate.policy import IfRunning, Policy, ProviderSettings, ScanSettings
from scangate.polling import PollPolicy, PollSchedule
from scangate.providers.interface import (
    Capabilities,
    Provider,
    ScanProgress,
    ScanRef,
    StartAttempt,
)
from scangate.redact import Redactor
from scangate.runner import QUEUE_LINE, Runner

TARGET = "app.example.com"
SLOTS = ProviderBusyError(
    "plan limit", queue="a free scan slot", usage="3 of 3 in use", start_refused=True
)


class Clock:
    """Virtual monotonic time; `sleep` advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Answer = Exception | Callable[[], Exception | None] | None
"""A start's scripted answer: raise it, call it, or (None) start a scan."""


class Scripted(Provider):
    """A provider whose starts answer from `answers`, one each, then start a scan."""

    name: ClassVar[str] = "scripted"
    display_name: ClassVar[str] = "Scripted"
    DEFAULT_BASE_URL: ClassVar[str] = "https://scripted.invalid/v1"
    credentials = ()
    options_schema: ClassVar[Mapping[str, Any]] = {}
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, clock: Clock, answers: list[Answer], running: list[bool] | None = None):
        connection = Connection(
            base_url=self.DEFAULT_BASE_URL, redactor=Redactor(), sleep=clock.sleep
        )
        super().__init__(settings=ProviderSettings(name="scripted"), env={}, connection=connection)
        self.clock = clock
        self.answers = list(answers)
        self.running = list(running or [])
        self.starts: list[float] = []
        self.lookups = 0
        self.events: list[str] = []

    def find_running(self, target: str) -> ScanRef | None:
        busy = self.running.pop(0) if self.running else False
        self.events.append(f"find_running:{busy}")
        return ScanRef(scan_id=ScanId("theirs"), target=target) if busy else None

    def start(self, attempt: StartAttempt) -> ScanRef:
        self.starts.append(self.clock.now)
        answer = self.answers.pop(0) if self.answers else None
        if callable(answer):
            answer = answer()
        if answer is not None:
            raise answer
        return ScanRef(scan_id=ScanId(f"scan-{len(self.starts)}"), target=attempt.target)

    def find_started(self, attempt: StartAttempt) -> ScanRef | None:
        self.lookups += 1
        raise ProviderBusyError("lookup throttled", start_refused=False)

    def poll(self, scan: ScanRef) -> ScanProgress:
        self.events.append(f"poll:{scan.scan_id}")
        return ScanProgress(status=ScanStatus.COMPLETED, raw_status="done")

    def fetch(self, scan: ScanRef, progress: ScanProgress) -> ScanResult:
        return ScanResult(
            provider=self.name,
            scanner=self.display_name,
            scan_id=scan.scan_id,
            target=scan.target,
            status=progress.status,
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
        )

    def cancel(self, scan: ScanRef, progress: ScanProgress | None) -> None:
        raise AssertionError("nothing to cancel")


def runner(
    provider: Scripted, timeout: float = 600.0, if_running: IfRunning = IfRunning.WAIT
) -> tuple[Runner, list[str]]:
    lines: list[str] = []
    policy = Policy(
        provider=ProviderSettings(name="scripted"),
        scan=ScanSettings(target=TARGET, timeout=timeout, if_running=if_running),
    )
    clock = provider.clock
    made = Runner(
        provider=provider,
        policy=policy,
        log=lines.append,
        deadline=clock.now + timeout,
        schedule=lambda: PollSchedule(PollPolicy(), wall_clock=lambda: clock.now),
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        rng=random.Random(3),
    )
    return made, lines


def test_a_start_refused_for_now_is_tried_again_after_a_jittered_backoff() -> None:
    clock = Clock()
    provider = Scripted(clock, [SLOTS, SLOTS, SLOTS])
    run, lines = runner(provider)
    scan = run.start()
    assert scan.scan_id == "scan-4"
    gaps = [b - a for a, b in zip(provider.starts, provider.starts[1:], strict=False)]
    # Full jitter below a ceiling that doubles (2 s, 4 s, 8 s), never under a second.
    rng = random.Random(3)
    expected = [max(1.0, rng.uniform(0.0, 2.0 * 2**n)) for n in range(3)]
    assert gaps == pytest.approx(expected)
    assert lines[0] == "waiting for a free scan slot: 3 of 3 in use, 10m00s of budget left"
    assert lines[-1] == "started Scripted scan scan-4"
    stats = run.queue_stats()
    assert stats.queued_seconds == pytest.approx(round(sum(expected), 1))
    assert (stats.retries, stats.reason) == (3, "a free scan slot (3 of 3 in use)")
    assert run.pending is None


def test_a_long_queue_says_so_at_least_every_30_seconds() -> None:
    clock = Clock()
    provider = Scripted(clock, [SLOTS] * 12)
    run, _ = runner(provider, timeout=3600)
    stamps: list[float] = []
    run.log = lambda line: stamps.append(clock.now) if line.startswith("waiting for") else None
    run.start()
    first, last = provider.starts[0], provider.starts[-1]
    assert last - first > 120  # a long queue: the ceiling grew to a minute
    gaps = [b - a for a, b in zip([first, *stamps], [*stamps, last], strict=True)]
    assert max(gaps) <= QUEUE_LINE <= 30


def test_the_deadline_while_queued_exits_4_naming_the_queue() -> None:
    clock = Clock()
    provider = Scripted(clock, [SLOTS] * 1000)
    run, lines = runner(provider, timeout=45)
    with pytest.raises(QueueTimeoutError) as err:
        run.start()
    assert err.value.exit_status == ExitStatus.SCAN_INCOMPLETE
    message = err.value.message
    assert "scan.timeout of 45s ran out while waiting for a free scan slot (3 of 3 in use)" in (
        message
    )
    assert "no scan was started" in message
    assert clock.now - 1000.0 == pytest.approx(45.0)  # every wait cut at the deadline
    assert all(start <= 1045.0 for start in provider.starts)
    assert run.pending is None and run.scan is None


def test_a_wait_asked_for_past_the_deadline_gives_up_at_once() -> None:
    clock = Clock()
    late = ProviderBusyError(
        "rate", queue="the request rate limit", retry_after=900.0, start_refused=True
    )
    provider = Scripted(clock, [late])
    run, _ = runner(provider, timeout=300)
    with pytest.raises(QueueTimeoutError, match="the request rate limit"):
        run.start()
    assert clock.sleeps == []
    assert len(provider.starts) == 1


def test_a_retry_after_within_the_budget_is_waited_exactly() -> None:
    clock = Clock()
    wait = ProviderBusyError("rate", queue="q", retry_after=12.0, start_refused=True)
    provider = Scripted(clock, [wait])
    run, _ = runner(provider)
    run.start()
    assert provider.starts[1] - provider.starts[0] == pytest.approx(12.0)


def test_a_refusal_that_never_clears_is_not_queued() -> None:
    clock = Clock()
    provider = Scripted(clock, [ProviderRateLimitError("monthly scan quota exhausted")])
    run, _ = runner(provider)
    with pytest.raises(ProviderRateLimitError) as err:
        run.start()
    assert not isinstance(err.value, ProviderBusyError)
    assert err.value.exit_status == ExitStatus.PROVIDER_ERROR
    assert len(provider.starts) == 1 and clock.sleeps == []


def test_a_busy_lookup_inside_the_start_is_no_proof_and_is_not_queued() -> None:
    clock = Clock()
    inside = ProviderBusyError("search throttled", start_refused=False)
    provider = Scripted(clock, [inside])
    run, _ = runner(provider)
    with pytest.raises(ProviderRateLimitError) as err:
        run.start()
    assert not isinstance(err.value, ProviderBusyError)
    assert len(provider.starts) == 1
    assert run.pending is not None  # the start may have made a scan: a stop looks for it


def test_a_throttled_lookup_after_a_lost_answer_never_starts_another_scan() -> None:
    clock = Clock()
    provider = Scripted(clock, [AmbiguousStartError("no answer")])
    run, _ = runner(provider)
    with pytest.raises(ProviderError) as err:
        run.start()
    assert not isinstance(err.value, ProviderBusyError)
    assert (len(provider.starts), provider.lookups) == (1, 1)


def busy_target() -> ProviderBusyError:
    return ProviderBusyError(
        "project busy",
        queue="project p to be free",
        usage="a scan is running on it",
        per_target=True,
        start_refused=True,
    )


def test_a_busy_target_under_if_running_wait_waits_for_that_scan_then_starts() -> None:
    clock = Clock()
    # Free at the check, taken by another job just before our start, running when we look.
    provider = Scripted(clock, [busy_target()], running=[False, True])
    run, lines = runner(provider)
    scan = run.start()
    assert scan.scan_id == "scan-2"
    assert provider.events == ["find_running:False", "find_running:True", "poll:theirs"]
    busy, free = lines[1:3]
    assert busy == (
        "Scripted target app.example.com busy with scan theirs (not ours); "
        "waiting for it to end before starting ours"
    )
    # Their scan's end reads as the target coming free, never as a scan of ours completing.
    assert free.startswith("app.example.com free after ") and free.endswith(
        " (the other scan ended: done); starting our scan"
    )
    assert lines[-1] == "started Scripted scan scan-2"
    assert not any("completed" in line for line in lines)


def test_a_busy_target_under_if_running_fail_exits_4() -> None:
    clock = Clock()
    provider = Scripted(clock, [busy_target()])
    run, _ = runner(provider, if_running=IfRunning.FAIL)
    with pytest.raises(ProviderBusyError) as err:
        run.start()
    assert len(provider.starts) == 1
    assert err.value.per_target


def test_the_heartbeat_and_the_result_carry_the_queue() -> None:
    clock = Clock()
    provider = Scripted(clock, [SLOTS])
    run, lines = runner(provider)
    scan = run.start()
    progress = run.wait(scan)
    result = run.fetch(scan, progress)
    assert result.queue is not None
    assert result.queue.reason == "a free scan slot (3 of 3 in use)"
    assert result.queue.retries == 1 and result.queue.queued_seconds > 0
    status = next(line for line in lines if line.startswith(f"scan {scan.scan_id} completed"))
    assert run.queue_note().endswith(", 1 retry")
    assert status.endswith(f" · {run.queue_note()}")
