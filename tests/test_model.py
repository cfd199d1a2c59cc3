"""The domain model: severity parsing, evidence capping and redaction, completeness."""

from __future__ import annotations

import pytest
from conftest import make_result

from scangate.model import EVIDENCE_LIMIT, Finding, ScanStatus, Severity, cap_evidence


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
