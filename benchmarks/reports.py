"""Benchmark report writing: every format on 100,000 findings, and the SARIF serializer.

Run `python benchmarks/reports.py [--findings N] [--runs R] [--out DIR] [--skip-reference]`.
It builds N findings (default 100,000) with realistic evidence, gates them with an ignore entry
and a baseline, then writes every format the way `scangate run` does, streamed through
`scangate.output.write_reports`, into a temporary directory (or `--out`). For each format it
prints the median wall time of R runs, the file size and the process's peak RSS so far
(`resource.getrusage`; the peak only grows, so a format's own footprint is its row minus the row
before).

It exits 1 when writing the five formats raises the peak RSS more than `MAX_WRITE_MIB` above the
peak of building and gating: reports are streamed to disk (issue 16). Their time is printed, not
judged here: issue 16's time target is a whole `scangate run` (fetching, gating and writing) at
most 0.25 x the reference serializer's, which `benchmarks/endtoend.py` measures and enforces.

It then times SARIF serialization alone on the same sarif-om objects: scangate's serializer
(`scangate.formats.sarif.dumps`) against the reference `jschema_to_python.to_json`, taking the
median of R runs each. It exits 1 unless both parse to equal JSON and scangate's is at least
10 times faster. `--skip-reference` leaves that part out (it takes minutes), for iterating.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from jschema_to_python.to_json import to_json

from scangate import __version__
from scangate.baseline import Baseline
from scangate.formats import Report, formatter
from scangate.formats.sarif import SarifFormatter, dumps
from scangate.gate import combine, evaluate
from scangate.model import Finding, ScanResult, ScanStatus, Severity
from scangate.output import write_reports
from scangate.policy import (
    ALL_FORMATS,
    GateSettings,
    IgnoreRule,
    Policy,
    ProviderSettings,
    ScanSettings,
)

MIN_SPEEDUP = 10.0
MAX_WRITE_MIB = 100.0
"""Peak RSS that writing may add above building and gating (the target is about 60 MiB)."""
TODAY = date(2026, 11, 22)
# Most DAST findings are informational or low; a few are critical (weights per severity).
WEIGHTS = {
    Severity.INFO: 40,
    Severity.LOW: 30,
    Severity.MEDIUM: 20,
    Severity.HIGH: 8,
    Severity.CRITICAL: 2,
}
_SEVERITIES = [s for s, weight in WEIGHTS.items() for _ in range(weight)]


def _finding(n: int) -> Finding:
    """A realistic finding: 40 rules over 2,000 routes, with request/response evidence."""
    rule = n % 40
    route = f"/api/v{n % 3}/resource{n % 2000}/{n}"
    query = f"?q=term{n}&page={n % 7}"
    return Finding.create(
        provider="cyberorigen",
        rule_id=f"check_{rule:02d}",
        title=f"Vulnerability class {rule} in request handling",
        severity=_SEVERITIES[(n * 7919) % len(_SEVERITIES)],
        url=f"https://app.example.com{route}{query}",
        method=("GET", "POST", "PUT")[n % 3],
        parameter=("q", "page", "")[n % 3],
        cvss=round(1 + (n % 90) / 10, 1),
        cwe_ids=(79 + rule,),
        request=f"GET {route}{query} HTTP/1.1\nHost: app.example.com\nUser-Agent: scanner\n"
        f"Cookie: session=abc{n}\nAccept: */*\n\n" + "x=1&" * 40,
        response="HTTP/1.1 200 OK\nContent-Type: text/html\nServer: nginx\n\n"
        + f"<html><body>reflected term{n} ".ljust(400, ".")
        + "</body></html>",
        description=f"The scanner found evidence of vulnerability class {rule}. " * 3,
        remediation="Validate and encode all user input; see the references.",
        references=("https://owasp.org/www-project-top-ten/",),
        provider_status="open",
        console_url=f"https://console.example.com/findings/{n}",
    )


def build_report(count: int) -> Report:
    """`count` findings from one scan, gated with one ignore entry and a 10 % baseline."""
    findings = [_finding(n) for n in range(count)]
    result = ScanResult(
        provider="cyberorigen",
        scanner="CyberOrigen",
        scan_id="scan_bench",
        target="https://app.example.com",
        status=ScanStatus.COMPLETED,
        started_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 22, 11, 0, tzinfo=UTC),
        findings=tuple(findings),
    )
    policy = Policy(
        provider=ProviderSettings(name="cyberorigen"),
        scan=ScanSettings(target=result.target),
        gate=GateSettings(fail_on=Severity.HIGH, warn_on=Severity.MEDIUM),
        ignore=(IgnoreRule(index=0, rule="check_07", reason="accepted risk (SEC-7)"),),
    )
    baseline = Baseline.from_findings(findings[: count // 10])
    evaluation = evaluate(result, policy, baseline, TODAY)
    return Report(
        evaluations=(evaluation,),
        verdict=combine([evaluation]),
        gate=policy.gate,
        tool_version=__version__,
    )


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS, where this reads 1024 times too high).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_all(report: Report, out: Path, runs: int) -> list[tuple[str, str, int, float, float]]:
    """(format, file, bytes, median seconds, peak RSS MiB) for every format, in `ALL_FORMATS` order.

    Each format is written alone through `write_reports`, the streamed path `scangate run`
    takes, so that its time and memory are its own; `runs` times, keeping the median.
    """
    rows = []
    for name in ALL_FORMATS:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            (path,) = write_reports(report, [name], out)
            times.append(time.perf_counter() - start)
        size = path.stat().st_size
        median = statistics.median(times)
        rows.append((name, formatter(name).filename, size, median, _peak_rss_mib()))
    return rows


def _median_seconds(function: Callable[[], str], runs: int) -> tuple[float, str]:
    """The median wall time of `runs` calls, and the last call's output."""
    times, output = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        output = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), output


