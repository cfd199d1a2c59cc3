"""Tests for the JUnit formatter: both XSDs, unique case keys, the decision mapping, safety."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import xmlschema
from conftest import (
    TODAY,
    make_finding,
    make_policy,
    make_report,
    make_result,
    sample_reports,
)

from formats.junit_xsd import junit_errors, junit_schemas, without_case_output
from scangate.baseline import Baseline
from scangate.formats import formatter
from scangate.formats.interface import Report
from scangate.formats.junit import (
    DETAIL_BUDGET,
    HEALTH_CLASSNAME,
    OUTPUT_BUDGET,
    JUnitFormatter,
)
from scangate.gate import Decision, Verdict, combine, evaluate
from scangate.model import ScanStatus, Severity
from scangate.policy import GateSettings, IgnoreRule

_XML_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@pytest.fixture(scope="module")
def xsds() -> dict[str, xmlschema.XMLSchema]:
    """Both JUnit schemas, parsed once."""
    return junit_schemas()


def render(report: Report) -> str:
    return JUnitFormatter().render(report)


def parse(report: Report) -> ET.Element:
    return ET.fromstring(render(report))


def cases(root: ET.Element) -> list[ET.Element]:
    return root.findall("./testsuite/testcase")


def outcome(case: ET.Element) -> str:
    """`failure`, `error`, `skipped` or `pass`; the case's own `system-out` comes last."""
    children = [child.tag for child in case]
    if children and children[-1] == "system-out":
        children.pop()
    assert "system-out" not in children, "one system-out per case, after the outcome"
    assert len(children) <= 1, "the Ant XSD allows at most one outcome element per case"
    return children[0] if children else "pass"


def assert_valid(xml: str, xsds: dict[str, xmlschema.XMLSchema]) -> None:
    """Valid against the Jenkins XSD as written, and against the Ant XSD in every other rule
    (`junit_xsd`)."""
    errors = list(junit_errors(xml, xsds))
    assert not errors, errors[0]


def test_the_ant_xsd_alone_refuses_a_case_output_and_nothing_else(
    xsds: dict[str, xmlschema.XMLSchema],
) -> None:
    """What `junit_errors` leaves out of the Ant check is exactly the cases' `system-out`."""
    xml = render(_all_decisions_report())
    assert "</system-out>\n    </testcase>" in xml
    refused = [str(e.reason) for e in xsds["ant"].iter_errors(xml)]
    assert refused and all("'system-out'" in reason for reason in refused)
    assert not list(xsds["ant"].iter_errors(without_case_output(xml)))
    assert not list(xsds["jenkins"].iter_errors(xml))


def test_registry_name_and_filename() -> None:
    junit = formatter("junit")
    assert isinstance(junit, JUnitFormatter)
    assert (junit.name, junit.filename) == ("junit", "junit.xml")


@pytest.mark.parametrize("shape", sorted(sample_reports()))
def test_every_sample_validates_against_both_xsds(
    shape: str, reports: dict[str, Report], xsds: dict[str, xmlschema.XMLSchema]
) -> None:
    xml = render(reports[shape])
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert_valid(xml, xsds)
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    for suite in root.findall("testsuite"):
        assert suite.findall("testcase"), "every suite has at least one test case"


def test_suite_counts_match_the_cases(reports: dict[str, Report]) -> None:
    for report in reports.values():
        for suite in parse(report).findall("testsuite"):
            outcomes = [outcome(case) for case in suite.findall("testcase")]
            assert suite.get("tests") == str(len(outcomes))
            assert suite.get("failures") == str(outcomes.count("failure"))
            assert suite.get("errors") == str(outcomes.count("error"))
            assert suite.get("skipped") == str(outcomes.count("skipped"))


def test_empty_report_has_one_passing_health_case(reports: dict[str, Report]) -> None:
    (case,) = cases(parse(reports["empty"]))
    assert case.get("classname") == HEALTH_CLASSNAME
    assert outcome(case) == "pass"
    assert "https://app.example.com" in (case.get("name") or "")


