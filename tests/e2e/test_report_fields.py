"""End to end: what GitLab, Jenkins and GitHub show of a run, for every provider (issue 17, 8-9).

Each test runs the real CLI against the bundled emulator of one provider and reads the reports
it wrote: GitLab DAST locations carry a method and a hostname and the scanner a version; every
JUnit finding case shows its details where GitLab reads them; the summary fits GitHub's column;
NCP's sandbox titles read as the service's do.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from formats.junit_xsd import junit_errors, junit_schemas
from formats.width import details_text, table_cells, wide_cells

from e2e.support import CliRun, run_scenario
from scangate.providers import PROVIDER_NAMES

pytestmark = pytest.mark.slow

API_VERSIONS = {
    "cyberorigen": "API v1",
    "cybersecpro": "API v1",
    "cystack": "API v1",
    "ncp-wsc": "API v1",
    "vaddy": "API v2",
}
"""No provider's answers name the engine's version: the scanner version is its API's."""
COUNT_ONLY = {"vaddy"}
"""VAddy's API gives alert counts only: no request, so no method or host (providers/vaddy.md)."""


def _findings_run(tmp_path: Path, provider: str) -> CliRun:
    run, _ = run_scenario(tmp_path, provider, "findings")
    assert run.exit == 1, run.stderr
    return run


def _vulnerabilities(run: CliRun) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = run.parsed("gl-dast-report.json")["vulnerabilities"]
    assert found
    return found


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_gitlab_locations_and_scanner_version_are_filled(tmp_path: Path, provider: str) -> None:
    run = _findings_run(tmp_path, provider)
    report = run.parsed("gl-dast-report.json")
    assert report["scan"]["scanner"]["version"] == API_VERSIONS[provider]
    sarif = run.parsed("scangate.sarif")["runs"][0]["tool"]["driver"]
    assert sarif["version"] == API_VERSIONS[provider]
    for vulnerability in _vulnerabilities(run):
        location = vulnerability["location"]
        if provider in COUNT_ONLY:
            assert location == {"param": location["param"]}
            assert location["param"].startswith("vaddy:")
            continue
        assert location["method"] in ("GET", "POST"), location
        assert location["hostname"] in ("https://staging.example.com", "staging.example.com")
        assert location["path"].startswith("/"), location
        assert not location["path"].startswith("/staging.example.com"), location


def test_each_provider_gives_the_method_it_knows(tmp_path: Path) -> None:
    """The scenario's SQL injection is a GET and its cookie finding a POST: NCP names the
    method, CyberSec Pro's evidence starts with the request line (`GET /search...`)."""
    by_provider = {}
    for provider in ("ncp-wsc", "cybersecpro"):
        (tmp_path / provider).mkdir()
        run = _findings_run(tmp_path / provider, provider)
        by_provider[provider] = {v["name"]: v["location"] for v in _vulnerabilities(run)}
    ncp = by_provider["ncp-wsc"]
    assert ncp["Cookie without Secure flag #1"]["method"] == "POST"
    assert ncp["SQL Injection in search parameter #1"]["method"] == "GET"
    csp = by_provider["cybersecpro"]
    assert csp["SQL Injection in search parameter"] == {
        "method": "GET",
        "hostname": "staging.example.com",  # CyberSec Pro's findings sit at the bare target
        "path": "/",
    }


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_every_junit_finding_case_carries_its_details(tmp_path: Path, provider: str) -> None:
    run = _findings_run(tmp_path, provider)
    xml = run.report("junit.xml")
    assert list(junit_errors(xml, junit_schemas())) == []
    findings = {f["fingerprint"]: f for f in run.results()["scans"][0]["findings"]}
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None
    cases = [c for c in suite.findall("testcase") if c.get("classname") != "dast.scan"]
    assert len(cases) == len(findings)
    for case in cases:
        failure = case.find("failure")
        output = case.find("system-out")
        # A failure's details are its text; every other case's are its own system-out.
        assert (failure is None) is (output is not None), case.get("name")
        details = failure if failure is not None else output
        assert details is not None
        shown = details.text or ""
        fingerprint = shown.split("Fingerprint: ", 1)[1].split("\n", 1)[0]
        finding = findings[fingerprint]
        for key, field in (("URL", "url"), ("Method", "method"), ("Parameter", "parameter")):
            if finding[field]:
                assert f"{key}: {finding[field]}" in shown
        for field in ("description", "request", "response"):
            for line in finding[field].splitlines()[:1]:
                assert line in shown, (field, line)


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@pytest.mark.parametrize("scenario", ["findings", "hostile"])
def test_summary_fits_githubs_column(tmp_path: Path, provider: str, scenario: str) -> None:
    run, _ = run_scenario(tmp_path, provider, scenario)
    assert run.exit == 1, run.stderr
    summary = run.report("summary.md")
    assert table_cells(summary)
    assert wide_cells(summary) == []
    fingerprints = [f["fingerprint"] for f in run.results()["scans"][0]["findings"]]
    shown = summary + details_text(summary)
    assert all(fp in shown or fp.replace(":", "\\:") in shown for fp in fingerprints)


def test_ncp_sandbox_titles_read_as_the_services(tmp_path: Path) -> None:
    """`<title> #<n>` as the real `"XSS #1"`; the rule (category) is still the scenario's id."""
    run = _findings_run(tmp_path, "ncp-wsc")
    findings = run.results()["scans"][0]["findings"]
    titles = {f["rule_id"]: f["title"] for f in findings}
    assert titles["sql-injection"] == "SQL Injection in search parameter #1"
    assert titles["missing-csp"] == "Missing Content-Security-Policy header #1"
    assert all(not title.startswith(rule) for rule, title in titles.items())
    assert json.dumps(titles).count("#1") == len(titles)
    gitlab = {v["name"] for v in _vulnerabilities(run)}
    assert gitlab == set(titles.values())
