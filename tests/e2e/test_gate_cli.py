"""The gate through the real CLI: a baseline never lets an escalated finding pass, a scan given
twice is refused, and provider false positives are shown apart from `ignore:` suppressions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci import parse_output_file
from conftest import make_report, make_result

from e2e.support import REPORT_FILES, CliRun, cli_env, run_cli, run_scenario
from scangate.formats.json import JsonFormatter
from scangate.model import Finding, Severity

pytestmark = pytest.mark.slow

PROVIDER = "cyberorigen"


def order_xss(severity: Severity, title: str, order: int) -> Finding:
    """Issue 13's measured case: one rule and parameter, numeric segments normalized."""
    return Finding.create(
        provider=PROVIDER,
        rule_id="xss",
        title=title,
        severity=severity,
        url=f"https://shop.example.com/orders/{order}?id={order}",
        method="GET",
        parameter="id",
    )


LOOKUP = order_xss(Severity.LOW, "Reflected XSS in order lookup", 1001)
ADMIN_NOTES = order_xss(Severity.HIGH, "Stored XSS in order admin notes", 2002)


def write_policy(directory: Path, **extra: Any) -> None:
    policy = {
        "version": 1,
        "provider": {"name": PROVIDER},
        "scan": {"target": "shop.example.com"},
        "reports": {"dir": "reports"},
        **extra,
    }
    (directory / ".scangate.yml").write_text(yaml.safe_dump(policy), encoding="utf-8")


def write_results(path: Path, scan_id: str, *findings: Finding) -> Path:
    """A `scangate.json` as `scangate run` writes it, for one scan holding `findings`."""
    report = make_report(result=make_result(list(findings), scan_id=scan_id))
    path.write_text(JsonFormatter().render(report), encoding="utf-8")
    return path


def scangate(tmp_path: Path, *args: str) -> CliRun:
    return run_cli(list(args), cwd=tmp_path, env=cli_env({}))


def assert_plain_failure(run: CliRun) -> None:
    assert "Traceback" not in run.stderr


# --- Escalation ---------------------------------------------------------------------------------


def test_a_baselined_low_does_not_let_a_high_with_its_fingerprint_pass(tmp_path: Path) -> None:
    assert LOOKUP.fingerprint == ADMIN_NOTES.fingerprint
    write_results(tmp_path / "old.json", "scan_old", LOOKUP)
    made = scangate(tmp_path, "baseline", "--results", "old.json", "-o", "base.json")
    assert made.exit == 0, made.stderr
    (entry,) = json.loads((tmp_path / "base.json").read_text("utf-8"))["findings"]
    assert (entry["fingerprint"], entry["severity"]) == (LOOKUP.fingerprint, "low")
    write_policy(tmp_path, baseline="base.json", gate={"fail_on": "high", "new_only": True})

    known = scangate(tmp_path, "gate", "--results", "old.json")
    assert known.exit == 0, known.stderr  # the baselined low itself still passes

    write_results(tmp_path / "new.json", "scan_new", ADMIN_NOTES)
    run = scangate(tmp_path, "gate", "--results", "new.json")
    assert run.exit == 1, run.stderr
    assert_plain_failure(run)
    assert (
        "- 1 finding(s) escalated: more severe than their baseline entry, so not accepted by it"
        in run.stderr
    )
    assert "FAILED: 1 counted (1 high), 1 failing" in run.stderr
    assert run.stderr.rstrip().splitlines()[-2].endswith("0 baselined, 0 new, 1 escalated")

    scan = run.results()["scans"][0]
    (finding,) = scan["findings"]
    assert finding["gate"]["decision"] == "failing"
    assert (finding["gate"]["baseline_state"], finding["gate"]["baseline_severity"]) == (
        "escalated",
        "low",
    )
    assert scan["gate"]["counts"]["high"]["escalated"] == 1
    assert scan["gate"]["fixed"] == []

    (result,) = run.parsed("scangate.sarif")["runs"][0]["results"]
    assert result["baselineState"] == "updated"
    assert result["properties"]["baseline"] == "escalated"
    assert result["properties"]["baselineSeverity"] == "low"
    assert "failing, escalated from low" in run.report("summary.md")
    assert "(escalated from low)" in run.report("junit.xml")
    assert "Baseline: escalated from low" in run.report("gl-dast-report.json")


