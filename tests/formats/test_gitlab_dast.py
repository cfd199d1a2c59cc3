"""Tests for the GitLab DAST formatter: schemas 15.0.7, 15.1.4 and 15.2.1 (and which one a GitLab
instance gets), ids, times, severities, safety."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    SCHEMAS,
    hostile_finding,
    make_finding,
    make_report,
    make_result,
    sample_reports,
)
from jsonschema import Draft7Validator

from formats.deferred import deferred_report
from scangate.baseline import Baseline
from scangate.formats import formatter
from scangate.formats.gitlab_dast import (
    INGESTED_SINCE,
    GitLabDastFormatter,
    SchemaChoice,
    choose_schema_version,
    gitlab_release,
)
from scangate.formats.interface import Report
from scangate.gate import Verdict
from scangate.model import CountSummary, Finding, ScanStatus, Severity
from scangate.model.settings import GITLAB_SCHEMA_VERSIONS
from scangate.policy import GateSettings, IgnoreRule

_GITLAB_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    """The 15.2.1 schema, with format checking on as well as its URL patterns."""
    schema = json.loads((SCHEMAS / "gitlab-dast-report-format.json").read_text("utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


SCHEMA_FILES = {
    "15.0.7": "gitlab-dast-report-format-15.0.7.json",
    "15.1.4": "gitlab-dast-report-format-15.1.4.json",
    "15.2.1": "gitlab-dast-report-format.json",
}
"""Each version scangate writes -> GitLab's own copy of its schema (tests/schemas/README.md)."""


@pytest.fixture(scope="module")
def versioned() -> dict[str, Draft7Validator]:
    """A validator per schema version, format checking on."""
    found = {}
    for version, name in SCHEMA_FILES.items():
        schema = json.loads((SCHEMAS / name).read_text("utf-8"))
        found[version] = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    return found


def render(report: Report) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(GitLabDastFormatter().render(report))
    return document


def vulnerabilities(report: Report) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = render(report)["vulnerabilities"]
    return found


def assert_valid(document: dict[str, Any], validator: Draft7Validator) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, f"{list(errors[0].absolute_path)}: {errors[0].message}"


def test_registry_name_and_filename() -> None:
    gitlab = formatter("gitlab-dast")
    assert isinstance(gitlab, GitLabDastFormatter)
    assert (gitlab.name, gitlab.filename) == ("gitlab-dast", "gl-dast-report.json")


@pytest.fixture(scope="module")
def rendered(reports: dict[str, Report]) -> dict[str, dict[str, Any]]:
    """Every sample report, rendered once (the 10,000-finding one takes a while)."""
    return {shape: render(report) for shape, report in reports.items()}


@pytest.mark.parametrize("shape", sorted(sample_reports()))
def test_every_sample_validates_against_the_schema(
    shape: str,
    reports: dict[str, Report],
    rendered: dict[str, dict[str, Any]],
    validator: Draft7Validator,
) -> None:
    report = reports[shape]
    document = rendered[shape]
    assert_valid(document, validator)
    assert document["version"] == "15.2.1"
    judgements = sum(len(e.judgements) for e in report.evaluations)
    assert len(document["vulnerabilities"]) == judgements, "one vulnerability per finding"


def test_analyzer_is_scangate_and_scanner_is_the_provider(reports: dict[str, Report]) -> None:
    scan = render(reports["one"])["scan"]
    assert scan["analyzer"]["id"] == "scangate"
    assert scan["analyzer"]["version"] == "0.1.0"
    assert scan["analyzer"]["url"].startswith("https://")
    assert scan["scanner"]["id"] == "cyberorigen"
    assert scan["scanner"]["name"] == "CyberOrigen"
    assert scan["type"] == "dast"


def test_times_are_utc_without_zone(reports: dict[str, Report]) -> None:
    scan = render(reports["one"])["scan"]
    assert (scan["start_time"], scan["end_time"]) == ("2026-11-22T10:00:00", "2026-11-22T10:12:30")
    tokyo = timezone(timedelta(hours=9))
    result = replace(
        make_result([]),
        started_at=datetime(2026, 11, 22, 19, 0, 0, 999_999, tzinfo=tokyo),
        finished_at=datetime(2026, 11, 22, 10, 5, 0),  # naive: already UTC
    )
    scan = render(make_report(result=result))["scan"]
    assert (scan["start_time"], scan["end_time"]) == ("2026-11-22T10:00:00", "2026-11-22T10:05:00")
    assert _GITLAB_TIME.match(scan["start_time"]) and _GITLAB_TIME.match(scan["end_time"])


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.INFO, "Info"),
        (Severity.LOW, "Low"),
        (Severity.MEDIUM, "Medium"),
        (Severity.HIGH, "High"),
        (Severity.CRITICAL, "Critical"),
    ],
)
def test_severity_mapping(severity: Severity, expected: str) -> None:
    (vulnerability,) = vulnerabilities(make_report([make_finding(3, severity=severity)]))
    assert vulnerability["severity"] == expected


