"""Tests for the `scangate.json` results format: content, schema validity, determinism."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import (
    TODAY,
    hostile_finding,
    make_finding,
    make_policy,
    make_report,
    make_result,
    sample_reports,
)
from jsonschema import Draft202012Validator

from formats.deferred import deferred_findings, deferred_report
from scangate.baseline import Baseline, BaselineEntry
from scangate.formats.interface import Report
from scangate.formats.json import JsonFormatter
from scangate.gate import BaselineState, Decision, Verdict, combine, evaluate
from scangate.model import CountSummary, Finding, QueueStats, ScanResult, ScanStatus, Severity
from scangate.policy import GateSettings, IgnoreRule
from scangate.results import results_schema

SAMPLES = ["count-only", "empty", "hostile", "incomplete", "many", "mixed", "one"]
"""The names of `conftest.sample_reports()`, listed so that collection does not build them."""


def render(report: Report) -> dict[str, Any]:
    """Render `report` and parse it back."""
    parsed: dict[str, Any] = json.loads(JsonFormatter().render(report))
    return parsed


def small_report() -> Report:
    """One scan: a failing finding, an ignored one, expired/unused ignores and a fixed entry."""
    sqli = Finding.create(
        provider="cyberorigen",
        rule_id="sqli",
        title="SQL injection",
        severity=Severity.HIGH,
        url="https://app.example.com/search?q=1",
        method="get",
        parameter="q",
        fingerprint="fp-sqli",
        cvss=8.6,
        cwe_ids=(89,),
        console_url="https://console.example.com/f/1",
    )
    click = Finding.create(
        provider="cyberorigen",
        rule_id="click_jacking",
        title="Missing X-Frame-Options",
        severity=Severity.LOW,
        url="https://app.example.com/legacy/admin",
        fingerprint="fp-click",
    )
    result = ScanResult(
        provider="cyberorigen",
        scanner="CyberOrigen",
        scan_id="scan_1",
        target="app.example.com",
        status=ScanStatus.COMPLETED,
        started_at=datetime(2026, 11, 22, 11, 0, tzinfo=timezone(timedelta(hours=1))),
        finished_at=None,
        findings=(click, sqli),
        details={"scan_type": "quick", "plan": "pro"},
    )
    ignores = (
        IgnoreRule(index=0, rule="click_jacking", reason="legacy admin (SEC-12)"),
        IgnoreRule(index=1, rule="xss", reason="old", expires=date(2026, 1, 1)),
        IgnoreRule(index=2, cwe=79, url="https://x/*", reason="unused", expires=date(2027, 3, 1)),
    )
    baseline = Baseline.from_entries(
        [
            BaselineEntry(fingerprint="fp-sqli", rule_id="sqli", severity=Severity.HIGH),
            BaselineEntry(
                fingerprint="fp-gone",
                rule_id="xss",
                title="Reflected XSS",
                severity=Severity.MEDIUM,
                url="https://app.example.com/q",
            ),
        ]
    )
    return make_report(result=result, ignore=ignores, baseline=baseline)


def counts(**nonzero: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per-severity counts, zeros except `nonzero`."""
    keys = (
        "found",
        "counted",
        "failing",
        "ignored",
        "false_positive",
        "baselined",
        "new",
        "escalated",
        "fixed",
    )
    return {s: {k: nonzero.get(s, {}).get(k, 0) for k in keys} for s in Severity.names()}


