"""Benchmark one whole `scangate run` over 100,000 findings against sarif-om's reference serializer.

Run `python benchmarks/endtoend.py [--findings N] [--runs R] [--latency S]`. It serves the
CyberOrigen sandbox emulator in this process on 127.0.0.1 with a scan of N findings (default
100,000, listed 100 per page: 1,000 pages), then runs `scangate run` against it as a subprocess,
as a CI job would, and measures the subprocess's wall time and peak RSS (`os.wait4`, so the
emulator's own memory is not counted). It does so R times (default 3) with no added latency
and R times with `--latency` seconds (default 0.02) added to every answer of the emulator, the
time a real API takes per page.

The reference is sarif-om's own serializer, `jschema_to_python.to_json`, timed in this process
on a SARIF log of the same 100,000 results (built from the run's `scangate.json` with
`SarifFormatter(max_results_per_run=N)`; only `to_json` is timed, not the building).

Targets (exit 1 when one is missed; medians of R runs):

- end to end, no latency: at most 0.25 x the reference serializer's time;
- peak RSS of the `scangate run` process: at most 400 MB;
- with latency: at most 1.5 x the no-latency wall time;
- every run exits 1 (the scan has high findings and `fail_on: high`), and every finding is in
  `scangate.json`, `junit.xml` and `gl-dast-report.json`, while `scangate.sarif` keeps GitHub's
  25,000 most severe results and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from jschema_to_python.to_json import to_json

from scangate import __version__
from scangate.formats import Report
from scangate.formats.sarif import MAX_RESULTS_PER_RUN, SarifFormatter
from scangate.gate import combine, evaluate
from scangate.policy import GateSettings, Policy, ProviderSettings, ScanSettings
from scangate.results import load_results
from scangate.sandbox import sandbox_env, start_sandbox

MAX_RATIO = 0.25
MAX_RSS_MB = 400.0
MAX_LATENCY_RATIO = 1.5
TARGET = "staging.example.com"
"""A host the CyberOrigen emulator accepts as `scan.target`."""
DEFAULT_WORKERS = 4


@dataclass(frozen=True)
class Run:
    """One `scangate run` subprocess."""

    exit: int
    seconds: float
    peak_rss_mb: float
    out: Path
    stderr: str


def scenario_file(directory: Path, findings: int, latency: float) -> Path:
    """A CyberOrigen scenario with `findings` generated findings and `latency` per answer."""
    options: dict[str, object] = {"plan": "enterprise"}
    if latency:
        options["latency"] = latency
    path = directory / f"bench-{findings}-{latency:g}.yml"
    data = {
        "description": f"{findings} generated findings for the end-to-end benchmark",
        "providers": ["cyberorigen"],
        "duration": 1,
        "generate": findings,
        "options": {"cyberorigen": options},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def policy_file(directory: Path, base_url: str) -> Path:
    """A policy for the emulator at `base_url` writing every report into `reports/`."""
    path = directory / ".scangate.yml"
    policy = {
        "version": 1,
        "provider": {"name": "cyberorigen", "base_url": base_url},
        "scan": {"target": TARGET, "timeout": "10m"},
        "gate": {"fail_on": "high"},
        "reports": {"dir": "reports"},
    }
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return path


def run_once(directory: Path, findings: int, latency: float) -> Run:
    """Serve the scenario, run `scangate run` once against it, and measure the subprocess."""
    scenario = scenario_file(directory, findings, latency)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=directory))
    with start_sandbox("cyberorigen", scenario) as server:
        policy = policy_file(work, server.base_url)
        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")},
            **sandbox_env("cyberorigen", scenario),
            "CI": "true",
        }
        command = [sys.executable, "-m", "scangate", "run", "--policy", str(policy)]
        started = time.perf_counter()
        with subprocess.Popen(
            command,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stderr is not None
            stderr = process.stderr.read()  # the log is small; reading it keeps the pipe free
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    return Run(process.returncode, seconds, usage.ru_maxrss * 1024 / 1e6, work / "reports", stderr)


def completeness(run: Run, findings: int) -> list[str]:
    """What the run's reports miss (empty when all is there)."""
    missed = []
    results = json.loads((run.out / "scangate.json").read_text(encoding="utf-8"))
    listed = sum(len(scan["findings"]) for scan in results["scans"])
    if listed != findings:
        missed.append(f"scangate.json lists {listed} findings, not {findings}")
    testcases = sum(1 for _ in ET.parse(run.out / "junit.xml").iter("testcase"))
    if testcases < findings:
        missed.append(f"junit.xml has {testcases} testcases for {findings} findings")
    dast = json.loads((run.out / "gl-dast-report.json").read_text(encoding="utf-8"))
    if len(dast["vulnerabilities"]) != findings:
        missed.append(f"gl-dast-report.json has {len(dast['vulnerabilities'])} vulnerabilities")
    sarif = json.loads((run.out / "scangate.sarif").read_text(encoding="utf-8"))
    kept = sum(len(r["results"]) for r in sarif["runs"])
    expected = min(findings, MAX_RESULTS_PER_RUN)
    if kept != expected:
        missed.append(f"scangate.sarif keeps {kept} results, not {expected}")
    if findings > MAX_RESULTS_PER_RUN and f'"resultsTotal": {findings}' not in json.dumps(
        sarif["runs"][0]
    ):
        missed.append("scangate.sarif does not say that results were left out")
    if run.exit != 1:
        missed.append(f"scangate run exited {run.exit}, not 1:\n{run.stderr[-2000:]}")
    return missed