def test_ids_are_deterministic_uuids_independent_of_other_findings() -> None:
    a, b = make_finding(1), make_finding(2)
    alone = vulnerabilities(make_report([a]))[0]["id"]
    (together,) = [
        v["id"] for v in vulnerabilities(make_report([b, a])) if a.fingerprint in v["description"]
    ]
    assert together == alone
    assert uuid.UUID(alone).version == 5
    assert vulnerabilities(make_report([a]))[0]["id"] == alone


def test_ids_are_unique_even_for_duplicate_findings(
    rendered: dict[str, dict[str, Any]],
) -> None:
    ids = [v["id"] for v in rendered["many"]["vulnerabilities"]]
    assert len(ids) == 10_000
    assert len(set(ids)) == len(ids)
    twice = vulnerabilities(make_report([make_finding(1), make_finding(1)]))
    assert twice[0]["id"] != twice[1]["id"]


def test_findings_sharing_a_fingerprint_stay_apart_in_gitlab_tracking() -> None:
    """GitLab tracks a vulnerability by `path:method:param` and its primary identifier: two
    findings of one fingerprint (`/orders/1001` and `/orders/2002`) get distinct params, the
    same in every pipeline (the gate's canonical order numbers them)."""
    first = make_finding(1, url="https://app.example.com/orders/1001?id=1001", parameter="id")
    second = replace(first, url="https://app.example.com/orders/2002?id=2002")
    assert first.fingerprint == second.fingerprint
    for findings in ([first, second], [second, first]):
        locations = [v["location"] for v in vulnerabilities(make_report(findings))]
        assert [loc["path"] for loc in locations] == ["/orders/{id}"] * 2
        assert [loc["param"] for loc in locations] == ["id", "id (#2)"]


def test_identifiers_rule_first_then_cwe_and_cve() -> None:
    finding = make_finding(1, cve_ids=("CVE-2024-1234", "not a cve"), cwe_ids=(89, 79))
    (vulnerability,) = vulnerabilities(make_report([finding]))
    identifiers = vulnerability["identifiers"]
    assert identifiers[0] == {"type": "cyberorigen_rule", "name": finding.title, "value": "rule-1"}
    assert [(i["type"], i["value"]) for i in identifiers[1:]] == [
        ("cwe", "89"),
        ("cwe", "79"),
        ("cve", "CVE-2024-1234"),
        ("cve", "not a cve"),
    ]
    assert identifiers[1]["url"] == "https://cwe.mitre.org/data/definitions/89.html"
    assert identifiers[3]["url"] == "https://nvd.nist.gov/vuln/detail/CVE-2024-1234"
    assert "url" not in identifiers[4], "only a well-formed CVE id gets a link"


def test_location_is_normalized_and_carries_no_credentials() -> None:
    finding = make_finding(
        1, url="https://user:pw@app.example.com:8443/api/items/42/edit?q=1", parameter="q"
    )
    (vulnerability,) = vulnerabilities(make_report([finding]))
    assert vulnerability["location"] == {
        "hostname": "https://app.example.com:8443",
        "method": "GET",
        "path": "/api/items/{id}/edit",
        "param": "q",
    }


def test_evidence_request_and_response_are_structured() -> None:
    finding = make_finding(
        1,
        request="GET /a?q=1 HTTP/1.1\r\nHost: app.example.com\r\nX-Test: 1\r\n\r\nbody",
        response="HTTP/1.1 500 Internal Server Error\nContent-Type: text/plain\n\nSQL syntax",
    )
    (vulnerability,) = vulnerabilities(make_report([finding]))
    evidence = vulnerability["evidence"]
    assert evidence["request"] == {
        "headers": [
            {"name": "Host", "value": "app.example.com"},
            {"name": "X-Test", "value": "1"},
        ],
        "method": "GET",
        "url": finding.url,
        "body": "body",
    }
    assert evidence["response"] == {
        "headers": [{"name": "Content-Type", "value": "text/plain"}],
        "reason_phrase": "Internal Server Error",
        "status_code": 500,
        "body": "SQL syntax",
    }


