"""End to end: dated enforcement and expiring ignore entries (issue 20).

The real CLI, `scangate run --sandbox` (the bundled CyberOrigen emulator on 127.0.0.1, scenario
`findings`), under a policy whose `gate.enforce_from` is ahead of today or behind it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from e2e.support import CliRun, assert_sane_stderr, cli_env, run_cli

pytestmark = pytest.mark.slow

POLICY = """\
version: 1
provider:
  name: cyberorigen
scan:
  target: https://staging.example.com
  timeout: 60s
gate:
  fail_on: high
  enforce_from: {enforce_from}
reports:
  dir: reports
ignore:
  - rule: no-such-rule
    reason: accepted until SEC-12 ships
    expires: {expires}
"""


def run_enforced_from(tmp_path: Path, days: int) -> tuple[CliRun, str]:
    """`scangate run --sandbox` with `enforce_from` `days` after today (UTC; negative: before),
    and an ignore entry expiring in 5 days; return the run and the enforcement day."""
    today = datetime.now(UTC).date()
    starts = today + timedelta(days=days)
    text = POLICY.format(enforce_from=starts, expires=today + timedelta(days=5))
    (tmp_path / ".scangate.yml").write_text(text, encoding="utf-8")
    return run_cli(["run", "--sandbox"], cwd=tmp_path, env=cli_env({})), str(starts)


def lines(run: CliRun) -> list[str]:
    return [line.removeprefix("scangate: ") for line in run.stderr.splitlines()]


def test_before_enforce_from_the_run_passes_and_lists_what_would_fail(tmp_path: Path) -> None:
    run, starts = run_enforced_from(tmp_path, 44)
    assert run.exit == 0, run.stderr
    assert_sane_stderr(run.stderr)
    log = lines(run)
    heading = log.index(
        f"would-fail findings, deferred: the gate is enforced from {starts}, in 44 days (1):"
    )
    assert log[heading + 1].startswith("  1. high · SQL Injection in search parameter · ")
    assert log[heading + 1].endswith(" · high ≥ fail_on high")
    assert f"  - 1 finding would fail the gate; it is enforced from {starts} (in 44 days)" in log
    assert any(
        line.startswith("PASSED: ") and f"0 failing, 1 deferred until {starts}" in line
        for line in log
    )
    expires = (datetime.now(UTC).date() + timedelta(days=5)).isoformat()
    assert (
        f"warning: ignore[0] expires on {expires} (in 5 days): accepted until SEC-12 ships" in log
    )
    results = json.loads((tmp_path / "reports" / "scangate.json").read_text("utf-8"))
    decisions = [f["gate"]["decision"] for f in results["scans"][0]["findings"]]
    assert decisions.count("deferred") == 1 and "failing" not in decisions
    summary = (tmp_path / "reports" / "summary.md").read_text("utf-8")
    assert f"### Would fail from {starts}" in summary


def test_from_enforce_from_on_the_same_run_fails(tmp_path: Path) -> None:
    run, _ = run_enforced_from(tmp_path, -1)
    assert run.exit == 1, run.stderr
    log = lines(run)
    assert "failing findings (1):" in log
    assert not any("deferred" in line or "would fail" in line for line in log)
    assert any(line.startswith("FAILED: ") for line in log)
