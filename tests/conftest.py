"""Shared test fixtures: sample findings and reports, a scrubbed environment, schema paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from scangate.baseline import Baseline
from scangate.formats.interface import Report
from scangate.gate import combine, evaluate
from scangate.model import CountSummary, Finding, ScanResult, ScanStatus, Severity
from scangate.policy import GateSettings, IgnoreRule, Policy, ProviderSettings, ScanSettings

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "tests" / "schemas"
"""Vendored official schemas (see tests/schemas/README.md for sources and licences)."""
TODAY = date(2026, 11, 22)
STARTED = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
FINISHED = datetime(2026, 11, 22, 10, 12, 30, tzinfo=UTC)

HOSTILE = (
    "<script>alert(1)</script> ]]> & \x00\x01\x08\x0b\x1f\ud800 \ufffe "
    "\n::error::pwned\n::add-mask::x\n##[error]x | col | [link](javascript:x) *bold* `code` "
    "%0A%25 ${{ secrets.X }} \u202e\U0001f600"
)
"""Text a hostile or broken provider could send: markup, control chars, workflow commands."""


def make_finding(n: int = 0, **overrides: object) -> Finding:
    """A realistic finding; `n` varies the URL, severity and rule."""
    severities = list(Severity)
    fields: dict[str, object] = {
        "provider": "cyberorigen",
        "rule_id": f"rule-{n % 7}",
        "title": f"SQL Injection variant {n % 7}",
        "severity": severities[n % len(severities)],
        "url": f"https://app.example.com/api/items/{n}?q=1&page=2",
        "method": "GET" if n % 2 else "POST",
        "parameter": "q" if n % 3 else "",
        "cvss": 9.8 if n % 5 == 0 else None,
        "cve_ids": ("CVE-2024-1234",) if n % 4 == 0 else (),
        "cwe_ids": (89,) if n % 2 else (),
        "request": "GET /api/items?q=1 HTTP/1.1\nHost: app.example.com",
        "response": "HTTP/1.1 500 Internal Server Error\n\nSQL syntax error",
        "description": "User input reaches a SQL query unescaped.",
        "remediation": "Use parameterized queries.",
        "references": ("https://owasp.org/www-community/attacks/SQL_Injection",),
        "provider_status": "open",
        "console_url": f"https://console.example.com/findings/{n}",
    }
    fields.update(overrides)
    return Finding.create(**fields)  # type: ignore[arg-type]


def hostile_finding(n: int = 0) -> Finding:
    """A finding whose every provider-supplied text is hostile."""
    return make_finding(
        n,
        rule_id="rule" + HOSTILE,
        title=HOSTILE,
        url="https://app.example.com/p a t h/<x>/" + str(n) + "?q=" + HOSTILE,
        parameter=HOSTILE,
        request=HOSTILE,
        response=HOSTILE,
        description=HOSTILE,
        remediation=HOSTILE,
        references=(HOSTILE, "javascript:alert(1)"),
        provider_status=HOSTILE,
        console_url="javascript:alert(1)",
    )


def make_result(
    findings: tuple[Finding, ...] | list[Finding] = (),
    *,
    status: ScanStatus = ScanStatus.COMPLETED,
    completeness: int = 100,
    provider: str = "cyberorigen",
    scanner: str = "CyberOrigen",
    scan_id: str = "scan_abc123",
    target: str = "https://app.example.com",
    count_summary: CountSummary | None = None,
    message: str = "",
) -> ScanResult:
    """A scan result with fixed times."""
    return ScanResult(
        provider=provider,
        scanner=scanner,
        scan_id=scan_id,
        target=target,
        status=status,
        completeness=completeness,
        started_at=STARTED,
        finished_at=FINISHED,
        findings=tuple(findings),
        count_summary=count_summary,
        console_url="https://console.example.com/scans/scan_abc123",
        message=message,
    )


def make_policy(gate: GateSettings | None = None, ignore: tuple[IgnoreRule, ...] = ()) -> Policy:
    """A minimal policy around `gate` and `ignore`."""
    return Policy(
        provider=ProviderSettings(name="cyberorigen"),
        scan=ScanSettings(target="https://app.example.com"),
        gate=gate or GateSettings(),
        ignore=ignore,
    )


def make_report(
    findings: tuple[Finding, ...] | list[Finding] = (),
    *,
    result: ScanResult | None = None,
    gate: GateSettings | None = None,
    ignore: tuple[IgnoreRule, ...] = (),
    baseline: Baseline | None = None,
    sarif_anchor: str | None = None,
    interrupted: str = "",
) -> Report:
    """Evaluate `findings` (or `result`) under a policy and wrap it as a `Report`."""
    policy = make_policy(gate, ignore)
    evaluation = evaluate(result or make_result(findings), policy, baseline, TODAY)
    return Report(
        evaluations=(evaluation,),
        verdict=combine([evaluation]),
        gate=policy.gate,
        tool_version="0.1.0",
        sarif_anchor=sarif_anchor,
        interrupted=interrupted,
    )


def sample_reports() -> dict[str, Report]:
    """The report shapes every formatter must handle (acceptance: empty, one, 10,000, hostile)."""
    ignore = (IgnoreRule(index=0, rule="rule-1", reason="accepted risk (SEC-1)"),)
    baseline = Baseline.from_findings([make_finding(2), make_finding(3)])
    return {
        "empty": make_report([]),
        "one": make_report([make_finding(4)]),
        "many": make_report([make_finding(i) for i in range(10_000)]),
        "hostile": make_report([hostile_finding(i) for i in range(20)]),
        "mixed": make_report(
            [make_finding(i) for i in range(40)], ignore=ignore, baseline=baseline
        ),
        "incomplete": make_report(
            result=make_result(
                [make_finding(1)], status=ScanStatus.FAILED, message="scanner crashed"
            )
        ),
        "count-only": make_report(
            result=make_result(
                [
                    Finding.create(
                        provider="vaddy",
                        rule_id="vaddy-alert",
                        title="VAddy alert 1 (details in the VAddy console)",
                        severity=Severity.HIGH,
                        url="https://console.vaddy.net/scan/1",
                        fingerprint="vaddy:proj:1",
                    )
                ],
                provider="vaddy",
                scanner="VAddy",
                count_summary=CountSummary(
                    alert_count=1, scan_count=120, checks=("SQL Injection", "XSS")
                ),
            )
        ),
    }


@pytest.fixture(scope="session")
def reports() -> dict[str, Report]:
    """Every sample report, built once."""
    return sample_reports()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SCANGATE_*, GITHUB_*, GITLAB_* or provider credentials leak in from the host."""
    prefixes = (
        "SCANGATE_",
        "GITHUB_",
        "GITLAB_",
        "CI_",
        "CYSTACK_",
        "CYBERSECPRO_",
        "VADDY_",
        "CYBERORIGEN_",
        "NCP_",
        "INPUT_",
        "RUNNER_",
    )
    for key in list(os.environ):
        if key.startswith(prefixes) or key in ("CI", "GITLAB_CI"):
            monkeypatch.delenv(key, raising=False)
    yield
