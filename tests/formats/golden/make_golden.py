"""Freeze every report format for a set of sample reports, as golden files.

Run from the repository root: `python tests/formats/golden/make_golden.py`. It writes
`tests/formats/golden/<sample>/<file>` for every sample of `golden_reports()` and every format
of `ALL_FORMATS`, each as the UTF-8 bytes of `formatter(name).render(report)`.

The files were made from the formatters as they were before streaming (issue 16), so that
`tests/formats/test_streaming.py` proves the streamed writer changed no byte (or, for
`scangate.json`, which is now written compactly on purpose, no parsed value). Regenerate them
only for a deliberate change of output, and say so in the CHANGELOG.

Everything is fixed: times (`conftest.STARTED`, `FINISHED`), the gate's day (`conftest.TODAY`)
and the tool version (`0.1.0`), so the output depends on the code only. Set and dict orders do
not leak into the reports (the formatters' determinism tests run under several hash seeds).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
TESTS = GOLDEN.parent.parent
if str(TESTS) not in sys.path:  # run as a script: make `conftest` importable as pytest does
    sys.path.insert(0, str(TESTS))

from conftest import (  # noqa: E402
    HOSTILE,
    TODAY,
    hostile_finding,
    make_finding,
    make_policy,
    make_report,
    make_result,
    sample_reports,
)

from scangate.baseline import Baseline, BaselineEntry  # noqa: E402
from scangate.formats import Report, formatter  # noqa: E402
from scangate.gate import combine, evaluate  # noqa: E402
from scangate.model import QueueStats, Severity  # noqa: E402
from scangate.policy import ALL_FORMATS, IgnoreRule  # noqa: E402

CONFTEST_SAMPLES = ("empty", "one", "hostile", "mixed", "incomplete", "count-only")
"""`conftest.sample_reports()` but `many`: 10,000 findings would make megabytes of golden files
(`several` below covers many findings)."""


def _merged() -> Report:
    """Two scans of two providers merged, the second one hostile (`scangate gate --results`)."""
    first = make_report([make_finding(i) for i in range(6)])
    policy = make_policy(first.gate)
    second = make_result(
        [hostile_finding(i) for i in range(3)],
        provider="cystack",
        scanner="CyStack",
        scan_id="scan_b",
        target="https://other.example.com",
    )
    evaluations = (*first.evaluations, evaluate(second, policy, None, TODAY))
    return replace(first, evaluations=evaluations, verdict=combine(evaluations))


def _long_evidence() -> Report:
    """Text beyond every cap: evidence (4,096), GitLab solution (7,000) and text (65,536)."""
    findings = [
        make_finding(
            i,
            title="Very long title " * 40,
            request="GET /a HTTP/1.1\nHost: app.example.com\n\n" + "q=" * 5000,
            response="HTTP/1.1 200 OK\nContent-Type: text/html\n\n" + "<p>x</p>" * 2000,
            description="A paragraph of description. " * 3000,
            remediation="Fix it this way.\n\n" * 600,
        )
        for i in range(3)
    ]
    # Unparsed (no status line) long evidence goes to GitLab's description as a code block.
    findings.append(make_finding(9, response="not an HTTP response\n" * 400))
    return make_report(findings)


def _hostile_meta() -> Report:
    """Hostile text where the model does not sanitize: policy, baseline, fingerprint, reasons."""
    fingerprinted = make_finding(1, fingerprint="fp" + HOSTILE)
    findings = [fingerprinted, make_finding(2), hostile_finding(3)]
    result = replace(
        make_result(findings, scanner=HOSTILE, scan_id=HOSTILE, message=HOSTILE),
        details={"plan" + HOSTILE: HOSTILE, "scan_type": "full"},
        queue=QueueStats(queued_seconds=1.5, retries=2, reason=HOSTILE),
    )
    ignore = (
        IgnoreRule(index=0, rule="rule-2", reason="accepted" + HOSTILE),
        IgnoreRule(index=1, title="*" + HOSTILE, reason=HOSTILE),
    )
    baseline = Baseline.from_entries(
        [
            BaselineEntry(
                fingerprint="gone" + HOSTILE,
                rule_id=HOSTILE,
                title=HOSTILE,
                severity=Severity.HIGH,
                url="https://app.example.com/" + HOSTILE,
            ),
            BaselineEntry(fingerprint=fingerprinted.fingerprint, severity=Severity.LOW),
        ]
    )
    return make_report(result=result, ignore=ignore, baseline=baseline, interrupted=HOSTILE)


def golden_reports() -> dict[str, Report]:
    """Every sample frozen under `tests/formats/golden/<name>/`."""
    samples = sample_reports()
    reports = {name: samples[name] for name in CONFTEST_SAMPLES}
    reports["several"] = make_report([make_finding(i) for i in range(120)])
    reports["merged"] = _merged()
    reports["interrupted"] = make_report([make_finding(3), make_finding(5)], interrupted="SIGTERM")
    reports["long-evidence"] = _long_evidence()
    reports["hostile-meta"] = _hostile_meta()
    reports["anchored"] = make_report(
        [make_finding(i) for i in range(4)], sarif_anchor="api/openapi.yaml"
    )
    return reports


def golden_path(sample: str, name: str) -> Path:
    """Where the golden file of format `name` for `sample` lives."""
    return GOLDEN / sample / formatter(name).filename


def main() -> int:
    """Write every golden file; print what was written."""
    for sample, report in golden_reports().items():
        (GOLDEN / sample).mkdir(exist_ok=True)
        for name in ALL_FORMATS:
            path = golden_path(sample, name)
            path.write_bytes(formatter(name).render(report).encode("utf-8"))
            print(f"{path.relative_to(TESTS.parent)}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