def test_unique_classname_and_name_across_10000_findings(reports: dict[str, Report]) -> None:
    keys = [(c.get("classname"), c.get("name")) for c in cases(parse(reports["many"]))]
    assert len(keys) == 10_001
    assert len(set(keys)) == len(keys)


def test_names_stay_unique_when_they_collide_only_after_sanitizing(
    xsds: dict[str, xmlschema.XMLSchema],
) -> None:
    base = {"url": "https://app.example.com/a", "method": "GET"}
    findings = [
        make_finding(1, rule_id="x.y", parameter="p", **base),
        make_finding(1, rule_id="x y", parameter="p", **base),  # same class slug `x_y`
        make_finding(1, rule_id="x.y", parameter="p\x00", **base),  # same name once cleaned
        make_finding(1, rule_id="x.y", parameter="p   ", **base),  # same name once collapsed
        make_finding(1, rule_id="x.y", parameter="p", **base),  # an exact duplicate
        make_finding(1, rule_id="x.y", parameter="p", **base),
    ]
    xml = render(make_report(findings))
    assert_valid(xml, xsds)
    keys = [(c.get("classname"), c.get("name")) for c in cases(ET.fromstring(xml))[1:]]
    assert {k[0] for k in keys} == {"dast.low.x_y"}
    assert len(set(keys)) == len(findings)
    assert keys[0][1] == "GET /a [p]", "the first of its kind keeps the plain name"


def _all_decisions_report(enforce_from: date | None = None) -> Report:
    """A report in which every `Decision` occurs but one: `deferred` when the gate is enforced,
    `failing` when `enforce_from` is ahead (the two never meet in one evaluation)."""
    findings = [
        make_finding(4, severity=Severity.CRITICAL, rule_id="crit"),  # failing
        make_finding(2, severity=Severity.MEDIUM, rule_id="med"),  # within budget
        make_finding(1, severity=Severity.LOW, rule_id="low"),  # warning
        make_finding(0, severity=Severity.INFO, rule_id="info"),  # below threshold
        make_finding(5, severity=Severity.HIGH, rule_id="ign"),  # ignored
        make_finding(6, severity=Severity.HIGH, rule_id="fp", false_positive=True),
        make_finding(7, severity=Severity.HIGH, rule_id="known"),  # baselined
    ]
    gate = GateSettings(
        fail_on=Severity.HIGH,
        max={Severity.MEDIUM: 1},
        warn_on=Severity.LOW,
        new_only=True,
        enforce_from=enforce_from,
    )
    ignore = (IgnoreRule(index=0, rule="ign", reason="accepted (SEC-9)"),)
    return make_report(
        findings, gate=gate, ignore=ignore, baseline=Baseline.from_findings(findings[-1:])
    )


@pytest.mark.parametrize("enforce_from", [None, TODAY + timedelta(days=30)])
def test_decisions_map_to_failure_skipped_or_pass(
    xsds: dict[str, xmlschema.XMLSchema], enforce_from: date | None
) -> None:
    report = _all_decisions_report(enforce_from)
    (evaluation,) = report.evaluations
    absent = Decision.FAILING if enforce_from else Decision.DEFERRED
    assert {j.decision for j in evaluation.judgements} == set(Decision) - {absent}
    xml = render(report)
    assert_valid(xml, xsds)
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None
    log = suite.findtext("system-out") or ""
    finding_cases = suite.findall("testcase")[1:]
    assert len(finding_cases) == len(evaluation.judgements)
    for judgement, case in zip(evaluation.judgements, finding_cases, strict=True):
        result = outcome(case)
        if judgement.decision is Decision.FAILING:
            assert result == "failure"
        elif judgement.decision in (
            Decision.IGNORED,
            Decision.FALSE_POSITIVE,
            Decision.BASELINED,
        ):
            assert result == "skipped"
            assert case[0].get("message") == judgement.reason
            assert judgement.reason in (case[0].text or "")
        else:
            assert result == "pass"
            line = f"{judgement.decision.value}: {case.get('classname')} {case.get('name')}: "
            assert line + judgement.reason in log
        if judgement.decision is Decision.DEFERRED:
            # A passed case (Jenkins would mark the build unstable on a failure) that says
            # when it starts failing.
            output = case.findtext("system-out") or ""
            expected = "Decision: deferred (would fail the gate, which is enforced from "
            assert expected + "2026-12-22 (in 30 days))" in output
    if enforce_from is not None:
        assert suite.get("failures") == "0"
        properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert properties["enforce_from"] == "2026-12-22"
        assert properties["verdict"] == "passed"


