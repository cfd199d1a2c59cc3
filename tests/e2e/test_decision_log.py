"""End to end: the log ends with the decision explained (issue 17, item 1), in every CI mode.

The real CLI against the sandbox emulators on 127.0.0.1: a failing run names the finding that
fails, with its request, parameter and threshold; a run that passes with warnings names what
warns; GitHub Actions and GitLab CI get the same lines in the log as a local run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import HOSTILE, make_finding, make_report, make_result

from e2e.support import (
    EXAMPLE_POLICIES,
    CliRun,
    assert_sane_stderr,
    cli_env,
    run_cli,
    run_scenario,
)
from scangate.ci.gitlab import DOTENV_NAME
from scangate.formats.json import JsonFormatter
from scangate.model import Finding, Severity

pytestmark = pytest.mark.slow

ITEM = re.compile(r"^scangate:   \d+\. (.*)$")


def decision_block(stderr: str) -> list[str]:
    """The lines from the first tier heading through the verdict line, prefix removed."""
    lines = [line.removeprefix("scangate: ") for line in stderr.splitlines()]
    first = next(i for i, line in enumerate(lines) if line.startswith(("failing", "warned")))
    verdict = next(
        i for i, line in enumerate(lines) if re.match(r"(PASSED|FAILED|INCOMPLETE):", line)
    )
    return lines[first : verdict + 1]


def listed(stderr: str) -> list[str]:
    """Every finding line of both tiers, without its number."""
    return [m.group(1) for line in stderr.splitlines() if (m := ITEM.match(line))]


def decided(run: CliRun, *decisions: str) -> list[dict[str, Any]]:
    """The findings of `scangate.json` that the gate gave one of `decisions`."""
    findings = run.results()["scans"][0]["findings"]
    return [f for f in findings if f["gate"]["decision"] in decisions]


def request_text(finding: dict[str, Any]) -> str:
    return " ".join(p for p in (finding.get("method") or "", finding["url"]) if p)


def test_a_failing_ncp_run_names_its_high_finding_request_parameter_and_threshold(
    tmp_path: Path,
) -> None:
    run, _ = run_scenario(tmp_path, "ncp-wsc", "findings", gate={"fail_on": "high"})
    assert run.exit == 1, run.stderr
    assert_sane_stderr(run.stderr)
    (high,) = decided(run, "failing")
    assert high["severity"] == "high" and high["parameter"] and high["method"]
    block = decision_block(run.stderr)
    assert block[0] == "failing findings (1):"
    assert block[1] == (
        f"  1. high · {high['title']} · {request_text(high)} · parameter {high['parameter']}"
        " · high ≥ fail_on high"
    )
    assert block[-2] == "  - 1 high finding(s) at or above fail_on: high"
    assert block[-1].startswith("FAILED: ")
    assert run.stderr.rstrip().splitlines()[-1] == "scangate: reports written to reports"


def test_the_readme_first_run_names_every_finding_it_warns_about(tmp_path: Path) -> None:
    # README "Try it": `scangate run --policy examples/policies/cyberorigen.yml --sandbox`.
    policy = EXAMPLE_POLICIES / "cyberorigen.yml"
    args = ["run", "--policy", str(policy), "--sandbox", "--out-dir", "reports"]
    run = run_cli(args, cwd=tmp_path, env=cli_env({}))
    assert run.exit == 0, run.stderr
    assert_sane_stderr(run.stderr)
    warned = decided(run, "warning", "within_budget")
    assert any(f["severity"] == "high" and "SQL" in f["title"] for f in warned)
    lines = listed(run.stderr)
    assert len(lines) == len(warned)
    for finding, line in zip(warned, lines, strict=True):  # both most severe first
        assert line.startswith(f"{finding['severity']} · {finding['title']} · ")
        assert request_text(finding) in line
    assert "high ≥ warn_on low" in lines[0]
    block = decision_block(run.stderr)
    assert block[0] == f"warned findings, not failing ({len(warned)}, most severe first):"
    assert block[-1].startswith("PASSED: ")


def test_github_and_gitlab_get_the_same_decision_lines_as_a_local_run(tmp_path: Path) -> None:
    runs = {}
    ci_env = {
        "local": {},
        "github": {
            "GITHUB_ACTIONS": "true",
            "GITHUB_OUTPUT": str(tmp_path / "github" / "output.txt"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "github" / "step-summary.md"),
        },
        "gitlab": {"GITLAB_CI": "true"},
    }
    for name, env in ci_env.items():
        (tmp_path / name).mkdir()
        runs[name], _ = run_scenario(
            tmp_path / name, "ncp-wsc", "findings", env=env, gate={"warn_on": "low"}
        )
        assert runs[name].exit == 1, runs[name].stderr
        assert_sane_stderr(runs[name].stderr)
    local = decision_block(runs["local"].stderr)
    assert local[0] == "failing findings (1):" and "warned findings, not failing" in "\n".join(
        local
    )
    assert decision_block(runs["github"].stderr) == local
    assert decision_block(runs["gitlab"].stderr) == local
    # The CI modes were really on: their own surfaces were written too.
    assert (tmp_path / "github" / "step-summary.md").read_text("utf-8").strip()
    assert "verdict<<" in (tmp_path / "github" / "output.txt").read_text("utf-8")
    assert (runs["gitlab"].out_dir / DOTENV_NAME).is_file()


# --- scangate gate: several scans, many findings, hostile text ----------------------------------


def write_results(path: Path, target: str, findings: list[Finding]) -> str:
    report = make_report(result=make_result(findings, scan_id=f"scan-{path.stem}", target=target))
    path.write_text(JsonFormatter().render(report), encoding="utf-8")
    return path.name


def gate(tmp_path: Path, *results: str, formats: str = "[json, markdown]") -> CliRun:
    (tmp_path / ".scangate.yml").write_text(
        "version: 1\nprovider: {name: cyberorigen}\nscan: {target: app.example.com}\n"
        "gate: {fail_on: high, warn_on: medium}\n"
        f"reports: {{dir: reports, formats: {formats}}}\n",
        encoding="utf-8",
    )
    args = ["gate"] + [arg for name in results for arg in ("--results", name)]
    return run_cli(args, cwd=tmp_path, env=cli_env({}))


def test_merged_scans_name_each_finding_s_target_and_cap_the_list(tmp_path: Path) -> None:
    highs = [make_finding(n, severity=Severity.HIGH, title=f"high {n}") for n in range(7)]
    mediums = [make_finding(n, severity=Severity.MEDIUM, title=f"medium {n}") for n in range(3)]
    criticals = [make_finding(n, severity=Severity.CRITICAL, title=f"crit {n}") for n in range(6)]
    a = write_results(tmp_path / "a.json", "https://a.example.com", highs + mediums)
    b = write_results(tmp_path / "b.json", "https://b.example.com", criticals)
    run = gate(tmp_path, a, b)
    assert run.exit == 1, run.stderr
    block = decision_block(run.stderr)
    assert block[0] == "failing findings (13; the 10 most severe first):"
    heads = [line.split(" · ")[0] for line in listed(run.stderr)]
    assert (
        heads[:10] == ["https://b.example.com: critical"] * 6 + ["https://a.example.com: high"] * 4
    )
    assert block[11] == "  … and 3 more in reports/summary.md"
    assert block[12] == "warned findings, not failing (3, most severe first):"
    assert heads[10:] == ["https://a.example.com: medium"] * 3
    assert "  - https://a.example.com: 7 high finding(s) at or above fail_on: high" in block
    assert "  - https://b.example.com: 6 critical finding(s) at or above fail_on: high" in block


def test_without_summary_md_the_rest_are_pointed_to_the_report_written(tmp_path: Path) -> None:
    highs = [make_finding(n, severity=Severity.HIGH) for n in range(12)]
    run = gate(
        tmp_path,
        write_results(tmp_path / "a.json", "https://a.example.com", highs),
        formats="[json]",
    )
    assert run.exit == 1, run.stderr
    assert "scangate:   … and 2 more in reports/scangate.json" in run.stderr.splitlines()


def test_hostile_findings_are_one_short_inert_line_each(tmp_path: Path) -> None:
    hostile = [
        make_finding(
            n,
            severity=Severity.CRITICAL,
            title=HOSTILE * 2,
            url="https://x/" + HOSTILE * 3,
            parameter=HOSTILE,
        )
        for n in range(3)
    ]
    run = gate(tmp_path, write_results(tmp_path / "h.json", "https://h.example.com", hostile))
    assert run.exit == 1, run.stderr
    assert_sane_stderr(run.stderr)
    lines = listed(run.stderr)
    assert len(lines) == 3
    for line in lines:
        severity, title, request, parameter, why = line.split(" · ")
        assert (severity, why) == ("critical", "critical ≥ fail_on high")
        assert title.startswith("<script>alert(1)</script>") and title.endswith("…")
        assert len(title) <= 120 and len(request.removeprefix("GET ").removeprefix("POST ")) <= 120
        assert parameter.startswith("parameter ") and len(parameter) <= len("parameter ") + 60
        assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e]", line)