def compare_serializers(report: Report, runs: int) -> tuple[float, float, bool, int]:
    """(scangate median s, jschema_to_python median s, parsed-equal, results) on one log."""
    log = SarifFormatter().log(report)
    ours, ours_text = _median_seconds(lambda: dumps(log), runs)
    reference, reference_text = _median_seconds(lambda: to_json(log), runs)
    equal = json.loads(ours_text) == json.loads(reference_text)
    return ours, reference, equal, len(log.runs[0].results)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--findings", type=int, default=100_000, help="findings to build")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per format and serializer (median)"
    )
    parser.add_argument("--out", type=Path, help="write the reports here (default: a temp dir)")
    parser.add_argument(
        "--skip-reference",
        action="store_true",
        help="leave out the (slow) comparison with jschema_to_python",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print Markdown tables, return 1 if a target is missed."""
    args = _arguments(argv)
    start = time.perf_counter()
    report = build_report(args.findings)
    built = time.perf_counter() - start
    built_rss = _peak_rss_mib()
    print(
        f"Built and gated {args.findings:,} findings in {built:.2f} s "
        f"(peak RSS {built_rss:.0f} MiB).\n"
    )
    with tempfile.TemporaryDirectory(prefix="scangate-bench-") as temp:
        out = args.out or Path(temp)
        rows = write_all(report, out, args.runs)
    print(f"Median of {args.runs} runs per format.\n")
    print("| format | file | size (MB) | wall (s) | peak RSS so far (MiB) |")
    print("|---|---|---:|---:|---:|")
    for name, filename, size, seconds, rss in rows:
        print(f"| {name} | `{filename}` | {size / 1e6:.1f} | {seconds:.2f} | {rss:.0f} |")
    total = sum(row[3] for row in rows)
    added = max(row[4] for row in rows) - built_rss
    print(f"\nAll formats: {total:.2f} s, peak RSS +{added:.0f} MiB over building and gating.")
    failed = False
    if added > MAX_WRITE_MIB:
        print(f"FAILED: writing may add at most {MAX_WRITE_MIB:g} MiB of peak RSS.")
        failed = True
    if args.skip_reference:
        return int(failed)

    ours, reference, equal, results = compare_serializers(report, args.runs)
    speedup = reference / ours
    print(
        f"\nSARIF serialization of the same sarif-om log ({results:,} results), "
        f"median of {args.runs} runs:\n"
    )
    print("| serializer | median (s) |")
    print("|---|---:|")
    print(f"| `scangate.formats.sarif.dumps` | {ours:.3f} |")
    print(f"| `jschema_to_python.to_json` | {reference:.3f} |")
    print(f"| speed-up | {speedup:.1f}x |")
    print(f"\nParsed-equal output: {'yes' if equal else 'NO'}.")
    if not equal or speedup < MIN_SPEEDUP:
        print(f"FAILED: need parsed-equal output and a speed-up of at least {MIN_SPEEDUP:g}x.")
        failed = True
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
