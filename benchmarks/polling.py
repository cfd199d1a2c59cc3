"""Benchmark scangate's adaptive polling against go-vaddy's fixed schedule on a virtual clock.

Run `python benchmarks/polling.py`. It simulates scans of about 2 minutes, 30 minutes and
3 hours (true durations vary ±20 % around each, over 50 seeds) for three kinds of provider:

- *progress*: a percentage that grows linearly within ten phases of uneven pace (±15 %),
  reported as an integer with Gaussian jitter (σ = 1 point) that never goes backwards;
- *ETA*: an ETA at start only, counting down (CyberOrigen `estimated_duration`), off by up
  to ±30 % of the true duration;
- *nothing*: status only (VAddy `scanning` / `finish`).

Each scan first sits 0-10 s in the queue. For each schedule it counts the status requests and
the completion-detection lag (the first poll that sees `completed` minus the true finish), and
for the 3-hour scans the most requests in any one hour. go-vaddy 1.1.1 sleeps 5 s after each of
the first 10 polls, then 20 s (providers/vaddy.md, "Official client behaviour").

Targets, checked at the end (exit 1 when one is missed): at 30 minutes and 3 hours scangate
sends at most a third of go-vaddy's requests with a mean lag of at most 15 s when progress is
reported, and no 3-hour scan sends more than 100 requests in any hour.
"""

from __future__ import annotations

import random
import statistics
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from scangate.model import ScanStatus
from scangate.polling import PollPolicy, PollSchedule
from scangate.providers.interface import ScanProgress

SEEDS = 50
NOMINAL = {"2 min": 120.0, "30 min": 1800.0, "3 h": 10800.0}
KINDS = ("progress", "ETA", "nothing")
PHASES = (
    *("discovery", "enumeration", "vulnerability_scanning", "web_analysis", "cloud_analysis"),
    *("threat_intelligence", "correlation", "ai_analysis", "remediation_planning", "reporting"),
)
"""CyberOrigen's ten phases (providers/cyberorigen.md), one per tenth of the progress."""
DEADLINE = 8 * 3600.0
HOUR = 3600.0
MAX_LAG = 15.0
MAX_RATIO = 1 / 3
MAX_PER_HOUR = 100

Planner = Callable[[ScanProgress, float, int], float]
"""Given the poll's answer, the virtual time and the polls so far, the seconds to sleep."""


@dataclass
class SimulatedScan:
    """One scan's ground truth and what its provider reports when polled."""

    kind: str
    duration: float
    queued: float
    paces: tuple[float, ...]
    """Share of the running time each of the ten phases takes."""
    estimate: float
    rng: random.Random
    shown: int = 0

    @classmethod
    def create(cls, kind: str, nominal: float, seed: int) -> SimulatedScan:
        """A scan of about `nominal` seconds, reproducible from `seed`."""
        rng = random.Random(f"{kind}-{nominal}-{seed}")
        duration = nominal * rng.uniform(0.8, 1.2)
        weights = [rng.uniform(0.85, 1.15) for _ in PHASES]
        paces = tuple(w / sum(weights) for w in weights)
        estimate = duration * (1 + rng.uniform(-0.3, 0.3))
        return cls(kind, duration, rng.uniform(0, 10), paces, estimate, rng)

    def poll(self, t: float) -> ScanProgress:
        """What a status poll at virtual time `t` returns."""
        if t >= self.duration:
            return ScanProgress(status=ScanStatus.COMPLETED, raw_status="completed", progress=100)
        if t < self.queued:
            status = ScanStatus.PENDING
        else:
            status = ScanStatus.RUNNING
        if self.kind == "ETA":
            eta = max(0.0, self.estimate - t)
            return ScanProgress(status=status, raw_status=status.value, eta_seconds=eta)
        if self.kind == "nothing" or status is ScanStatus.PENDING:
            return ScanProgress(status=status, raw_status="scanning")
        phase, true_pct = self._true_progress(t - self.queued)
        noisy = int(min(99.0, max(0.0, true_pct + self.rng.gauss(0, 1.0))))
        self.shown = max(self.shown, noisy)
        return ScanProgress(status=status, raw_status="running", progress=self.shown, phase=phase)

    def _true_progress(self, running: float) -> tuple[str, float]:
        share = running / (self.duration - self.queued)
        done = 0.0
        for index, pace in enumerate(self.paces):
            if share < done + pace or index == len(self.paces) - 1:
                within = min((share - done) / pace, 1.0)
                return PHASES[index], 10.0 * (index + within)
            done += pace
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class Outcome:
    """One simulated wait."""

    requests: int
    lag: float
    per_hour: int


