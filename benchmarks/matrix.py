"""Benchmark CI matrix jobs sharing one provider account (issue 14: a plan limit is a queue).

Run `python benchmarks/matrix.py`. Each case serves one sandbox emulator on 127.0.0.1 and starts
N `scangate run` processes against it at once, one target each (VAddy: one project for all), as
the jobs of a matrix do. It prints, per case, the jobs that passed, the scans the emulator
created, the wall time of the whole matrix against the plan's theoretical minimum, and the HTTP
429 answers the emulator sent (plus the plan's other refusals of a start).

CyberSec Pro's per-minute limits run on a shortened minute (emulator option `minute`): every
count per minute is the plan's, only time is faster, so the minimum scales with it. The trial
plan's daily limit (3 scans) is raised to the job count: it never clears within a run, and a job
that meets it exits 3 (tests/e2e/test_matrix.py). Targets, checked at the end (exit 1 when one is
missed): every job passes, with exactly one scan per job.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scangate.sandbox import EmulatorServer, Scenario, sandbox_env, start_sandbox

REQUESTS_PER_JOB = 5
"""The fewest requests a CyberSec Pro job with a login can make: login, list, start, one
status poll, the result."""


@dataclass(frozen=True)
class Case:
    """One matrix: a provider, its plan, the jobs and how long a scan takes."""

    label: str
    provider: str
    jobs: int
    duration: float
    minimum: float
    """The plan's theoretical minimum wall time, in seconds (see `cases`)."""
    options: dict[str, Any] = field(default_factory=dict)
    credentials_scenario: str | None = None
    """The bundled scenario whose credentials the jobs use (the trial plan logs in)."""


def cases() -> list[Case]:
    """The matrices measured, each with the least time its plan allows."""
    minute, trial_minute = 4.0, 6.0
    trial_windows = math.ceil(10 * REQUESTS_PER_JOB / 10) - 1  # 10 requests a minute
    return [
        # 3 concurrent scans (docs/providers/cyberorigen.md): 6 jobs run in two rounds.
        Case(
            "CyberOrigen Professional (3 at once)",
            "cyberorigen",
            6,
            3.0,
            2 * 3.0,
            {"plan": "professional"},
        ),
        # 5 starts a minute per user (docs/providers/cybersecpro.md, "Create"): 8 need two minutes.
        Case(
            f"CyberSec Pro Professional (5 starts/min, minute = {minute:g} s)",
            "cybersecpro",
            8,
            1.0,
            minute + 1.0,
            {"plan": "professional", "minute": minute},
        ),
        # 10 requests a minute, bursts of 5, login only: 50 requests need 5 windows.
        Case(
            f"CyberSec Pro Trial (10 req/min, minute = {trial_minute:g} s)",
            "cybersecpro",
            10,
            2.0,
            trial_windows * trial_minute + 2.0,
            {"plan": "trial", "minute": trial_minute, "daily_scans": 10},
            "trial-plan",
        ),
        # One scan per project (docs/providers/vaddy.md): jobs on one project take turns.
        Case("VAddy, one project (1 at a time)", "vaddy", 3, 2.0, 3 * 2.0),
    ]


TARGETS = {
    "cyberorigen": "app{n}.example.com",
    "cybersecpro": "app{n}.example.com",
    "vaddy": "vaddy-project-1",
}


def run_job(case: Case, server: EmulatorServer, root: Path, number: int) -> int:
    """One `scangate run` against `server`; its exit status."""
    directory = root / f"job-{number}"
    directory.mkdir()
    policy = {
        "version": 1,
        "provider": {"name": case.provider, "base_url": server.base_url},
        "scan": {"target": TARGETS[case.provider].format(n=number), "timeout": "12m"},
        "gate": {"fail_on": "high"},
        "reports": {"dir": "reports"},
    }
    (directory / ".scangate.yml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "CI": "true",
        **sandbox_env(case.provider, case.credentials_scenario),
    }
    done = subprocess.run(
        [sys.executable, "-m", "scangate", "run"],
        cwd=directory,
        env=env,
        capture_output=True,
        timeout=900,
        check=False,
    )
    return done.returncode


def measure(case: Case) -> dict[str, Any]:
    """Play `case` once; its numbers."""
    scenario = Scenario(name="matrix", duration=case.duration)
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_sandbox(case.provider, scenario, options=case.options) as server,
    ):
        began = time.monotonic()
        with ThreadPoolExecutor(case.jobs) as pool:
            exits = list(pool.map(lambda n: run_job(case, server, Path(tmp), n), range(case.jobs)))
        wall = time.monotonic() - began
        starts = server.log.find(category="start")
        entries = server.log.entries()
    return {
        "passed": exits.count(0),
        "exits": exits,
        "scans": sum(1 for e in starts if e.status in (200, 201)),
        "refused": sum(1 for e in starts if e.status not in (200, 201)),
        "limited": sum(1 for e in entries if e.status == 429),
        "requests": len(entries),
        "wall": wall,
    }


def main() -> int:
    """Measure every case, print the table, check the targets."""
    print(
        "| case | jobs passed | scans started | wall time | plan's minimum | ratio | "
        "429s received | starts refused | requests |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    missed = []
    for case in cases():
        got = measure(case)
        print(
            f"| {case.label} | {got['passed']}/{case.jobs} | {got['scans']} | "
            f"{got['wall']:.1f} s | {case.minimum:.1f} s | {got['wall'] / case.minimum:.2f} | "
            f"{got['limited']} | {got['refused']} | {got['requests']} |",
            flush=True,
        )
        if got["passed"] != case.jobs or got["scans"] != case.jobs:
            missed.append(f"{case.label}: exits {got['exits']}, {got['scans']} scans")
    print(
        "\nThe minimum counts scan time and the plan's windows only; each job also starts a "
        "Python process and spreads its first request over up to 1 s (CI=true)."
    )
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
