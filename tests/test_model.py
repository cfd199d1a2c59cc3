"""The domain model: severity parsing, evidence capping and redaction, completeness."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import make_finding, make_result

from scangate.model import (
    EVIDENCE_LIMIT,
    CountSummary,
    Finding,
    ScanStatus,
    Severity,
    cap_evidence,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("High", Severity.HIGH),
        (" information ", Severity.INFO),
        ("CRITICAL", Severity.CRITICAL),
        ("moderate", Severity.MEDIUM),
        ("informational", Severity.INFO),
    ],
)
def test_severity_parse_accepts_provider_spellings(text: str, expected: Severity) -> None:
    assert Severity.parse(text) is expected


@pytest.mark.parametrize("severity", list(Severity))
def test_a_severity_label_is_its_lower_case_name_and_parses_back(severity: Severity) -> None:
    assert severity.label == severity.name.lower()
    assert Severity.parse(severity.label) is severity
    assert Severity.parse(severity.name) is severity


@pytest.mark.parametrize("text", ["none", "", "severe", "5"])
def test_severity_parse_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse(text)


def test_evidence_hides_the_scanned_apps_credentials_but_keeps_the_rest() -> None:
    request = (
        "POST /login HTTP/1.1\nHost: app\nCookie: session=s3cr3t\n"
        "Authorization: Basic dXNlcjpwYXNz\nX-API-Key: k-123456\n\nuser=a&Cookie: body-text"
    )
    response = "HTTP/1.1 302 Found\nSet-Cookie: sid=abcdef; HttpOnly\nLocation: /home"
    finding = Finding.create(
        provider="cyberorigen",
        rule_id="r",
        title="t",
        severity=Severity.LOW,
        request=request,
        response=response,
    )
    for secret in ("s3cr3t", "dXNlcjpwYXNz", "k-123456", "sid=abcdef"):
        assert secret not in finding.request + finding.response
    assert "Host: app" in finding.request and "Location: /home" in finding.response
    assert finding.request.endswith("user=a&Cookie: body-text")  # only header lines


def test_evidence_is_capped_and_says_how_much_was_cut() -> None:
    capped = cap_evidence("x" * (EVIDENCE_LIMIT + 10))
    assert capped.startswith("x" * EVIDENCE_LIMIT)
    assert "10 more characters cut" in capped


@pytest.mark.parametrize(
    ("status", "completeness", "complete"),
    [
        (ScanStatus.COMPLETED, 100, True),
        (ScanStatus.COMPLETED, 80, False),
        (ScanStatus.FAILED, 100, False),
        (ScanStatus.TIMED_OUT, 100, False),
    ],
)
def test_a_result_is_complete_only_when_finished_and_whole(
    status: ScanStatus, completeness: int, complete: bool
) -> None:
    assert make_result(status=status, completeness=completeness).complete is complete


def test_a_shortfall_makes_a_completed_result_incomplete_and_joins_the_message() -> None:
    short = "CyberOrigen announced 100000 findings but 99900 were fetched"
    result = replace(make_result(), shortfall=short)
    assert not result.complete
    assert result.message == short
    failed = replace(
        make_result(status=ScanStatus.FAILED, message="scanner crashed"), shortfall=short
    )
    assert failed.message == f"scanner crashed; {short}"
    assert replace(failed, message=failed.message).message == failed.message  # joined once


def test_finding_text_is_sanitized_where_it_enters_the_model() -> None:
    finding = Finding.create(
        provider="cyberorigen",
        rule_id="",
        title="SQL\x00 Injection\u202e\nin login",
        severity=Severity.HIGH,
        url="https://app.example.com/\u2066login\x85",
        parameter="q\x1b",
        request="GET / HTTP/1.1\r\nHost: app\x00\r\n",
        description="line one\n\tline two\x07\u200f",
        references=("https://x.example/\u202ea",),
        provider_status="open\x9f",
    )
    assert finding.title == "SQL Injection in login"
    assert finding.url == "https://app.example.com/login "
    assert (finding.parameter, finding.provider_status) == ("q", "open")
    assert finding.request == "GET / HTTP/1.1\r\nHost: app\r\n"
    assert finding.description == "line one\n\tline two"
    assert finding.references == ("https://x.example/a",)
    # No rule id from the provider: a slug of the title, the fingerprint still over the title.
    assert finding.rule_id == "sql-injection-in-login"
    same = Finding.create(
        provider="cyberorigen",
        rule_id="",
        title="SQL Injection in login",
        severity=Severity.HIGH,
        url="https://app.example.com/login",
        parameter="q",
    )
    assert same.fingerprint == finding.fingerprint


def test_findings_and_results_made_directly_are_sanitized_too() -> None:
    """`Finding(...)` (as `scangate.results` rebuilds them) gets the same treatment."""
    finding = replace(make_finding(1), title="a\x00b", cve_ids=("CVE-1\u202e",))
    assert (finding.title, finding.cve_ids) == ("ab", ("CVE-1",))
    result = replace(
        make_result([finding]),
        scan_id="id\x00",
        target="t\u202e",
        details={"k\x01": "v\x85"},
        count_summary=CountSummary(alert_count=1, checks=("SQLi\x00",), console_url="u\x1f"),
    )
    assert (result.scan_id, result.target, dict(result.details)) == ("id", "t", {"k": "v "})
    assert result.count_summary is not None
    assert (result.count_summary.checks, result.count_summary.console_url) == (("SQLi",), "u")