def test_small_report_document() -> None:
    """The whole document, compared as a parsed structure."""
    finding_defaults = {
        "cvss": None,
        "cve_ids": [],
        "cwe_ids": [],
        "request": "",
        "response": "",
        "description": "",
        "remediation": "",
        "references": [],
        "provider_status": "",
        "false_positive": False,
        "console_url": "",
    }
    expected = {
        "scangate_results": 1,
        "tool": {"name": "scangate", "version": "0.1.0"},
        "verdict": "failed",
        "interrupted": "",
        "gate": {
            "fail_on": "high",
            "max": {},
            "warn_on": None,
            "new_only": False,
            "fail_on_incomplete": True,
        },
        "scans": [
            {
                "provider": "cyberorigen",
                "scanner": "CyberOrigen",
                "scanner_version": "",
                "scan_id": "scan_1",
                "target": "app.example.com",
                "status": "completed",
                "completeness": 100,
                "started_at": "2026-11-22T10:00:00Z",
                "finished_at": None,
                "console_url": "",
                "message": "",
                "shortfall": "",
                "details": {"plan": "pro", "scan_type": "quick"},
                "count_summary": None,
                "findings": [
                    {
                        **finding_defaults,
                        "fingerprint": "fp-click",
                        "rule_id": "click_jacking",
                        "title": "Missing X-Frame-Options",
                        "severity": "low",
                        "url": "https://app.example.com/legacy/admin",
                        "method": "",
                        "parameter": "",
                        "gate": {
                            "decision": "ignored",
                            "reason": "ignored by ignore[0]: legacy admin (SEC-12)",
                            "ignore_index": 0,
                            "baseline_state": "new",
                            "baseline_severity": None,
                        },
                    },
                    {
                        **finding_defaults,
                        "fingerprint": "fp-sqli",
                        "rule_id": "sqli",
                        "title": "SQL injection",
                        "severity": "high",
                        "url": "https://app.example.com/search?q=1",
                        "method": "GET",
                        "parameter": "q",
                        "cvss": 8.6,
                        "cwe_ids": [89],
                        "console_url": "https://console.example.com/f/1",
                        "gate": {
                            "decision": "failing",
                            "reason": "high is at or above fail_on: high",
                            "ignore_index": None,
                            "baseline_state": "unchanged",
                            "baseline_severity": "high",
                        },
                    },
                ],
                "gate": {
                    "verdict": "failed",
                    "reasons": ["1 high finding(s) at or above fail_on: high"],
                    "has_baseline": True,
                    "counts": counts(
                        high={"found": 1, "counted": 1, "failing": 1},
                        medium={"fixed": 1},
                        low={"found": 1, "ignored": 1, "new": 1},
                    ),
                    "expired_ignores": [
                        {
                            "index": 1,
                            "reason": "old",
                            "expires": "2026-01-01",
                            "match": {"rule": "xss"},
                        }
                    ],
                    "unused_ignores": [
                        {
                            "index": 2,
                            "reason": "unused",
                            "expires": "2027-03-01",
                            "match": {"cwe": 79, "url": "https://x/*"},
                        }
                    ],
                    "fixed": [
                        {
                            "fingerprint": "fp-gone",
                            "rule_id": "xss",
                            "title": "Reflected XSS",
                            "severity": "medium",
                            "url": "https://app.example.com/q",
                        }
                    ],
                },
            }
        ],
    }
    assert render(small_report()) == expected


def test_samples_list_is_complete(reports: dict[str, Report]) -> None:
    assert sorted(reports) == SAMPLES


def test_schema_is_valid_draft_2020_12() -> None:
    schema = results_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_validates_against_the_shipped_schema(
    name: str, reports: dict[str, Report]
) -> None:
    document = render(reports[name])
    errors = [e.message for e in Draft202012Validator(results_schema()).iter_errors(document)]
    assert errors == []
    assert len(document["scans"][0]["findings"]) == len(reports[name].evaluations[0].judgements)


def test_small_report_validates_against_the_shipped_schema() -> None:
    Draft202012Validator(results_schema()).validate(render(small_report()))


def test_queue_statistics_are_recorded_and_validate() -> None:
    stats = QueueStats(
        queued_seconds=95.5, throttled_seconds=3.0, retries=4, rate_limited=5, reason="a slot"
    )
    document = render(make_report(result=replace(make_result(), queue=stats)))
    Draft202012Validator(results_schema()).validate(document)
    assert document["scans"][0]["queue"] == {
        "queued_seconds": 95.5,
        "throttled_seconds": 3.0,
        "retries": 4,
        "rate_limited": 5,
        "reason": "a slot",
    }
    assert "queue" not in render(make_report(result=make_result()))["scans"][0]


@pytest.mark.parametrize(
    ("definition", "enum"),
    [
        ("severity", Severity.names()),
        ("verdict", tuple(v.value for v in Verdict)),
    ],
)
def test_schema_enums_match_the_model(definition: str, enum: tuple[str, ...]) -> None:
    assert tuple(results_schema()["$defs"][definition]["enum"]) == enum


def test_schema_status_and_decision_enums_match_the_model() -> None:
    defs = results_schema()["$defs"]
    assert defs["scan"]["properties"]["status"]["enum"] == [s.value for s in ScanStatus]
    judgement = defs["judgement"]["properties"]
    assert judgement["decision"]["enum"] == [d.value for d in Decision]
    assert judgement["baseline_state"]["enum"] == [b.value for b in BaselineState] + [None]