def test_unparsed_response_is_kept_as_an_indented_code_block() -> None:
    finding = make_finding(1, response="stack trace\n[x](javascript:alert(1))")
    (vulnerability,) = vulnerabilities(make_report([finding]))
    assert "response" not in vulnerability["evidence"]
    assert "\n    stack trace\n    [x](javascript:alert(1))" in vulnerability["description"]


def test_links_are_http_only_and_limits_hold(validator: Draft7Validator) -> None:
    finding = make_finding(
        1,
        title="t" * 1_000,
        remediation="r" * 20_000,
        references=("https://example.org/a", "javascript:alert(1)", "ftp://x", "http://b c"),
        console_url="javascript:alert(2)",
    )
    document = render(make_report([finding]))
    assert_valid(document, validator)
    (vulnerability,) = document["vulnerabilities"]
    urls = [link["url"] for link in vulnerability["links"]]
    assert urls == ["https://example.org/a"]
    assert len(vulnerability["name"]) <= 255
    assert len(vulnerability["solution"]) <= 7000
    assert vulnerability["solution"].endswith("more characters cut by scangate]")


def test_ignored_and_false_positive_findings_are_included_and_explained() -> None:
    findings = [make_finding(1), make_finding(2, false_positive=True, provider_status="fp")]
    ignore = (IgnoreRule(index=0, rule="rule-1", reason="accepted (SEC-1)"),)
    ignored, false_positive = sorted(
        vulnerabilities(make_report(findings, ignore=ignore)), key=lambda v: v["name"]
    )
    assert (
        "Gate decision: ignored\\: ignored by ignore\\[0\\]\\: accepted \\(SEC\\-1\\)"
        in (ignored["description"])
    )
    assert "flags" not in ignored
    assert false_positive["flags"] == [
        {
            "type": "flagged-as-likely-false-positive",
            "origin": "CyberOrigen",
            "description": "CyberOrigen marked this a false positive (fp)",
        }
    ]


def test_an_escalated_finding_says_so_in_its_description(validator: Draft7Validator) -> None:
    low = make_finding(3, severity=Severity.LOW)
    escalated = replace(low, severity=Severity.HIGH)  # the same fingerprint, now high
    report = make_report(
        [escalated], baseline=Baseline.from_findings([low]), gate=GateSettings(new_only=True)
    )
    document = render(report)
    assert_valid(document, validator)
    (vulnerability,) = document["vulnerabilities"]
    assert vulnerability["severity"] == "High"
    assert "- Baseline: escalated from low" in vulnerability["description"]
    assert "Gate decision: failing" in vulnerability["description"]
    messages = [m["value"] for m in document["scan"]["messages"]]
    assert any("1 finding(s) escalated" in m for m in messages)


def test_scanned_resources_are_deduplicated_and_sorted() -> None:
    url = "https://app.example.com/b"
    findings = [
        make_finding(1, url=url, method="GET"),
        make_finding(2, url=url, method="GET", rule_id="other"),
        make_finding(3, url="https://app.example.com/a", method="POST"),
        make_finding(5, url="javascript:alert(1)"),
    ]
    resources = render(make_report(findings))["scan"]["scanned_resources"]
    assert [(r["method"], r["url"], r["type"]) for r in resources] == [
        ("GET", "https://app.example.com", "url"),
        ("GET", url, "url"),
        ("POST", "https://app.example.com/a", "url"),
    ]


def test_complete_scan_succeeds_with_a_verdict_message(reports: dict[str, Report]) -> None:
    scan = render(reports["one"])["scan"]
    assert scan["status"] == "success"
    assert [m["level"] for m in scan["messages"]] == ["info"]
    assert "verdict" in scan["messages"][0]["value"]


@pytest.mark.parametrize(
    ("status", "completeness", "message", "level"),
    [
        (ScanStatus.FAILED, 100, "scanner crashed", "fatal"),
        (ScanStatus.TIMED_OUT, 100, "gave up after 60m", "fatal"),
        (ScanStatus.COMPLETED, 80, "", "warn"),
    ],
)
def test_incomplete_scan_is_a_failure_with_a_message(
    status: ScanStatus, completeness: int, message: str, level: str, validator: Draft7Validator
) -> None:
    result = make_result(
        [make_finding(1)], status=status, completeness=completeness, message=message
    )
    document = render(make_report(result=result))
    assert_valid(document, validator)
    scan = document["scan"]
    assert scan["status"] == "failure"
    (problem,) = [m for m in scan["messages"] if m["level"] != "info"]
    assert "did not complete" in problem["value"]
    assert problem["level"] == level
    assert (message or "80% of its checks ran") in problem["value"]