def test_every_finding_case_shows_its_details_where_gitlab_reads_them() -> None:
    """GitLab reads `system-out` only from a test case and shows a failure's text (§2.3):
    every finding's URL, method, parameter, description and evidence is in one of them."""
    report = _all_decisions_report()
    suite = parse(report).find("testsuite")
    assert suite is not None
    finding_cases = suite.findall("testcase")[1:]
    for judgement, case in zip(report.evaluations[0].judgements, finding_cases, strict=True):
        f = judgement.finding
        failing = judgement.decision is Decision.FAILING
        assert (case.find("system-out") is None) is failing, "a failure's text holds them"
        shown = (case.findtext("failure") if failing else case.findtext("system-out")) or ""
        assert shown.splitlines()[0].startswith(f"{f.severity.label.capitalize()}: {f.title}")
        for expected in (
            f"URL: {f.url}",
            f"Method: {f.method}",
            f"Fingerprint: {f.fingerprint}",
            f"Gate: {judgement.reason}",
            "User input reaches a SQL query unescaped.",
            "Use parameterized queries.",
            "GET /api/items?q=1 HTTP/1.1",
            "HTTP/1.1 500 Internal Server Error",
        ):
            assert expected in shown, (judgement.decision, expected)
        if f.parameter:
            assert f"Parameter: {f.parameter}" in shown
        if not failing:
            assert f"Decision: {judgement.decision.value}" in shown
    # The suite's own log keeps the passing cases' reasons (Jenkins shows it on the suite page).
    assert "warning: dast.low.low" in (suite.findtext("system-out") or "")


def test_case_output_budget_trims_details_but_keeps_each_case(
    xsds: dict[str, xmlschema.XMLSchema],
) -> None:
    big = "x" * 8_000
    findings = [
        make_finding(i, severity=Severity.LOW, description=big, remediation=big, request=big)
        for i in range(400)
    ]
    gate = GateSettings(fail_on=Severity.CRITICAL, warn_on=Severity.LOW)
    xml = render(make_report(findings, gate=gate))
    assert_valid(xml, xsds)
    outputs = [c.findtext("system-out") or "" for c in cases(ET.fromstring(xml))[1:]]
    assert len(outputs) == 400
    trimmed = [o for o in outputs if o.endswith("(details trimmed)")]
    assert 0 < len(trimmed) < 400
    assert not outputs[0].endswith("(details trimmed)")
    assert all("Fingerprint: " in o and "Decision: warning" in o for o in trimmed)
    assert f"{len(trimmed)} passing or skipped case(s) carry only their summary" in xml
    assert OUTPUT_BUDGET < len(xml.encode("utf-8")) < 30_000_000


