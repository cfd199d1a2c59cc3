"""The decision explained in the log (issue 17, item 1): the failing tier, the warn tier, why."""

from __future__ import annotations

import io
import re
from datetime import date
from pathlib import Path

from conftest import HOSTILE, TODAY, make_finding, make_policy, make_report, make_result

from scangate.baseline import Baseline
from scangate.explain import SHOWN, decision_lines, where_listed
from scangate.formats import Report
from scangate.gate import combine, evaluate
from scangate.model import Finding, Severity
from scangate.output import Console
from scangate.policy import GateSettings, IgnoreRule
from scangate.redact import Redactor

ALL_WRITTEN = [
    Path("reports") / name
    for name in (
        "scangate.sarif",
        "junit.xml",
        "gl-dast-report.json",
        "scangate.json",
        "summary.md",
    )
]


def finding(severity: Severity, n: int, **overrides: object) -> Finding:
    fields: dict[str, object] = {
        "severity": severity,
        "title": f"{severity.label} issue {n}",
        "url": f"https://app.example.com/{severity.label}/{n}",
        "method": "POST",
        "parameter": f"p{n}",
    }
    fields.update(overrides)
    return make_finding(n, **fields)


def items(lines: list[str]) -> list[str]:
    """The numbered finding lines, without their number."""
    return [re.sub(r"^  \d+\. ", "", line) for line in lines if re.match(r"^  \d+\. ", line)]


def test_a_failing_finding_names_severity_title_request_parameter_and_threshold() -> None:
    report = make_report([finding(Severity.HIGH, 1)], gate=GateSettings(fail_on=Severity.HIGH))
    assert decision_lines(report, ALL_WRITTEN) == [
        "failing findings (1):",
        "  1. high · high issue 1 · POST https://app.example.com/high/1 · parameter p1"
        " · high ≥ fail_on high",
    ]


def test_at_most_ten_per_tier_most_severe_first_then_how_many_more_and_where() -> None:
    findings = [finding(Severity.HIGH, n) for n in range(8)]
    findings += [finding(Severity.CRITICAL, n) for n in range(8, 12)]
    findings += [finding(Severity.LOW, n) for n in range(12, 25)]
    report = make_report(findings, gate=GateSettings(warn_on=Severity.LOW))
    lines = decision_lines(report, ALL_WRITTEN)

    failing_end = lines.index("warned findings, not failing (13; the 10 most severe first):")
    failing, warned = lines[:failing_end], lines[failing_end:]
    assert failing[0] == "failing findings (12; the 10 most severe first):"
    severities = [item.split(" · ")[0] for item in items(failing)]
    assert severities == ["critical"] * 4 + ["high"] * 6
    assert failing[-1] == "  … and 2 more in reports/summary.md"
    assert len(items(warned)) == SHOWN
    assert all(item.endswith("low ≥ warn_on low") for item in items(warned))
    assert warned[-1] == "  … and 3 more in reports/summary.md"


def test_a_budget_names_the_count_and_the_budget_both_over_and_within() -> None:
    over = [finding(Severity.MEDIUM, n) for n in range(3)]
    gate = GateSettings(fail_on=Severity.HIGH, max={Severity.MEDIUM: 2, Severity.LOW: 5})
    report = make_report([*over, finding(Severity.LOW, 3)], gate=gate)
    lines = decision_lines(report, ALL_WRITTEN)
    assert lines[0] == "failing findings (3, most severe first):"
    for item in items(lines)[:3]:
        assert item.endswith(" · 3 medium counted, over budget max.medium: 2")
    assert lines[-2] == "warned findings, not failing (1):"
    assert items(lines)[-1].endswith(" · within budget max.low: 5 (1 counted)")


def test_the_warn_tier_holds_what_warns_and_never_what_is_below_or_not_counted() -> None:
    below = finding(Severity.INFO, 1)
    ignored = finding(Severity.MEDIUM, 2, rule_id="accepted")
    warned = finding(Severity.MEDIUM, 3)
    ignore = (IgnoreRule(index=0, rule="accepted", reason="SEC-1"),)
    gate = GateSettings(fail_on=Severity.HIGH, warn_on=Severity.LOW)
    lines = decision_lines(make_report([below, ignored, warned], gate=gate, ignore=ignore), [])
    assert lines == [
        "warned findings, not failing (1):",
        "  1. medium · medium issue 3 · POST https://app.example.com/medium/3 · parameter p3"
        " · medium ≥ warn_on low",
    ]


def test_nothing_failing_or_warned_prints_no_tier() -> None:
    assert decision_lines(make_report([finding(Severity.LOW, 1)]), ALL_WRITTEN) == []
    assert decision_lines(make_report([]), ALL_WRITTEN) == []


def test_an_expired_ignore_and_the_baseline_say_why_a_finding_counts() -> None:
    expired = finding(Severity.HIGH, 1, rule_id="was-accepted")
    grown = {"rule_id": "grew", "title": "grew", "url": "https://app.example.com/grew"}
    escalated = finding(Severity.CRITICAL, 2, **grown)
    new = finding(Severity.HIGH, 3)
    old = Baseline.from_findings([finding(Severity.LOW, 2, **grown)])
    assert old.fingerprints == {escalated.fingerprint}
    ignore = (IgnoreRule(index=0, rule="was-accepted", reason="SEC-2", expires=date(2026, 1, 31)),)
    report = make_report([expired, escalated, new], ignore=ignore, baseline=old)
    found = {item.split(" · ")[1]: item for item in items(decision_lines(report, ALL_WRITTEN))}
    assert found["grew"].endswith("critical ≥ fail_on high; escalated from low")
    assert found["high issue 1"].endswith(
        "high ≥ fail_on high; ignore[0] expired on 2026-01-31; new since baseline"
    )
    assert found["high issue 3"].endswith("high ≥ fail_on high; new since baseline")


