"""Benchmark scangate's adaptive polling against go-vaddy's fixed schedule on a virtual clock.

Run `python benchmarks/polling.py`. It simulates scans of about 1 minute, 2 minutes, 30 minutes
and 3 hours (true durations vary ±20 % around each, over 50 seeds) for four kinds of provider:

- *progress*: a percentage that grows linearly within ten phases of uneven pace (±15 %),
  reported as an integer with Gaussian jitter (σ = 1 point) that never goes backwards;
- *ETA*: an ETA at start only, counting down (CyberOrigen `estimated_duration`), off by up
  to ±30 % of the true duration;
- *status only*: status only (VAddy `scanning` / `finish`), no history;
- *status + history*: status only, and the durations of the target's past finished scans
  (VAddy `scan/results/list`, CyStack `GET /scans` + details, CyberSec Pro `GET /scans`).

The history model: each target has a typical duration (the nominal length ±20 %); its scans,
the one waited for and 5-20 past ones alike, take that typical duration ±15 % (uniform). One
past scan in ten was stopped by a user after 10-90 % of its run and is listed like a finished
one (CyStack cannot tell the two apart; the other adapters drop cancelled scans, so this is
the pessimistic case).

Each scan first sits 0-10 s in the queue. For each schedule it counts the status requests and
the completion-detection lag (the first poll that sees `completed` minus the true finish), and
for the 3-hour scans the most requests in any one hour. go-vaddy 1.1.1 sleeps 5 s after each of
the first 10 polls, then 20 s (docs/providers/vaddy.md, "Official client behaviour").

Targets, checked at the end (exit 1 when one is missed):

- progress: a 1-minute scan takes at most 5 status requests with a mean lag of at most 5 s; at
  30 minutes and 3 hours scangate sends at most a third of go-vaddy's requests with a mean lag
  of at most 15 s;
- status + history: a 30-minute scan takes at most 0.3 of go-vaddy's requests with a mean lag
  of at most 15 s;
- status only, without history: no row worse than before history was used (`BEFORE`);
- rate limits: no 3-hour scan sends more than 100 requests in any hour, and no status-only
  schedule more than 10 in any minute (CyberSec Pro Trial, whose pacer then never holds a
  poll back).
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
NOMINAL = {"1 min": 60.0, "2 min": 120.0, "30 min": 1800.0, "3 h": 10800.0}
KINDS = ("progress", "ETA", "status only", "status + history")
PHASES = (
    *("discovery", "enumeration", "vulnerability_scanning", "web_analysis", "cloud_analysis"),
    *("threat_intelligence", "correlation", "ai_analysis", "remediation_planning", "reporting"),
)
"""CyberOrigen's ten phases (docs/providers/cyberorigen.md), one per tenth of the progress."""
DEADLINE = 8 * 3600.0
HOUR = 3600.0
MAX_LAG = 15.0
MAX_RATIO = 1 / 3
MAX_PER_HOUR = 100
MAX_PER_MINUTE = 10
"""CyberSec Pro Trial: 10 requests a minute (docs/providers/cybersecpro.md, "Rate limits")."""
SHORT_REQUESTS = 5.0
SHORT_LAG = 5.0
HISTORY_RATIO = 0.3
BEFORE = {"2 min": (15.0, 11.2), "30 min": (45.8, 32.2), "3 h": (198.0, 31.1)}
"""Status only, no history: (mean requests, mean lag) before issue 16 (benchmarks/README.md)."""
HISTORY_SPREAD = 0.15
STOPPED_SHARE = 0.1

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
    history: tuple[float, ...] = ()
    """Durations of the target's past scans, newest first (kind `status + history`)."""
    shown: int = 0

    @classmethod
    def create(cls, kind: str, nominal: float, seed: int) -> SimulatedScan:
        """A scan of about `nominal` seconds, reproducible from `seed`."""
        # The kinds without history keep the seeds and draws they had before issue 16.
        name = "nothing" if kind == "status only" else kind
        rng = random.Random(f"{name}-{nominal}-{seed}")
        duration = nominal * rng.uniform(0.8, 1.2)
        history: tuple[float, ...] = ()
        if kind == "status + history":
            typical = duration
            history = tuple(_past_scan(rng, typical) for _ in range(rng.randint(5, 20)))
            duration = typical * rng.uniform(1 - HISTORY_SPREAD, 1 + HISTORY_SPREAD)
        weights = [rng.uniform(0.85, 1.15) for _ in PHASES]
        paces = tuple(w / sum(weights) for w in weights)
        estimate = duration * (1 + rng.uniform(-0.3, 0.3))
        return cls(kind, duration, rng.uniform(0, 10), paces, estimate, rng, history)

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
        if self.kind.startswith("status") or status is ScanStatus.PENDING:
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


def _past_scan(rng: random.Random, typical: float) -> float:
    """One past scan's listed duration: typical ±15 %, or cut short by a user's stop."""
    duration = typical * rng.uniform(1 - HISTORY_SPREAD, 1 + HISTORY_SPREAD)
    if rng.random() < STOPPED_SHARE:
        return duration * rng.uniform(0.1, 0.9)
    return duration