def test_failure_has_one_line_message_and_details_starting_with_it() -> None:
    finding = make_finding(20, severity=Severity.CRITICAL)  # with a CVE and a CVSS score
    (failure,) = parse(make_report([finding])).iter("failure")
    message = failure.get("message") or ""
    text = failure.text or ""
    assert "\n" not in message
    assert message == f"Critical: {finding.title} at {finding.method} {finding.url}"
    assert failure.get("type") == "critical"
    assert text.splitlines()[0] == message, "GitLab shows only the text, so it leads with it"
    for expected in (
        f"URL: {finding.url}",
        f"Fingerprint: {finding.fingerprint}",
        "CVE: CVE-2024-1234",
        "CVSS: 9.8",
        "Gate: critical is at or above fail_on: high",
        "Use parameterized queries.",
        "HTTP/1.1 500 Internal Server Error",
    ):
        assert expected in text


def test_an_escalated_finding_fails_saying_so(xsds: dict[str, xmlschema.XMLSchema]) -> None:
    low = make_finding(3, severity=Severity.LOW)
    escalated = replace(low, severity=Severity.HIGH)  # the same fingerprint, now high
    report = make_report(
        [escalated], baseline=Baseline.from_findings([low]), gate=GateSettings(new_only=True)
    )
    xml = render(report)
    assert_valid(xml, xsds)
    (failure,) = ET.fromstring(xml).iter("failure")
    message = failure.get("message") or ""
    assert message.endswith("(escalated from low)")
    text = failure.text or ""
    assert text.splitlines()[0] == message
    assert "Baseline: escalated from low" in text
    assert "escalated since baseline: high is more severe than its baseline entry (low)" in text


def test_hostile_text_is_well_formed_and_loses_forbidden_characters(
    reports: dict[str, Report],
) -> None:
    xml = render(reports["hostile"])
    assert not _XML_FORBIDDEN.search(xml)
    root = ET.fromstring(xml)  # well-formed
    failure = root.find(".//failure")
    assert failure is not None
    # Markup survives as text (escaped, not interpreted); the control characters are gone.
    assert "<script>alert(1)</script> ]]> &" in (failure.text or "")
    assert "<script>" in (failure.get("message") or "")
    assert not root.findall(".//script")
    names = [c.get("name") or "" for c in cases(root)]
    assert all("\n" not in name and "  " not in name for name in names)


def test_long_fields_are_capped() -> None:
    finding = make_finding(4, description="d" * 100_000, title="t" * 5_000)
    (failure,) = parse(make_report([finding])).iter("failure")
    assert len(failure.get("message") or "") <= 300
    assert "more characters cut by scangate" in (failure.text or "")
    assert len(failure.text or "") < 30_000


def test_count_only_provider_says_details_live_in_the_console(
    reports: dict[str, Report],
) -> None:
    suite = parse(reports["count-only"]).find("testsuite")
    assert suite is not None
    (failure,) = suite.iter("failure")
    console = "https://console.example.com/scans/scan_abc123"
    for text in (failure.text or "", suite.findtext("system-out") or ""):
        assert "VAddy reports only how many alerts it found, not what they are" in text
        assert f"The details live in the VAddy console: {console}" in text
        assert "1 alert(s) over 120 scan request(s)" in text
        assert "Checks run: SQL Injection, XSS" in text
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["alert_count"] == "1"
    assert properties["checks"] == "SQL Injection, XSS"


def test_incomplete_scan_is_an_error_naming_why(reports: dict[str, Report]) -> None:
    health = cases(parse(reports["incomplete"]))[0]
    assert outcome(health) == "error"
    error = health[0]
    assert error.get("type") == "scan-incomplete"
    assert "scanner crashed" in (error.get("message") or "")


def test_incomplete_scan_passes_health_without_fail_on_incomplete() -> None:
    result = make_result([make_finding(1)], status=ScanStatus.COMPLETED, completeness=80)
    report = make_report(result=result, gate=GateSettings(fail_on_incomplete=False))
    suite = parse(report).find("testsuite")
    assert suite is not None
    assert outcome(suite.findall("testcase")[0]) == "pass"
    assert "completed, 80% of its checks ran" in (suite.findtext("system-out") or "")