def merged_report(*scans: tuple[str, list[Finding]]) -> Report:
    policy = make_policy(GateSettings(fail_on=Severity.MEDIUM))
    evaluations = tuple(
        evaluate(make_result(found, target=target, scan_id=target), policy, None, TODAY)
        for target, found in scans
    )
    return Report(evaluations=evaluations, verdict=combine(evaluations), gate=policy.gate)


def test_merged_scans_prefix_each_finding_with_its_target_most_severe_first_over_all() -> None:
    report = merged_report(
        ("https://a.example.com", [finding(Severity.MEDIUM, n) for n in range(6)]),
        ("https://b.example.com", [finding(Severity.HIGH, n) for n in range(6, 12)]),
    )
    lines = decision_lines(report, ALL_WRITTEN)
    assert lines[0] == "failing findings (12; the 10 most severe first):"
    shown = items(lines)
    assert [s.split(" · ")[0] for s in shown] == ["https://b.example.com: high"] * 6 + [
        "https://a.example.com: medium"
    ] * 4
    assert lines[-1] == "  … and 2 more in reports/summary.md"


def test_the_rest_are_pointed_to_the_report_that_holds_them() -> None:
    summary, json_ = Path("out/summary.md"), Path("out/scangate.json")
    assert where_listed([json_, summary], 50) == "in out/summary.md"
    # summary.md lists the 50 worst: beyond that the complete report is named too.
    assert (
        where_listed([json_, summary], 51)
        == "in out/summary.md (the 50 worst), all in out/scangate.json"
    )
    assert where_listed([summary], 5000) == "in out/summary.md"
    assert where_listed([Path("out/junit.xml"), json_], 3) == "in out/scangate.json"
    assert where_listed([Path("out/junit.xml")], 3) == "in out/junit.xml"
    assert "reports.formats" in where_listed([], 3)


def test_hostile_provider_text_stays_on_one_short_line_and_forges_no_command() -> None:
    hostile = [
        finding(
            Severity.CRITICAL,
            n,
            title=HOSTILE * 3,
            url="https://app.example.com/" + HOSTILE * 4,
            parameter="\n::error::x" + HOSTILE,
            method="GET\n::warning::y",
        )
        for n in range(12)
    ]
    lines = decision_lines(make_report(hostile), ALL_WRITTEN)
    assert len(items(lines)) == SHOWN
    stream = io.StringIO()
    console = Console(Redactor(), stream)
    for line in lines:
        console.line(line)
    printed = stream.getvalue().splitlines()
    assert len(printed) == len(lines)  # nothing broke a finding over several lines
    for line in printed:
        assert not re.match(r"\s*(::|##\[)", line.removeprefix("scangate: "))
        assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", line)
    for item in items(lines):
        title = item.split(" · ")[1]
        assert len(title) <= 120 and title.endswith("…")
        request = next(part for part in item.split(" · ") if "https://app.example.com/" in part)
        url = request[request.index("https://app.example.com/") :]
        assert len(url) <= 120 and "…" in url


def test_a_long_url_keeps_its_start_and_its_end() -> None:
    url = "https://app.example.com/" + "segment/" * 40 + "the-page-that-differs?id=7"
    (item,) = items(decision_lines(make_report([finding(Severity.HIGH, 1, url=url)]), []))
    shown = item.split(" · ")[2].removeprefix("POST ")
    assert len(shown) == 120
    assert shown.startswith("https://app.example.com/segment/")
    assert shown.endswith("the-page-that-differs?id=7")


# --- dated enforcement (issue 20) ---------------------------------------------------------------


def test_deferred_findings_are_a_tier_of_their_own_saying_when_they_fail() -> None:
    gate = GateSettings(
        fail_on=Severity.HIGH,
        max={Severity.MEDIUM: 0},
        warn_on=Severity.LOW,
        enforce_from=date(2027, 1, 5),
    )
    findings = [finding(Severity.HIGH, 1), finding(Severity.MEDIUM, 2), finding(Severity.LOW, 3)]
    assert decision_lines(make_report(findings, gate=gate), ALL_WRITTEN) == [
        "would-fail findings, deferred: the gate is enforced from 2027-01-05, in 44 days "
        "(2, most severe first):",
        "  1. high · high issue 1 · POST https://app.example.com/high/1 · parameter p1"
        " · high ≥ fail_on high",
        "  2. medium · medium issue 2 · POST https://app.example.com/medium/2 · parameter p2"
        " · 1 medium counted, over budget max.medium: 0",
        "warned findings, not failing (1):",
        "  1. low · low issue 3 · POST https://app.example.com/low/3 · parameter p3"
        " · low ≥ warn_on low",
    ]


def test_from_the_day_of_enforcement_the_same_findings_are_the_failing_tier() -> None:
    gate = GateSettings(fail_on=Severity.HIGH, enforce_from=TODAY)
    lines = decision_lines(make_report([finding(Severity.HIGH, 1)], gate=gate), ALL_WRITTEN)
    assert lines[0] == "failing findings (1):"
    assert not any("deferred" in line for line in lines)
