"""Reports of issue 20 for the format tests: findings deferred until `gate.enforce_from`, and
ignore entries that expire within `gate.warn_before` days."""

from __future__ import annotations

from datetime import date, timedelta

from conftest import TODAY, make_finding, make_report

from scangate.formats.interface import Report
from scangate.model import Decision, Finding, Severity
from scangate.policy import GateSettings, IgnoreRule

ENFORCE_FROM = TODAY + timedelta(days=44)
"""2027-01-05: 44 days after the tests' today."""
EXPIRES = TODAY + timedelta(days=5)


def deferred_findings() -> list[Finding]:
    """Two highs (would fail under `fail_on: high`), a low, and one the expiring entry ignores."""
    return [
        make_finding(1, severity=Severity.HIGH, title="SQL Injection in search"),
        make_finding(2, severity=Severity.HIGH, title="Reflected XSS"),
        make_finding(3, severity=Severity.LOW, title="Missing header"),
        make_finding(4, severity=Severity.MEDIUM, rule_id="accepted-risk"),
    ]


EXPIRING = IgnoreRule(
    index=0, reason="accepted until SEC-12 ships", rule="accepted-risk", expires=EXPIRES
)


def deferred_report(enforce_from: date | None = ENFORCE_FROM) -> Report:
    """The findings above under `fail_on: high` and `enforce_from` (None: enforced)."""
    gate = GateSettings(fail_on=Severity.HIGH, warn_on=Severity.LOW, enforce_from=enforce_from)
    report = make_report(deferred_findings(), gate=gate, ignore=(EXPIRING,))
    (evaluation,) = report.evaluations
    wanted = Decision.DEFERRED if enforce_from is not None else Decision.FAILING
    assert sum(j.decision is wanted for j in evaluation.judgements) == 2
    return report