def simulate(scan: SimulatedScan, plan: Planner) -> Outcome:
    """Poll `scan` from t = 0 as `plan` says until a poll sees it completed."""
    t, times = 0.0, []
    while True:
        times.append(t)
        progress = scan.poll(t)
        if progress.status is ScanStatus.COMPLETED or t >= DEADLINE:
            return Outcome(len(times), t - scan.duration, busiest_hour(times))
        t += plan(progress, t, len(times))


def busiest_hour(times: list[float]) -> int:
    """The most requests in any window [t, t + 1 h) of the sorted request `times`."""
    most, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - HOUR:
            first += 1
        most = max(most, last - first + 1)
    return most


def go_vaddy(progress: ScanProgress, t: float, polls: int) -> float:
    """go-vaddy 1.1.1: 5 s after each of the first 10 polls, then 20 s."""
    return 5.0 if polls <= 10 else 20.0


def scangate(policy: PollPolicy) -> Callable[[], Planner]:
    """A factory of fresh `PollSchedule` planners (one per scan)."""

    def make() -> Planner:
        schedule = PollSchedule(policy)

        def plan(progress: ScanProgress, t: float, polls: int) -> float:
            return schedule.next_delay(
                progress, now=t, started=0.0, polls=polls, rate=None, deadline=DEADLINE
            )

        return plan

    return make


@dataclass(frozen=True)
class Row:
    """Averages over the seeds for one kind of provider and one nominal duration."""

    kind: str
    label: str
    fixed: list[Outcome]
    ours: list[Outcome]

    @property
    def ratio(self) -> float:
        """scangate's mean request count as a share of go-vaddy's."""
        return mean(o.requests for o in self.ours) / mean(o.requests for o in self.fixed)


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean."""
    return statistics.fmean(values)


def measure(policy: PollPolicy) -> list[Row]:
    """Run every kind and duration over all seeds with both schedules."""
    rows = []
    for kind in KINDS:
        for label, nominal in NOMINAL.items():
            fixed, ours = [], []
            for seed in range(SEEDS):
                fixed.append(simulate(SimulatedScan.create(kind, nominal, seed), go_vaddy))
                ours.append(simulate(SimulatedScan.create(kind, nominal, seed), scangate(policy)()))
            rows.append(Row(kind, label, fixed, ours))
    return rows


def table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| provider reports | scan | go-vaddy requests | scangate requests | ratio "
        "| go-vaddy mean lag | scangate mean lag | scangate max lag "
        "| go-vaddy max req/h | scangate max req/h |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    lines.extend(_table_row(row) for row in rows)
    return "\n".join(lines)


def _table_row(row: Row) -> str:
    return (
        f"| {row.kind} | {row.label} "
        f"| {mean(o.requests for o in row.fixed):.1f} "
        f"| {mean(o.requests for o in row.ours):.1f} | {row.ratio:.2f} "
        f"| {mean(o.lag for o in row.fixed):.1f} s | {mean(o.lag for o in row.ours):.1f} s "
        f"| {max(o.lag for o in row.ours):.0f} s "
        f"| {max(o.per_hour for o in row.fixed)} | {max(o.per_hour for o in row.ours)} |"
    )


def check(rows: list[Row]) -> list[str]:
    """The targets each row missed, as messages."""
    missed = []
    for row in rows:
        name = f"{row.kind}, {row.label}"
        if row.kind == "progress" and row.label != "2 min":
            if row.ratio > MAX_RATIO:
                missed.append(f"{name}: {row.ratio:.2f} of go-vaddy's requests (target 1/3)")
            lag = mean(o.lag for o in row.ours)
            if lag > MAX_LAG:
                missed.append(f"{name}: mean lag {lag:.1f} s (target {MAX_LAG:.0f} s)")
        worst = max(o.per_hour for o in row.ours)
        if row.label == "3 h" and worst > MAX_PER_HOUR:
            missed.append(f"{name}: {worst} requests in one hour (target {MAX_PER_HOUR})")
    return missed


def main() -> int:
    """Print the table and the target check; return 1 when a target is missed."""
    rows = measure(PollPolicy())
    print(table(rows))
    missed = check(rows)
    print()
    for message in missed:
        print(f"MISSED: {message}")
    if not missed:
        print(
            "All targets met: progress scans of 30 min and 3 h use at most 1/3 of go-vaddy's "
            f"requests with a mean lag of at most {MAX_LAG:.0f} s; no 3 h scan sends more than "
            f"{MAX_PER_HOUR} requests in any hour."
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