def test_interrupted_report_is_a_fatal_failure(validator: Draft7Validator) -> None:
    result = make_result([make_finding(1)], status=ScanStatus.INTERRUPTED)
    document = render(make_report(result=result, interrupted="SIGTERM"))
    assert_valid(document, validator)
    assert document["scan"]["status"] == "failure"
    first = document["scan"]["messages"][0]
    assert first["level"] == "fatal"
    assert "SIGTERM" in first["value"]


def test_report_without_scans_is_valid_and_failed(validator: Draft7Validator) -> None:
    document = render(Report(evaluations=(), verdict=Verdict.PASSED))
    assert_valid(document, validator)
    assert document["scan"]["status"] == "failure"
    assert document["vulnerabilities"] == []


def test_count_only_provider_says_details_live_in_the_console(
    validator: Draft7Validator,
) -> None:
    alerts = [
        Finding.create(
            provider="vaddy",
            rule_id="vaddy-alert",
            title=f"VAddy alert {n} (details in the VAddy console)",
            severity=Severity.HIGH,
            url="https://console.vaddy.net/scan/1",
            fingerprint=f"vaddy:proj:{n}",
        )
        for n in (1, 2)
    ]
    summary = CountSummary(alert_count=2, scan_count=120, checks=("SQL Injection", "XSS"))
    result = make_result(
        alerts, provider="vaddy", scanner="VAddy", target="proj", count_summary=summary
    )
    document = render(make_report(result=result))
    assert_valid(document, validator)
    (note,) = [m for m in document["scan"]["messages"] if "reports only" in m["value"]]
    assert note["value"] == (
        "VAddy reports only how many alerts it found, not what they are: 2 alert(s) over 120 "
        "scan request(s). Checks run: SQL Injection, XSS. The details live in the VAddy "
        "console: https://console.example.com/scans/scan_abc123"
    )
    assert document["scan"]["scanned_resources"] == [], "the console is not a scanned resource"
    locations = [v["location"] for v in document["vulnerabilities"]]
    assert [loc["param"] for loc in locations] == ["vaddy:proj:1", "vaddy:proj:2"]
    assert all("reports only how many" in v["description"] for v in document["vulnerabilities"])


def test_hostile_text_is_encodable_inert_and_free_of_control_characters(
    reports: dict[str, Report],
) -> None:
    text = GitLabDastFormatter().render(reports["hostile"])
    text.encode("utf-8")  # no lone surrogate survives
    document = json.loads(text)
    for value in _strings(document):
        assert not _CONTROL.search(value)
    for vulnerability in document["vulnerabilities"]:
        for line in vulnerability["description"].splitlines():
            # Raw markup appears only inside the indented (code block) evidence.
            assert "<script>" not in line or line.startswith("    ")
        assert "<script>" not in vulnerability["solution"]
        assert all(link["url"].startswith("https://") for link in vulnerability.get("links", []))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_identifier_of_only_control_characters_still_validates(
    validator: Draft7Validator,
) -> None:
    finding = hostile_finding(1)
    finding = replace(finding, rule_id="\x00\x01", method="\x02", cve_ids=("\x03",))
    document = render(make_report([finding]))
    assert_valid(document, validator)
    assert document["vulnerabilities"][0]["identifiers"][0]["value"] == "unknown"


_RENDER_IN_SUBPROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
from conftest import hostile_finding, make_finding, make_report
from scangate.baseline import Baseline
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
    first = render_with_hash_seed("1", "gitlab-dast")
    assert json.loads(first)["version"] == "15.2.1"
    assert render_with_hash_seed("4242", "gitlab-dast") == first