def test_escalation_and_false_positives_are_recorded_apart_and_validate() -> None:
    low = make_finding(3, severity=Severity.LOW)
    escalated = replace(low, severity=Severity.HIGH)  # the same fingerprint, now high
    flagged = make_finding(5, severity=Severity.HIGH, false_positive=True)
    suppressed = make_finding(6, severity=Severity.HIGH, rule_id="accepted")
    report = make_report(
        [escalated, flagged, suppressed],
        baseline=Baseline.from_findings([low]),
        gate=GateSettings(new_only=True),
        ignore=(IgnoreRule(index=0, rule="accepted", reason="accepted risk (SEC-2)"),),
    )
    document = render(report)
    Draft202012Validator(results_schema()).validate(document)
    scan = document["scans"][0]
    gates = {f["fingerprint"]: f["gate"] for f in scan["findings"]}
    assert gates[escalated.fingerprint]["baseline_state"] == "escalated"
    assert gates[escalated.fingerprint]["baseline_severity"] == "low"
    assert gates[escalated.fingerprint]["decision"] == "failing"
    assert gates[flagged.fingerprint]["baseline_severity"] is None
    high = scan["gate"]["counts"]["high"]
    assert (high["escalated"], high["new"], high["baselined"]) == (1, 2, 0)
    assert (high["false_positive"], high["ignored"]) == (1, 1)


def test_every_decision_is_recorded_with_the_finding(reports: dict[str, Report]) -> None:
    evaluation = reports["mixed"].evaluations[0]
    document = render(reports["mixed"])
    recorded = sorted(
        (f["fingerprint"], f["url"], f["gate"]["decision"], f["gate"]["ignore_index"])
        for f in document["scans"][0]["findings"]
    )
    expected = sorted(
        (j.finding.fingerprint, j.finding.url, j.decision.value, j.ignore_index)
        for j in evaluation.judgements
    )
    assert recorded == expected
    assert {f["gate"]["baseline_state"] for f in document["scans"][0]["findings"]} == {
        "new",
        "unchanged",
    }


def test_findings_keep_the_result_order_not_the_gate_order() -> None:
    findings = [make_finding(i) for i in range(6)]
    document = render(make_report(findings))
    assert [f["url"] for f in document["scans"][0]["findings"]] == [f.url for f in findings]


def test_equal_findings_each_get_a_decision() -> None:
    twin = make_finding(3)
    document = render(make_report([twin, twin]))
    decisions = [f["gate"]["decision"] for f in document["scans"][0]["findings"]]
    assert decisions == ["failing", "failing"]


def test_a_finding_the_gate_did_not_judge_has_a_null_gate() -> None:
    report = make_report([make_finding(1)])
    unjudged = replace(report.evaluations[0], judgements=())
    document = render(replace(report, evaluations=(unjudged,)))
    assert document["scans"][0]["findings"][0]["gate"] is None
    Draft202012Validator(results_schema()).validate(document)


def test_count_summary_and_interrupted_are_recorded() -> None:
    summary = CountSummary(
        alert_count=3, scan_count=120, checks=("XSS",), console_url="https://c/1"
    )
    report = replace(
        make_report(result=make_result(count_summary=summary, status=ScanStatus.INTERRUPTED)),
        interrupted="SIGTERM",
    )
    document = render(report)
    assert document["interrupted"] == "SIGTERM"
    assert document["verdict"] == "incomplete"
    assert document["scans"][0]["status"] == "interrupted"
    assert document["scans"][0]["count_summary"] == {
        "alert_count": 3,
        "scan_count": 120,
        "checks": ["XSS"],
        "console_url": "https://c/1",
    }


def test_gate_settings_are_recorded() -> None:
    gate = GateSettings(
        fail_on=None, max={Severity.LOW: 20, Severity.MEDIUM: 5}, warn_on=Severity.MEDIUM
    )
    assert render(make_report([], gate=gate))["gate"] == {
        "fail_on": None,
        "max": {"medium": 5, "low": 20},
        "warn_on": "medium",
        "new_only": False,
        "fail_on_incomplete": True,
    }


def test_times_are_utc_with_z_and_keep_microseconds() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone(timedelta(hours=-5)))
    result = replace(make_result(), started_at=moment, finished_at=datetime(2026, 1, 2, 9, 0))
    scan = render(make_report(result=result))["scans"][0]
    assert scan["started_at"] == "2026-01-02T08:04:05.000678Z"
    assert scan["finished_at"] == "2026-01-02T09:00:00Z"  # naive is taken as UTC