def test_interrupted_report_is_an_error(xsds: dict[str, xmlschema.XMLSchema]) -> None:
    result = make_result([make_finding(4)], status=ScanStatus.INTERRUPTED)
    report = make_report(result=result, interrupted="SIGTERM")
    xml = render(report)
    assert_valid(xml, xsds)
    error = cases(ET.fromstring(xml))[0].find("error")
    assert error is not None
    assert error.get("type") == "interrupted"
    assert "SIGTERM" in (error.get("message") or "")


def test_report_without_scans_still_has_one_case(xsds: dict[str, xmlschema.XMLSchema]) -> None:
    xml = render(Report(evaluations=(), verdict=Verdict.PASSED, interrupted="SIGINT"))
    assert_valid(xml, xsds)
    (case,) = cases(ET.fromstring(xml))
    assert outcome(case) == "error"
    assert "SIGINT" in (case[0].get("message") or "")


def test_merged_scans_get_one_suite_each_with_unique_keys(
    xsds: dict[str, xmlschema.XMLSchema],
) -> None:
    findings = [make_finding(i) for i in range(10)]
    policy = make_policy()
    evaluations = tuple(
        evaluate(make_result(findings, scan_id=scan_id), policy, None, TODAY)
        for scan_id in ("scan-a", "scan-b")
    )
    report = Report(evaluations=evaluations, verdict=combine(evaluations), gate=policy.gate)
    xml = render(report)
    assert_valid(xml, xsds)
    root = ET.fromstring(xml)
    assert [s.get("id") for s in root.findall("testsuite")] == ["0", "1"]
    keys = [(c.get("classname"), c.get("name")) for c in cases(root)]
    assert len(keys) == 22
    assert len(set(keys)) == 22


def test_times_come_from_the_result_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    started = datetime(2026, 11, 22, 19, 0, 0, tzinfo=tokyo)
    result = replace(
        make_result([]), started_at=started, finished_at=started + timedelta(seconds=61.5)
    )
    suite = parse(make_report(result=result)).find("testsuite")
    assert suite is not None
    assert suite.get("timestamp") == "2026-11-22T10:00:00"
    assert suite.get("time") == "61.500"
    assert suite.get("hostname") == "app.example.com"


_RENDER_IN_SUBPROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
from conftest import hostile_finding, make_finding, make_report
from scangate.formats import formatter
report = make_report([make_finding(i) for i in range(40)] + [hostile_finding(i) for i in range(3)])
sys.stdout.buffer.write(formatter(sys.argv[2]).render(report).encode("utf-8"))
"""


def render_with_hash_seed(seed: str, name: str) -> bytes:
    """Render in a fresh interpreter: set and dict-of-str orders change with the hash seed."""
    tests = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONHASHSEED": seed}
    command = [sys.executable, "-c", _RENDER_IN_SUBPROCESS, tests, name]
    return subprocess.run(command, env=env, capture_output=True, check=True).stdout


def test_output_is_deterministic() -> None:
    assert render(_all_decisions_report()) == render(_all_decisions_report())
    first = render_with_hash_seed("1", "junit")
    assert first.startswith(b"<?xml")
    assert render_with_hash_seed("4242", "junit") == first


def test_detail_budget_keeps_the_file_under_gitlabs_limit() -> None:
    big = "x" * 8_000
    findings = [
        make_finding(
            i * 5, severity=Severity.CRITICAL, description=big, remediation=big, request=big
        )
        for i in range(1_000)
    ]
    xml = render(make_report(findings))
    size = len(xml.encode("utf-8"))
    assert DETAIL_BUDGET < size < 30_000_000
    failures = list(ET.fromstring(xml).iter("failure"))
    assert len(failures) == 1_000
    trimmed = [f for f in failures if (f.text or "").endswith("(details trimmed)")]
    assert 0 < len(trimmed) < 1_000
    assert failures[0] not in trimmed, "the most severe failures keep their details"
    assert f"{len(trimmed)} failure(s) carry only their summary" in xml