def _bare(**fields: Any) -> Finding:
    """A finding as providers without method fields give it (CyberOrigen, CyStack)."""
    base: dict[str, Any] = {
        "provider": "cyberorigen",
        "rule_id": "",
        "title": "SQL Injection in search parameter",
        "severity": Severity.HIGH,
        "url": "https://staging.example.com/search?q=widgets",
    }
    return Finding.create(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "method"),
    [
        ({"method": "put"}, "PUT"),  # the provider's own field wins
        ({"method": "PATCH", "request": "GET /search HTTP/1.1"}, "PATCH"),
        ({"request": "DELETE /search?q=1 HTTP/1.1\nHost: staging.example.com"}, "DELETE"),
        # CyberSec Pro's `evidence` (request, a blank line, response) is kept as the response.
        ({"response": "POST /login HTTP/1.1\nHost: x\n\nHTTP/1.1 200 OK\n\nhi"}, "POST"),
        ({"request": "not a request line", "response": "HTTP/1.1 500 Oops"}, "GET"),
        ({}, "GET"),  # a URL nobody names a method for is fetched with GET
    ],
)
def test_location_method_comes_from_the_api_then_the_request_line(
    fields: dict[str, Any], method: str, validator: Draft7Validator
) -> None:
    document = render(make_report([_bare(**fields)]))
    assert_valid(document, validator)
    (vulnerability,) = document["vulnerabilities"]
    assert vulnerability["location"]["method"] == method
    assert vulnerability["location"]["hostname"] == "https://staging.example.com"
    resources = document["scan"]["scanned_resources"]
    assert {"method": method, "url": _bare().url, "type": "url"} in resources


def test_a_bare_host_url_is_split_into_hostname_and_path(validator: Draft7Validator) -> None:
    """CyberSec Pro's findings name no URL; the adapter places them at the target host."""
    findings = [
        _bare(provider="cybersecpro", url="staging.example.com", response="GET / HTTP/1.1"),
        _bare(provider="cybersecpro", url="staging.example.com:8443/admin/7", title="Other"),
    ]
    result = replace(make_result(findings), provider="cybersecpro", target="staging.example.com")
    document = render(make_report(result=result))
    assert_valid(document, validator)
    locations = [v["location"] for v in document["vulnerabilities"]]
    assert {"method": "GET", "hostname": "staging.example.com", "path": "/"} in locations
    assert {"method": "GET", "hostname": "staging.example.com:8443", "path": "/admin/{id}"} in (
        locations
    )


def test_scanner_version_is_the_results_else_unknown(validator: Draft7Validator) -> None:
    result = replace(make_result([make_finding(1)]), scanner_version="API v1")
    document = render(make_report(result=result))
    assert_valid(document, validator)
    assert document["scan"]["scanner"]["version"] == "API v1"
    older = render(make_report([make_finding(1)]))  # a results file without the version
    assert older["scan"]["scanner"]["version"] == "unknown"
    first = make_report(result=result)
    other = make_report(result=replace(result, scan_id="scan_b", scanner_version="2.15.0"))
    merged = replace(first, evaluations=(*first.evaluations, *other.evaluations))
    assert render(merged)["scan"]["scanner"]["version"] == "2.15.0 + API v1"


# --- schema versions (issue 18) ---------------------------------------------------------------


def _undeclared(value: Any, schema: dict[str, Any], node: dict[str, Any], path: str) -> list[str]:
    """Key paths of `value` that `node` (a part of `schema`) does not declare.

    GitLab's schemas allow any additional property, so validation alone would accept a field a
    version does not know; a field GitLab does not know is one it drops.
    """
    if "$ref" in node:  # `#/definitions/...`, the only kind these schemas use
        target: Any = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    if isinstance(value, dict):
        properties = node.get("properties", {})
        missing = [f"{path}.{key}" for key in value if key not in properties]
        for key, child in value.items():
            if key in properties:
                missing += _undeclared(child, schema, properties[key], f"{path}.{key}")
        return missing
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [m for item in value for m in _undeclared(item, schema, node["items"], path + "[]")]
    return []


@pytest.mark.parametrize("version", GITLAB_SCHEMA_VERSIONS)
@pytest.mark.parametrize("shape", sorted(set(sample_reports()) - {"many"}))
def test_every_sample_validates_against_each_version_it_declares(
    shape: str, version: str, reports: dict[str, Report], versioned: dict[str, Draft7Validator]
) -> None:
    report = replace(reports[shape], gitlab_schema_version=version)
    document = render(report)
    assert document["version"] == version
    assert document["schema"].endswith(f"/-/raw/v{version}/dist/dast-report-format.json")
    assert_valid(document, versioned[version])
    schema: dict[str, Any] = versioned[version].schema  # type: ignore[assignment]
    assert _undeclared(document, schema, schema, "") == [], "a key this version does not declare"


def test_the_versions_differ_only_in_version_and_schema(reports: dict[str, Report]) -> None:
    """The three schemas differ only where scangate writes nothing (gitlab_dast's docstring)."""
    documents = [
        render(replace(reports["mixed"], gitlab_schema_version=v)) for v in GITLAB_SCHEMA_VERSIONS
    ]
    bodies = [{k: v for k, v in d.items() if k not in ("version", "schema")} for d in documents]
    assert bodies[0] == bodies[1] == bodies[2]


