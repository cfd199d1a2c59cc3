"""The runner: start (or find) one scan, wait for it, fetch it; never lose or duplicate a scan."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import FrameType

from scangate.errors import (
    AmbiguousStartError,
    ExitStatus,
    ProviderAuthError,
    ProviderError,
    ScanIncompleteError,
)
from scangate.model import ScanResult, ScanStatus
from scangate.policy import IfRunning, OnTimeout, Policy
from scangate.polling import PollSchedule, ProgressReporter
from scangate.providers.interface import Provider, ScanProgress, ScanRef, StartAttempt

CANCEL_BUDGET = 3.0
"""Seconds the remote cancel may take on timeout or a signal; reports need the rest of 5 s."""
HEARTBEAT_SLICE = 60.0
"""Longest single sleep, so the heartbeat line keeps coming during a long wait (design §5)."""
MAX_POLL_FAILURES = 10
"""Consecutive failed polls (each already retried by the HTTP layer) before giving up."""


class Stop(BaseException):
    """Raised inside the wait by SIGINT, SIGTERM or the `scan.timeout` alarm.

    A `BaseException`, so that no `except Exception` in a library swallows it.
    """

    def __init__(self, status: ScanStatus, exit_status: ExitStatus, why: str) -> None:
        """Create a new `Stop` that ends the run with `status` and `exit_status`."""
        super().__init__(why)
        self.status = status
        self.exit_status = exit_status
        self.why = why


_SIGNALS = {
    signal.SIGINT: (ExitStatus.INTERRUPTED, "SIGINT"),
    signal.SIGTERM: (ExitStatus.TERMINATED, "SIGTERM"),
}


def _signal_stop(signum: int) -> Stop:
    code, name = _SIGNALS[signal.Signals(signum)]
    return Stop(ScanStatus.INTERRUPTED, code, f"interrupted by {name}")


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def signal_guard() -> Iterator[list[Stop]]:
    """For a whole command: record SIGINT/SIGTERM instead of dying, restore handlers at the end.

    Outside `stoppable`, a signal must not kill the process half-way through cancelling the
    remote scan or writing reports (CI gives ~7 s; design §5); it is recorded in the list.
    """
    late: list[Stop] = []
    if not _in_main_thread():
        yield late
        return

    def record(signum: int, _frame: FrameType | None) -> None:
        late.append(_signal_stop(signum))

    previous = {sig: signal.signal(sig, record) for sig in _SIGNALS}
    try:
        yield late
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def stoppable(deadline: float, timeout_text: str) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM and the monotonic `deadline` raise `Stop`.

    The deadline is an interval timer (SIGALRM), so it interrupts a blocking request too.
    """
    if not _in_main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise _signal_stop(signum)

    def on_alarm(_signum: int, _frame: FrameType | None) -> None:
        raise Stop(ScanStatus.TIMED_OUT, ExitStatus.SCAN_INCOMPLETE, timeout_text)

    previous = {sig: signal.signal(sig, on_signal) for sig in _SIGNALS}
    previous_alarm = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(0.001, deadline - time.monotonic()))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class Runner:
    """Drives one provider through start → wait → fetch for one policy."""

    provider: Provider
    policy: Policy
    log: Callable[[str], None]
    """Writes one already-redacted progress line to the user."""
    deadline: float
    """`time.monotonic()` value at which `scan.timeout` runs out."""
    schedule: Callable[[], PollSchedule]
    """Makes a fresh (stateful) schedule for each scan waited on."""
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    scan: ScanRef | None = None
    """The scan this run owns or attached to, once known (for cancel and partial reports)."""
    last: ScanProgress | None = None
    polls: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    pending: StartAttempt | None = None
    """The start attempt in flight: when a `Stop` cuts it short, it may have made a scan."""

    @property
    def target(self) -> str:
        """The policy's scan target."""
        return self.policy.scan.target

    def start(self) -> ScanRef:
        """Check the target, honour `if_running`, and start exactly one scan (or attach)."""
        self.provider.preflight(self.target)
        running = self.provider.find_running(self.target)
        if running is not None:
            mode = self.policy.scan.if_running
            if mode is IfRunning.FAIL:
                raise ScanIncompleteError(
                    f"a scan is already running for {self.target}: {running.scan_id}",
                    hint="wait for it to finish, or set scan.if_running to wait or attach",
                )
            if mode is IfRunning.ATTACH:
                self.log(f"attaching to scan {running.scan_id}, already running for {self.target}")
                self.scan = running
                return running
            self.log(f"scan {running.scan_id} is already running for {self.target}; waiting")
            self.wait(running, own=False)
        self.scan = self._start_once()
        self.pending = None
        self.log(f"started {self.provider.display_name} scan {self.scan.scan_id}")
        return self.scan

    def _start_once(self) -> ScanRef:
        """Start a scan; after an ambiguous failure look for it before trying again (design §9)."""
        for attempt_number in (1, 2):
            attempt = StartAttempt(
                target=self.target,
                marker=f"scangate-{uuid.uuid4().hex[:16]}",
                sent_at=datetime.now(timezone.utc),
                known_ids=self.provider.known_scans(self.target),
            )
            self.pending = attempt
            try:
                return self.provider.start(attempt)
            except AmbiguousStartError as exc:
                self.log(f"{exc.message}; looking for the scan it may have created")
                found = self.provider.find_started(attempt)
                if found is not None:
                    self.log(f"found scan {found.scan_id} created by that request; continuing")
                    return found
                if attempt_number == 2:
                    raise ProviderError(
                        f"{self.provider.name}: the start request failed twice and "
                        "no scan was created",
                        hint="check the provider's status page and try again later",
                    ) from None
                self.log("no scan was created by that request; starting once more")
        raise AssertionError("unreachable")

    def wait(self, scan: ScanRef, *, own: bool = True) -> ScanProgress:
        """Poll `scan` until it ends; a failed poll never loses it (design §5).

        `own` is False when waiting for somebody else's scan (`if_running: wait`).
        """
        reporter = ProgressReporter(write=self.log, clock=self.monotonic)
        schedule = self.schedule()
        begun = self.monotonic()
        failures = 0
        progress = ScanProgress(status=ScanStatus.PENDING, raw_status="unknown")
        while True:
            try:
                progress = self.provider.poll(scan)
                failures = 0
            except ProviderAuthError:
                raise
            except ProviderError as exc:
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise
                self.log(f"status poll failed ({exc.message}); still tracking {scan.scan_id}")
            else:
                self.polls += 1
                if own:
                    self.last = progress
                reporter.update(progress, self.polls)
                if progress.status.terminal:
                    return progress
            delay = schedule.next_delay(
                progress,
                now=self.monotonic(),
                started=begun,
                polls=self.polls,
                rate=self.provider.http.rate,
                deadline=self.deadline,
                requests=self.provider.http.requests_sent,
            )
            if failures:
                delay = max(delay, min(2.0**failures, 30.0))
            self._sleep(min(delay, max(0.0, self.deadline - self.monotonic())), reporter)

    def _sleep(self, seconds: float, reporter: ProgressReporter) -> None:
        """Sleep in slices of at most a heartbeat, so a long wait still shows it is alive."""
        end = self.monotonic() + seconds
        while (left := end - self.monotonic()) > 0:
            self.sleep(min(left, HEARTBEAT_SLICE))
            reporter.tick()

    def fetch(self, scan: ScanRef, progress: ScanProgress) -> ScanResult:
        """Fetch the result of a scan that ended."""
        return self.provider.fetch(scan, progress)

    def partial(self, status: ScanStatus, why: str) -> ScanResult:
        """A result for a scan that did not end normally (timeout, signal, provider error)."""
        scan = self.scan
        assert scan is not None
        last = self.last
        return ScanResult(
            provider=self.provider.name,
            scanner=self.provider.display_name,
            scan_id=scan.scan_id,
            target=scan.target,
            status=status,
            completeness=int(last.progress) if last and last.progress is not None else 0,
            started_at=self.started_at,
            finished_at=datetime.now(timezone.utc),
            console_url=scan.console_url,
            message=why,
        )

    def stop_remote(self) -> str:
        """Cancel the remote scan per `on_timeout`, within `CANCEL_BUDGET`; say what happened.

        When the `Stop` cut a start short, the scan that start may have made is looked up first
        (as after any ambiguous start, design §9 "Faults"), so it is neither lost nor left
        running; `scan` is set when it is found. Returns "" when there is no scan to stop.
        """
        if self.scan is None and self.pending is None:
            return ""
        if self.scan is not None and (settled := self._kept_or_ended(self.scan)):
            return settled
        said: list[str] = []
        found: list[ScanRef] = []
        worker = threading.Thread(
            target=self._settle, args=(said, found), name="scangate-cancel", daemon=True
        )
        worker.start()
        worker.join(CANCEL_BUDGET)
        said = list(said)  # a snapshot: a worker past its budget may still append
        if found and self.scan is None:
            self.scan = found[0]
        if worker.is_alive():
            what = f"scan {self.scan.scan_id}" if self.scan else "the interrupted start"
            said.append(f"cancel of {what} not confirmed within {CANCEL_BUDGET:.0f} s")
        return "; ".join(said)

    def _kept_or_ended(self, scan: ScanRef) -> str:
        """Why `scan` is not to be cancelled ("" when it is)."""
        if self.policy.scan.on_timeout is OnTimeout.KEEP:
            return (
                f"scan {scan.scan_id} left running (on_timeout: keep); resume with "
                f"`scangate wait --scan-id {scan.scan_id}`"
            )
        if self.last is not None and self.last.status.terminal:
            return f"scan {scan.scan_id} had already ended ({self.last.raw_status})"
        return ""

    def _settle(self, said: list[str], found: list[ScanRef]) -> None:
        """In the cancel thread: find the scan an interrupted start made, then cancel it."""
        scan = self.scan
        try:
            if scan is None:
                assert self.pending is not None
                scan = self.provider.find_started(self.pending)
                if scan is None:
                    said.append("the interrupted start request created no scan")
                    return
                found.append(scan)
                said.append(f"the interrupted start request created scan {scan.scan_id}")
                if settled := self._kept_or_ended(scan):
                    said.append(settled)
                    return
            self.provider.cancel(scan, self.last)
            said.append(f"cancelled scan {scan.scan_id}")
        except ProviderError as exc:
            what = (
                f"scan {scan.scan_id}" if scan else "the scan the interrupted start may have made"
            )
            said.append(f"could not cancel {what}: {exc.message}")