def test_non_finite_cvss_becomes_null() -> None:
    document = render(make_report([make_finding(1, cvss=float("nan"))]))
    assert document["scans"][0]["findings"][0]["cvss"] is None
    Draft202012Validator(results_schema()).validate(document)


def test_hostile_text_is_valid_utf8_json(reports: dict[str, Report]) -> None:
    text = JsonFormatter().render(reports["hostile"])
    text.encode("utf-8")  # a lone surrogate would raise here
    title = json.loads(text)["scans"][0]["findings"][0]["title"]
    assert "\ufffd" in title and "\ud800" not in title
    # The model dropped the control characters when the finding was made (`model_text`).
    assert "\x00" not in title and "\u202e" not in title and "\\u0000" not in text
    assert "<script>alert(1)</script>" in title  # JSON needs no markup escaping


def test_output_is_deterministic_readable_utf8_with_a_trailing_newline(
    reports: dict[str, Report],
) -> None:
    first = JsonFormatter().render(reports["mixed"])
    assert first == JsonFormatter().render(sample_reports()["mixed"])
    assert first.endswith("}\n")
    unicode_report = make_report([make_finding(1, title="Überprüfung 😀")])
    assert "Überprüfung 😀" in JsonFormatter().render(unicode_report)


def test_details_order_does_not_change_the_output() -> None:
    a = replace(make_result(), details={"b": "2", "a": "1"})
    b = replace(make_result(), details={"a": "1", "b": "2"})
    assert JsonFormatter().render(make_report(result=a)) == JsonFormatter().render(
        make_report(result=b)
    )


def test_merged_report_has_one_scan_per_evaluation() -> None:
    policy_report = make_report([make_finding(1)])
    policy = make_policy(policy_report.gate)
    other = evaluate(make_result([hostile_finding(3)], scan_id="scan_b"), policy, None, TODAY)
    evaluations = (*policy_report.evaluations, other)
    merged = replace(policy_report, evaluations=evaluations, verdict=combine(evaluations))
    document = render(merged)
    assert [s["scan_id"] for s in document["scans"]] == ["scan_abc123", "scan_b"]
    assert document["verdict"] == "failed"
    Draft202012Validator(results_schema()).validate(document)


def test_registry_names() -> None:
    assert (JsonFormatter.name, JsonFormatter.filename) == ("json", "scangate.json")


# --- dated enforcement and expiring ignores (issue 20) ----------------------------------------


def test_deferred_findings_expiring_ignores_and_the_enforcement_day_are_recorded() -> None:
    document = render(deferred_report())
    assert document["verdict"] == "passed"
    assert document["gate"]["enforce_from"] == "2027-01-05"
    (scan,) = document["scans"]
    decisions = [f["gate"]["decision"] for f in scan["findings"]]
    assert decisions.count("deferred") == 2 and "failing" not in decisions
    assert scan["gate"]["deferred_days"] == 44
    assert scan["gate"]["expiring_ignores"] == [
        {
            "index": 0,
            "reason": "accepted until SEC-12 ships",
            "expires": "2026-11-27",
            "match": {"rule": "accepted-risk"},
        }
    ]


def test_once_enforced_deferred_days_is_null_and_the_findings_fail() -> None:
    (scan,) = render(deferred_report(enforce_from=None))["scans"]
    assert "deferred_days" not in scan["gate"]  # no enforce_from at all: the old document
    enforced = replace(deferred_report().gate, enforce_from=TODAY)
    report = make_report(deferred_findings(), gate=enforced)
    (scan,) = render(report)["scans"]
    assert scan["gate"]["deferred_days"] is None
    assert [f["gate"]["decision"] for f in scan["findings"]].count("failing") == 2


def test_without_the_new_settings_the_document_has_no_new_keys() -> None:
    # What scangate wrote before issue 20 stays byte-for-byte readable by older versions.
    document = render(small_report())
    assert "enforce_from" not in document["gate"]
    assert {"expiring_ignores", "deferred_days"}.isdisjoint(document["scans"][0]["gate"])


def test_a_deferred_report_validates_against_the_results_schema() -> None:
    # Needs `deferred`, `gate.enforce_from`, `deferred_days` and `expiring_ignores` in
    # schemas/results.json (issue 20), or `scangate gate --results` refuses the file.
    Draft202012Validator(results_schema()).validate(render(deferred_report()))