def test_an_old_baseline_without_severities_loads_and_fails_closed(tmp_path: Path) -> None:
    old = {"scangate_baseline": 1, "findings": [{"fingerprint": LOOKUP.fingerprint}]}
    (tmp_path / "base.json").write_text(json.dumps(old), encoding="utf-8")
    write_policy(tmp_path, baseline="base.json", gate={"fail_on": "low", "new_only": True})
    write_results(tmp_path / "now.json", "scan_1", LOOKUP)
    run = scangate(tmp_path, "gate", "--results", "now.json")
    assert run.exit == 1, run.stderr
    assert "base.json: 1 baseline entries have no severity; they are read as info" in run.stderr
    (finding,) = run.results()["scans"][0]["findings"]
    assert finding["gate"]["baseline_state"] == "escalated"
    assert finding["gate"]["reason"].endswith("(no severity recorded, read as info)")


# --- A scan given twice -------------------------------------------------------------------------


def test_a_scan_given_twice_is_refused_naming_both_files(tmp_path: Path) -> None:
    write_policy(tmp_path)
    first = write_results(tmp_path / "a.json", "scan_a", LOOKUP)
    (tmp_path / "copy.json").write_bytes(first.read_bytes())
    write_results(tmp_path / "c.json", "scan_c", ADMIN_NOTES)

    same = scangate(tmp_path, "gate", "--results", "a.json", "--results", "a.json")
    assert same.exit == 2
    assert "a.json is given twice: its scans would be counted twice" in same.stderr
    assert not same.out_dir.exists()  # refused before any report is written

    copied = scangate(tmp_path, "gate", "--results", "a.json", "--results", "copy.json")
    assert copied.exit == 2
    assert 'cyberorigen scan "scan_a" is given in both a.json and copy.json' in copied.stderr
    assert_plain_failure(copied)

    merged = scangate(tmp_path, "gate", "--results", "a.json", "--results", "c.json")
    assert merged.exit == 1, merged.stderr
    again = scangate(tmp_path, "gate", "--results", "reports/scangate.json", "--results", "c.json")
    assert again.exit == 2
    assert "is given in both reports/scangate.json and c.json" in again.stderr

    base = scangate(
        tmp_path, "baseline", "--results", "a.json", "--results", "copy.json", "-o", "b"
    )
    assert base.exit == 2
    assert "a.json and copy.json" in base.stderr
    assert not (tmp_path / "b").exists()


# --- Provider false positives apart from ignore: suppressions ----------------------------------


def test_cystack_false_positives_are_shown_apart_from_ignored_findings(tmp_path: Path) -> None:
    # The `findings` scenario holds one provider false positive (a high); the policy ignores the
    # low cookie finding.
    ignore = [{"title": "Cookie without Secure flag", "reason": "accepted until SSO (SEC-3)"}]
    output = tmp_path / "github_output"
    output.write_text("", encoding="utf-8")
    run, _ = run_scenario(
        tmp_path,
        "cystack",
        "findings",
        extra={"ignore": ignore},
        env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output)},
    )
    assert run.exit == 1, run.stderr
    for name in REPORT_FILES:
        assert (run.out_dir / name).is_file(), name
    assert "1 failing, 1 ignored, 1 false positive, 0 baselined" in run.stderr

    counts = run.results()["scans"][0]["gate"]["counts"]
    assert (counts["high"]["false_positive"], counts["high"]["ignored"]) == (1, 0)
    assert (counts["low"]["false_positive"], counts["low"]["ignored"]) == (0, 1)

    summary = run.report("summary.md")
    assert "| Ignored (policy) | False positive (provider) |" in summary
    assert "| **Total** | **6** | **4** | **1** | **1** | **1** |" in summary

    outputs = parse_output_file(output.read_text(encoding="utf-8"))
    assert (outputs["ignored"], outputs["false-positives"]) == ("1", "1")
    assert outputs["escalated"] == ""  # no baseline