def reference_seconds(results_file: Path, runs: int) -> tuple[float, int]:
    """Median seconds of `jschema_to_python.to_json` on the run's results as one SARIF log."""
    scans = load_results(results_file)
    policy = Policy(
        provider=ProviderSettings(name="cyberorigen"),
        scan=ScanSettings(target=TARGET),
        gate=GateSettings(),
    )
    evaluations = tuple(evaluate(scan, policy, None, date.today()) for scan in scans)
    report = Report(evaluations=evaluations, verdict=combine(evaluations), tool_version=__version__)
    count = sum(len(scan.findings) for scan in scans)
    log = SarifFormatter(max_results_per_run=max(count, 1)).log(report)
    return _median(lambda: to_json(log), runs), len(log.runs[0].results)


def _median(function: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--findings", type=int, default=100_000, help="findings in the scan")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind (median)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added per answer")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a Markdown table, return 1 if a target is missed."""
    args = _arguments(argv)
    missed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="scangate-e2e-") as temp:
        directory = Path(temp)
        plain = [run_once(directory, args.findings, 0.0) for _ in range(args.runs)]
        slow = [run_once(directory, args.findings, args.latency) for _ in range(args.runs)]
        for run in (*plain, *slow):
            missed.extend(completeness(run, args.findings))
        reference, results = reference_seconds(plain[-1].out / "scangate.json", args.runs)
    wall = statistics.median(r.seconds for r in plain)
    wall_slow = statistics.median(r.seconds for r in slow)
    rss = max(r.peak_rss_mb for r in (*plain, *slow))
    ratio, latency_ratio = wall / reference, wall_slow / wall
    print(f"`scangate run` over {args.findings:,} findings (CyberOrigen emulator, 100 per page)")
    print(f"medians of {args.runs} runs; reference: `jschema_to_python.to_json` on {results:,}")
    print("SARIF results of the same findings\n")
    print("| measure | value | target |")
    print("|---|--:|--:|")
    print(f"| scangate run, no latency (s) | {wall:.2f} | |")
    print(f"| reference serializer (s) | {reference:.2f} | |")
    print(f"| ratio | {ratio:.3f} | <= {MAX_RATIO} |")
    print(f"| peak RSS of scangate run (MB) | {rss:.0f} | <= {MAX_RSS_MB:.0f} |")
    print(f"| scangate run, {args.latency * 1000:g} ms per answer (s) | {wall_slow:.2f} | |")
    print(f"| latency ratio | {latency_ratio:.2f} | <= {MAX_LATENCY_RATIO} |")
    print("\nruns (s): " + ", ".join(f"{r.seconds:.2f}" for r in plain))
    print("runs with latency (s): " + ", ".join(f"{r.seconds:.2f}" for r in slow))
    if ratio > MAX_RATIO:
        missed.append(f"end to end {ratio:.3f} x the reference (target {MAX_RATIO})")
    if rss > MAX_RSS_MB:
        missed.append(f"peak RSS {rss:.0f} MB (target {MAX_RSS_MB:.0f} MB)")
    if latency_ratio > MAX_LATENCY_RATIO:
        missed.append(f"latency variant {latency_ratio:.2f} x (target {MAX_LATENCY_RATIO})")
    print()
    for message in missed:
        print(f"MISSED: {message}")
    if not missed:
        print("All targets met.")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