def test_the_default_is_the_newest_version(reports: dict[str, Report]) -> None:
    assert Report(evaluations=(), verdict=Verdict.PASSED).gitlab_schema_version == "15.2.1"
    assert render(reports["one"])["version"] == GITLAB_SCHEMA_VERSIONS[-1] == "15.2.1"


def test_a_version_scangate_does_not_write_is_refused(reports: dict[str, Report]) -> None:
    with pytest.raises(ValueError, match="15.3.0"):
        GitLabDastFormatter().render(replace(reports["one"], gitlab_schema_version="15.3.0"))


@pytest.mark.parametrize(
    ("server", "version"),
    [
        ("18.6.1", "15.2.1"),
        ("17.4.0", "15.2.1"),
        ("17.4.2-ee", "15.2.1"),
        ("17.3.9-ee", "15.1.4"),
        ("17.0.0", "15.1.4"),
        ("16.11.10", "15.0.7"),
        ("16.0.0-pre", "15.0.7"),
        ("15.4.0", "15.0.7"),
        ("  17.1.2  ", "15.1.4"),  # a variable with a stray newline or space still reads
    ],
)
def test_the_version_follows_ci_server_version(server: str, version: str) -> None:
    assert choose_schema_version(None, {"CI_SERVER_VERSION": server}) == SchemaChoice(version)


def test_without_ci_server_version_the_default_is_written() -> None:
    assert choose_schema_version(None, {}) == SchemaChoice("15.2.1")
    assert choose_schema_version(None, {"CI_SERVER_VERSION": ""}) == SchemaChoice("15.2.1")


@pytest.mark.parametrize("setting", GITLAB_SCHEMA_VERSIONS)
def test_an_explicit_policy_value_wins(setting: str) -> None:
    for server in ("16.11.0", "17.2.0", "18.0.0", "not a version"):
        assert choose_schema_version(setting, {"CI_SERVER_VERSION": server}) == SchemaChoice(
            setting
        )


@pytest.mark.parametrize("server", ["banana", "17", "v17.4.0", "17.x.1", "17.4.0 ee", "\x1b[31m"])
def test_an_unreadable_ci_server_version_warns_and_keeps_the_default(server: str) -> None:
    choice = choose_schema_version(None, {"CI_SERVER_VERSION": server})
    assert choice.version == "15.2.1"
    assert choice.warning.startswith("warning: CI_SERVER_VERSION ")
    assert repr(server.strip()) in choice.warning
    assert "reports.gitlab_schema_version" in choice.warning
    assert "\x1b" not in choice.warning, "the variable is shown escaped"


def test_a_gitlab_older_than_every_schema_15_warns() -> None:
    choice = choose_schema_version(None, {"CI_SERVER_VERSION": "15.3.2"})
    assert choice.version == "15.0.7"
    assert "ingests no DAST report of schema 15" in choice.warning


def test_the_release_table_is_newest_first_and_covers_every_version() -> None:
    releases = [since for since, _ in INGESTED_SINCE]
    assert releases == sorted(releases, reverse=True)
    assert sorted(version for _, version in INGESTED_SINCE) == sorted(GITLAB_SCHEMA_VERSIONS)
    assert gitlab_release("17.10.3-ee") == (17, 10), "minor versions compare as numbers"
    assert choose_schema_version(None, {"CI_SERVER_VERSION": "17.10.3"}).version == "15.2.1"


# --- dated enforcement (issue 20) ---------------------------------------------------------------


def test_a_deferred_finding_is_a_vulnerability_like_any_counted_one(
    validator: Draft7Validator,
) -> None:
    deferred = render(deferred_report())
    enforced = render(deferred_report(enforce_from=None))
    assert_valid(deferred, validator)
    # The same vulnerabilities, with the same ids, whatever the date: GitLab tracks them as one.
    assert [v["id"] for v in deferred["vulnerabilities"]] == [
        v["id"] for v in enforced["vulnerabilities"]
    ]
    # The description is Markdown, escaped.
    said = [v for v in deferred["vulnerabilities"] if "decision: deferred" in v["description"]]
    assert len(said) == 2
    for vulnerability in said:
        assert vulnerability["severity"] == "High"
        when = r"would fail\: the gate is enforced from 2027\-01\-05 \(in 44 days\)"
        assert when in vulnerability["description"]