@dataclass(frozen=True)
class Outcome:
    """One simulated wait."""

    requests: int
    lag: float
    per_hour: int
    per_minute: int


def simulate(scan: SimulatedScan, plan: Planner) -> Outcome:
    """Poll `scan` from t = 0 as `plan` says until a poll sees it completed."""
    t, times = 0.0, []
    while True:
        times.append(t)
        progress = scan.poll(t)
        if progress.status is ScanStatus.COMPLETED or t >= DEADLINE:
            return Outcome(
                len(times), t - scan.duration, busiest(times, HOUR), busiest(times, 60.0)
            )
        t += plan(progress, t, len(times))


def busiest(times: list[float], window: float) -> int:
    """The most requests in any window [t, t + `window`) of the sorted request `times`."""
    most, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - window:
            first += 1
        most = max(most, last - first + 1)
    return most


def go_vaddy(progress: ScanProgress, t: float, polls: int) -> float:
    """go-vaddy 1.1.1: 5 s after each of the first 10 polls, then 20 s."""
    return 5.0 if polls <= 10 else 20.0


def scangate(policy: PollPolicy) -> Callable[[SimulatedScan], Planner]:
    """A factory of fresh `PollSchedule` planners (one per scan, told its target's history)."""

    def make(scan: SimulatedScan) -> Planner:
        schedule = PollSchedule(policy)
        if scan.history:
            schedule.learn(scan.history, started=0.0, limit=DEADLINE)

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
                scan = SimulatedScan.create(kind, nominal, seed)
                ours.append(simulate(scan, scangate(policy)(scan)))
            rows.append(Row(kind, label, fixed, ours))
    return rows


def table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| provider reports | scan | go-vaddy requests | scangate requests | ratio "
        "| go-vaddy mean lag | scangate mean lag | scangate max lag "
        "| go-vaddy max req/h | scangate max req/h | scangate max req/min |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
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
        f"| {max(o.per_hour for o in row.fixed)} | {max(o.per_hour for o in row.ours)} "
        f"| {max(o.per_minute for o in row.ours)} |"
    )


def check(rows: list[Row]) -> list[str]:
    """The targets each row missed, as messages."""
    missed = []
    for row in rows:
        missed.extend(_missed(row))
    return missed


def _missed(row: Row) -> list[str]:
    name = f"{row.kind}, {row.label}"
    requests, lag = mean(o.requests for o in row.ours), mean(o.lag for o in row.ours)
    missed = []
    if row.kind == "progress" and row.label == "1 min":
        if requests > SHORT_REQUESTS:
            missed.append(f"{name}: {requests:.1f} requests (target {SHORT_REQUESTS:.0f})")
        if lag > SHORT_LAG:
            missed.append(f"{name}: mean lag {lag:.1f} s (target {SHORT_LAG:.0f} s)")
    if row.kind == "progress" and row.label in ("30 min", "3 h"):
        if row.ratio > MAX_RATIO:
            missed.append(f"{name}: {row.ratio:.2f} of go-vaddy's requests (target 1/3)")
        if lag > MAX_LAG:
            missed.append(f"{name}: mean lag {lag:.1f} s (target {MAX_LAG:.0f} s)")
    if row.kind == "status + history" and row.label == "30 min":
        if row.ratio > HISTORY_RATIO:
            missed.append(f"{name}: {row.ratio:.2f} of go-vaddy's requests (target 0.3)")
        if lag > MAX_LAG:
            missed.append(f"{name}: mean lag {lag:.1f} s (target {MAX_LAG:.0f} s)")
    if row.kind == "status only" and row.label in BEFORE:
        before_requests, before_lag = BEFORE[row.label]
        if round(requests, 1) > before_requests or round(lag, 1) > before_lag:
            missed.append(
                f"{name}: {requests:.1f} requests, lag {lag:.1f} s; worse than before "
                f"({before_requests} requests, {before_lag} s)"
            )
    worst = max(o.per_hour for o in row.ours)
    if row.label == "3 h" and worst > MAX_PER_HOUR:
        missed.append(f"{name}: {worst} requests in one hour (target {MAX_PER_HOUR})")
    busiest_minute = max(o.per_minute for o in row.ours)
    if row.kind.startswith("status") and busiest_minute > MAX_PER_MINUTE:
        missed.append(f"{name}: {busiest_minute} requests in one minute (Trial plan: 10)")
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
            "All targets met: a 1 min progress scan takes at most 5 requests with a mean lag of "
            f"at most {SHORT_LAG:.0f} s; progress scans of 30 min and 3 h use at most 1/3 of "
            f"go-vaddy's requests, and a 30 min status-only scan with history at most 0.3, "
            f"with a mean lag of at most {MAX_LAG:.0f} s; status-only scans without history "
            f"are no worse than before; no 3 h scan sends more than {MAX_PER_HOUR} requests in "
            f"any hour, no status-only scan more than {MAX_PER_MINUTE} in any minute."
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
