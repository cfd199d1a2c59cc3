"""Tests for the SARIF formatter: schema, Multitool (GitHub rules), limits, fingerprints, text."""

from __future__ import annotations

import gc
import gzip
import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import multitool
import pytest
from conftest import (
    HOSTILE,
    SCHEMAS,
    STARTED,
    TODAY,
    hostile_finding,
    make_finding,
    make_policy,
    make_report,
    make_result,
    sample_reports,
)
from jschema_to_python.to_json import to_json
from jsonschema import Draft4Validator
from multitool import validate

from formats.deferred import deferred_report
from scangate.baseline import Baseline
from scangate.formats import formatter
from scangate.formats.interface import Report
from scangate.formats.sarif import SarifFormatter, dumps, rule_id
from scangate.gate import Decision, combine, evaluate
from scangate.model import Finding, ScanResult, Severity
from scangate.policy import GateSettings, IgnoreRule
from scangate.text import model_text, xml_safe

SAMPLES = ["empty", "one", "many", "hostile", "mixed", "incomplete", "count-only"]
SMALL_SAMPLES = [name for name in SAMPLES if name != "many"]
SAFE_URI = re.compile(r"[A-Za-z0-9\-._~%/]+")


def _merged(*results: ScanResult) -> Report:
    """A `scangate gate --results a --results b` style report: one evaluation per result."""
    evaluations = tuple(evaluate(r, make_policy(), None, TODAY) for r in results)
    return Report(evaluations=evaluations, verdict=combine(evaluations), tool_version="0.1.0")


def _matrix() -> Report:
    """Three matrix jobs; two scanned the same target and must still get distinct categories."""
    return _merged(
        make_result([make_finding(1)], target="https://a.example.com", scan_id="s1"),
        make_result([make_finding(2)], target="https://b.example.com:8443/app", scan_id="s2"),
        make_result([make_finding(3)], target="https://a.example.com", scan_id="s3"),
    )


def _escalated() -> Report:
    """A new_only report with one finding of each baseline state: new, unchanged, escalated."""
    low = make_finding(3, severity=Severity.LOW)
    known = make_finding(4)
    escalated = replace(low, severity=Severity.HIGH, title="Stored XSS")  # same fingerprint
    return make_report(
        [escalated, known, make_finding(5)],
        baseline=Baseline.from_findings([low, known]),
        gate=GateSettings(new_only=True),
    )


def _render(report: Report, **limits: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SarifFormatter(**limits).render(report))
    return document


def _results(document: dict[str, Any], run: int = 0) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = document["runs"][run]["results"]
    return results


def _notifications(document: dict[str, Any], run: int = 0) -> list[dict[str, Any]]:
    invocation = document["runs"][run]["invocations"][0]
    notes: list[dict[str, Any]] = invocation.get("toolExecutionNotifications", [])
    return notes


@pytest.fixture(scope="module")
def rendered(reports: dict[str, Report]) -> dict[str, str]:
    """Every sample report rendered once."""
    sarif = formatter("sarif")
    return {name: sarif.render(reports[name]) for name in SAMPLES}


@pytest.fixture(scope="module")
def sarif_schema() -> Draft4Validator:
    """The OASIS SARIF 2.1.0 schema (draft-04)."""
    return Draft4Validator(json.loads((SCHEMAS / "sarif-2.1.0.json").read_text(encoding="utf-8")))


# -- validity ------------------------------------------------------------------------------------


def test_registry_builds_the_sarif_formatter() -> None:
    sarif = formatter("sarif")
    assert isinstance(sarif, SarifFormatter)
    assert (sarif.name, sarif.filename) == ("sarif", "scangate.sarif")


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_validates_against_the_sarif_schema(
    name: str, rendered: dict[str, str], sarif_schema: Draft4Validator
) -> None:
    document = json.loads(rendered[name])
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in sarif_schema.iter_errors(document)]
    assert errors == []
    assert document["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert document["version"] == "2.1.0"


def _multitool_cases(reports: dict[str, Report]) -> dict[str, str]:
    """Every sample, plus the other shapes the formatter emits."""
    cases = {name: SarifFormatter().render(reports[name]) for name in SMALL_SAMPLES}
    # GH1004 still flags runs over 1,000 results, an outdated GitHub default (formats.md §1.2):
    # the 10,000-finding sample is checked at that size, and against the schema in full above.
    cases["many"] = SarifFormatter(max_results_per_run=1000).render(reports["many"])
    cases["many-full"] = SarifFormatter().render(reports["many"])
    cases["matrix"] = SarifFormatter().render(_matrix())
    cases["anchored"] = SarifFormatter().render(
        make_report([make_finding(i) for i in range(5)], sarif_anchor="api/openapi.yaml")
    )
    cases["interrupted"] = SarifFormatter().render(
        make_report([make_finding(3)], interrupted="SIGTERM")
    )
    cases["trimmed"] = SarifFormatter(max_gzip_bytes=3000).render(reports["mixed"])
    cases["escalated"] = SarifFormatter().render(_escalated())
    cases["versioned"] = SarifFormatter().render(_versioned())
    return cases


def _versioned() -> Report:
    """A scan whose provider's API version is the scanner version (`ScanResult`)."""
    return make_report(result=replace(make_result([make_finding(2)]), scanner_version="API v1"))


MULTITOOL_CASES = [
    *SAMPLES,
    *("matrix", "anchored", "interrupted", "trimmed", "escalated", "versioned"),
]


def test_the_driver_carries_the_scanner_version(sarif_schema: Draft4Validator) -> None:
    """The driver is the scanner (scangate is `conversion.tool`); its version is a free string."""
    document = _render(_versioned())
    assert not list(sarif_schema.iter_errors(document))
    run = document["runs"][0]
    assert run["tool"]["driver"]["version"] == "API v1"
    assert run["conversion"]["tool"]["driver"] == {"name": "scangate", "version": "0.1.0"}
    unversioned = _render(make_report([make_finding(2)]))["runs"][0]["tool"]["driver"]
    assert "version" not in unversioned  # results files of older versions: nothing invented


@pytest.fixture(scope="module")
def multitool_errors(
    reports: dict[str, Report], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[str]]:
    """The Multitool's error lines per case, from one run over all the files (it is slow)."""
    workdir = tmp_path_factory.mktemp("multitool")
    paths = {}
    for name, text in _multitool_cases(reports).items():
        paths[name] = workdir / f"{name}.sarif"
        paths[name].write_text(text, encoding="utf-8")
    errors = validate(list(paths.values()), workdir)
    return {name: errors[path.resolve()] for name, path in paths.items()}


@pytest.mark.multitool
@pytest.mark.parametrize("name", MULTITOOL_CASES)
def test_multitool_with_github_rules_finds_no_error(
    name: str, multitool_errors: dict[str, list[str]]
) -> None:
    assert multitool_errors[name] == []


@pytest.mark.multitool
def test_multitool_flags_the_full_10000_result_run_only_for_its_outdated_size_default(
    multitool_errors: dict[str, list[str]],
) -> None:
    # GH1004 hard-codes 1,000 results per run (an outdated default, formats.md §1.2; GitHub
    # accepts 25,000), so the full sample gets exactly that one error and no other.
    (only,) = multitool_errors["many-full"]
    assert "GH1004" in only and "runs[0].results" in only and "10000" in only


def test_multitool_helper_reports_errors(tmp_path: Path) -> None:
    """The helper must see errors, or every Multitool test above would pass vacuously."""
    bad = tmp_path / "bad.sarif"
    absolute = {"physicalLocation": {"artifactLocation": {"uri": "https://app.example.com/x"}}}
    run = {
        "tool": {"driver": {"name": "x", "rules": []}},
        "results": [{"message": {"text": "x."}, "locations": [absolute]}],
    }
    bad.write_text(json.dumps({"version": "2.1.0", "runs": [run]}), encoding="utf-8")
    errors = validate([bad], tmp_path)[bad.resolve()]
    assert any(" error GH1005: " in line for line in errors)  # absolute https URI
    assert any(" error GH1003: " in line for line in errors)  # no region


def test_missing_multitool_fails_and_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(multitool, "BINARY", tmp_path / "Sarif.Multitool")
    with pytest.raises(pytest.fail.Exception, match="run `make tools`"):
        validate([tmp_path / "any.sarif"], tmp_path)


@pytest.mark.parametrize("name", SMALL_SAMPLES)
def test_serializer_matches_jschema_to_python(name: str, reports: dict[str, Report]) -> None:
    sarif = SarifFormatter()
    log = sarif.log(reports[name])
    assert json.loads(dumps(log)) == json.loads(to_json(log))
    assert sarif.render(reports[name]) == dumps(log) + "\n"


def test_serializer_matches_jschema_to_python_on_a_matrix_report() -> None:
    log = SarifFormatter().log(_matrix())
    assert json.loads(dumps(log)) == json.loads(to_json(log))


def test_output_is_deterministic(rendered: dict[str, str]) -> None:
    fresh = sample_reports()
    for name in ("mixed", "hostile", "count-only"):
        assert SarifFormatter().render(fresh[name]) == rendered[name]
    invocation = json.loads(rendered["one"])["runs"][0]["invocations"][0]
    assert invocation["startTimeUtc"] == STARTED.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert gc.isenabled()  # render pauses the collector and must turn it back on


# -- GitHub limits -------------------------------------------------------------------------------


def _bulk_report(counts: dict[Severity, int]) -> Report:
    """Many plain findings, built without fingerprinting each one."""
    findings = [
        Finding(
            fingerprint=f"{severity.label}-{n}",
            rule_id=f"bulk-{severity.label}",
            title="Bulk finding",
            severity=severity,
            url=f"https://app.example.com/bulk/{n}",
            method="GET",
        )
        for severity, count in counts.items()
        for n in range(count)
    ]
    return make_report(findings)


def test_result_cap_keeps_the_most_severe_and_says_so() -> None:
    report = _bulk_report({Severity.INFO: 40, Severity.LOW: 24_980, Severity.CRITICAL: 30})
    document = _render(report)
    results = _results(document)
    assert len(results) == 25_000
    kept = Counter(r["properties"]["severity"] for r in results)
    assert kept == {"critical": 30, "low": 24_970}
    assert results[0]["properties"]["severity"] == "critical"
    trimmed = document["runs"][0]["properties"]["trimmed"]
    assert trimmed["resultsTotal"] == 25_050
    assert trimmed["resultsKept"] == 25_000
    assert trimmed["droppedBySeverity"] == {"low": 10, "info": 40}
    assert trimmed["evidenceDropped"] is False
    assert "at most 25,000 results per run" in trimmed["why"][0]
    (note,) = [n for n in _notifications(document) if n.get("level", "warning") == "warning"]
    assert "left out: 10 low, 40 info" in note["message"]["text"]


def test_size_limit_drops_evidence_then_the_least_severe(reports: dict[str, Report]) -> None:
    full = _render(reports["mixed"])
    limit = 3000
    text = SarifFormatter(max_gzip_bytes=limit).render(reports["mixed"])
    assert len(gzip.compress(text.encode("utf-8"))) <= limit
    document = json.loads(text)
    results = _results(document)
    assert 0 < len(results) < len(_results(full))
    assert all("webResponse" not in r for r in results)
    order = list(Severity)
    kept = [order.index(Severity.parse(r["properties"]["severity"])) for r in results]
    dropped = _results(full)[len(results) :]
    worst_dropped = max(order.index(Severity.parse(r["properties"]["severity"])) for r in dropped)
    assert min(kept) >= worst_dropped
    trimmed = document["runs"][0]["properties"]["trimmed"]
    assert trimmed["evidenceDropped"] is True
    assert trimmed["resultsKept"] == len(results)
    assert "3,000 bytes gzipped" in trimmed["why"][0]
    assert any("evidence" in n["message"]["text"] for n in _notifications(document))


def test_unreachable_size_limit_still_gives_valid_sarif(
    reports: dict[str, Report], sarif_schema: Draft4Validator
) -> None:
    document = _render(reports["mixed"], max_gzip_bytes=1)
    assert _results(document) == []
    assert document["runs"][0]["properties"]["trimmed"]["resultsKept"] == 0
    assert list(sarif_schema.iter_errors(document)) == []


def test_more_runs_than_github_accepts_are_dropped_and_noted() -> None:
    results = [
        make_result([], target=f"https://t{n}.example.com", scan_id=f"s{n}") for n in range(3)
    ]
    document = _render(_merged(*results), max_runs=2)
    assert len(document["runs"]) == 2
    assert document["properties"]["runsDropped"] == 1
    assert "1 more scans were left out" in _notifications(document, run=1)[0]["message"]["text"]


# -- runs ----------------------------------------------------------------------------------------


def test_matrix_report_has_one_run_per_scan_with_distinct_categories() -> None:
    document = _render(_matrix())
    ids = [run["automationDetails"]["id"] for run in document["runs"]]
    assert len(set(ids)) == 3
    assert all(i.startswith("scangate/cyberorigen/") and i.endswith("/") for i in ids)
    assert ids[1] == "scangate/cyberorigen/b.example.com_8443-app/"
    reordered = _merged(*reversed([e.result for e in _matrix().evaluations]))
    assert [r["automationDetails"]["id"] for r in _render(reordered)["runs"]] == ids[::-1]


def test_driver_is_the_scanner_and_conversion_is_scangate(reports: dict[str, Report]) -> None:
    run = _render(reports["count-only"])["runs"][0]
    assert run["tool"]["driver"]["name"] == "VAddy"
    assert run["conversion"]["tool"]["driver"] == {"name": "scangate", "version": "0.1.0"}
    assert run["properties"]["verdict"] == "failed"


def test_incomplete_scan_is_an_unsuccessful_invocation(reports: dict[str, Report]) -> None:
    document = _render(reports["incomplete"])
    assert document["runs"][0]["invocations"][0]["executionSuccessful"] is False
    (note,) = _notifications(document)
    assert note["level"] == "error"
    assert "scanner crashed" in note["message"]["text"]
    assert _render(reports["one"])["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_interrupted_report_is_an_unsuccessful_invocation() -> None:
    document = _render(make_report([make_finding(1)], interrupted="SIGTERM"))
    assert document["runs"][0]["invocations"][0]["executionSuccessful"] is False
    assert "interrupted (SIGTERM)" in _notifications(document)[0]["message"]["text"]
    assert document["properties"]["interrupted"] == "SIGTERM"


# -- rules ---------------------------------------------------------------------------------------


def test_one_rule_per_rule_and_severity(reports: dict[str, Report]) -> None:
    document = _render(reports["mixed"])
    rules = document["runs"][0]["tool"]["driver"]["rules"]
    pairs = {
        (j.finding.rule_id, j.finding.severity) for j in reports["mixed"].evaluations[0].judgements
    }
    assert len(rules) == len(pairs) == len({r["id"] for r in rules})
    for result in _results(document):
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        level = rule.get("defaultConfiguration", {}).get("level", "warning")
        assert level == result.get("level", "warning")  # SARIF's default level is warning


@pytest.mark.parametrize(
    ("severity", "score", "level"),
    [
        (Severity.CRITICAL, "9.5", "error"),
        (Severity.HIGH, "8.0", "error"),
        (Severity.MEDIUM, "5.5", "warning"),
        (Severity.LOW, "2.0", "note"),
        (Severity.INFO, None, "note"),
    ],
)
def test_security_severity_and_level(severity: Severity, score: str | None, level: str) -> None:
    document = _render(make_report([make_finding(1, severity=severity)]))
    (rule,) = document["runs"][0]["tool"]["driver"]["rules"]
    assert rule["properties"].get("security-severity") == score
    assert rule["properties"]["tags"] == ["security", "external/cwe/cwe-89"]
    assert _results(document)[0].get("level", "warning") == level
    assert rule.get("defaultConfiguration", {}).get("level", "warning") == level


def test_rule_texts_are_present_and_within_github_limits() -> None:
    long = make_finding(1, title="T" * 3000, description="D" * 5000, remediation="R" * 9000)
    blank = make_finding(2, title="", rule_id="", description="", remediation="", references=())
    document = _render(make_report([long, blank]))
    for rule in document["runs"][0]["tool"]["driver"]["rules"]:
        for key in ("shortDescription", "fullDescription"):
            assert 0 < len(rule[key]["text"]) <= 1024
        assert rule["help"]["text"].strip()
        assert rule["help"]["markdown"].strip()


def test_rule_ids_are_stable_plain_and_distinct() -> None:
    assert rule_id("click_jacking", Severity.HIGH) == "click_jacking/high"
    spaced = rule_id("SQL Injection", Severity.HIGH)
    assert spaced == rule_id("SQL Injection", Severity.HIGH)
    assert re.fullmatch(r"sql-injection-[0-9a-f]{8}/high", spaced)
    assert spaced != rule_id("sql injection", Severity.HIGH)
    assert rule_id("click_jacking", Severity.LOW) != rule_id("click_jacking", Severity.HIGH)


# -- results -------------------------------------------------------------------------------------


def test_message_opens_with_a_standalone_sentence() -> None:
    (result,) = _results(_render(make_report([make_finding(1)])))
    text = result["message"]["text"]
    assert text.startswith(
        "SQL Injection variant 1 (low) at GET https://app.example.com/api/items/1?q=1&page=2 "
        "in parameter 'q'. "
    )
    assert result["properties"]["url"] == "https://app.example.com/api/items/1?q=1&page=2"
    assert (result["properties"]["method"], result["properties"]["param"]) == ("GET", "q")
    assert result["properties"]["decision"] == "below_threshold"
    assert result["properties"]["reason"] == "low is below fail_on: high"


def test_fingerprints_count_repeats_the_github_way() -> None:
    # Same rule, method, parameter and route: one fingerprint for two findings.
    first, second = make_finding(0), make_finding(42, severity=Severity.INFO)
    assert first.fingerprint == second.fingerprint
    other = make_finding(5, severity=Severity.INFO)
    results = _results(_render(make_report([first, second, other])))
    hashes = [r["partialFingerprints"] for r in results]
    assert [h["primaryLocationLineHash"] for h in hashes] == [
        f"{first.fingerprint}:1",
        f"{first.fingerprint}:2",
        f"{other.fingerprint}:1",
    ]
    assert [h["scangate/v1"] for h in hashes] == [first.fingerprint] * 2 + [other.fingerprint]


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("https://App.Example.com/search", "dast/app.example.com/search"),
        ("https://app.example.com:8443/a b/c?x=1#frag", "dast/app.example.com_8443/a%20b/c"),
        ("https://app.example.com:443/", "dast/app.example.com/index"),
        ("http://app.example.com", "dast/app.example.com/index"),
        (
            "https://app.example.com/users/12345/orders",
            "dast/app.example.com/users/%7Bid%7D/orders",
        ),
        ("https://app.example.com/a/../../etc", "dast/app.example.com/a/%2E%2E/%2E%2E/etc"),
        ("https://app.example.com/caf%C3%A9/x%2Fy", "dast/app.example.com/caf%C3%A9/x%2Fy"),
        ("", "dast/app.example.com/index"),
    ],
)
def test_location_is_a_relative_dast_path(url: str, uri: str) -> None:
    (result,) = _results(_render(make_report([make_finding(1, url=url)])))
    (location,) = result["locations"]
    physical = location["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == uri
    assert physical["region"] == {"startLine": 1}


def test_sarif_anchor_replaces_every_location() -> None:
    report = make_report([make_finding(i) for i in range(3)], sarif_anchor="api/open api.yaml")
    for result in _results(_render(report)):
        artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert artifact["uri"] == "api/open%20api.yaml"


def test_ignored_and_false_positive_findings_are_suppressed() -> None:
    ignore = (IgnoreRule(index=0, rule="rule-1", reason="accepted risk (SEC-1)"),)
    findings = [
        make_finding(1),
        make_finding(2, false_positive=True, provider_status="fp"),
        make_finding(3),
    ]
    results = _results(_render(make_report(findings, ignore=ignore)))
    by_decision = {r["properties"]["decision"]: r for r in results}
    (ignored,) = by_decision["ignored"]["suppressions"]
    assert ignored["kind"] == "external" and ignored["status"] == "accepted"
    assert "accepted risk (SEC-1)" in ignored["justification"]
    (false_positive,) = by_decision["false_positive"]["suppressions"]
    assert false_positive["status"] == "accepted"
    assert "false positive" in false_positive["justification"]
    assert "suppressions" not in by_decision[Decision.FAILING.value]


def test_baseline_state_only_with_a_baseline(reports: dict[str, Report]) -> None:
    mixed = reports["mixed"]
    known = Baseline.from_findings([make_finding(2), make_finding(3)]).fingerprints
    states = [
        (r["partialFingerprints"]["scangate/v1"], r["baselineState"])
        for r in _results(_render(mixed))
    ]
    assert {s for _, s in states} == {"new", "unchanged"}
    # Each baseline entry accepts one finding: a second finding with a known fingerprint (2 and
    # 16 share one) is new.
    unchanged = Counter(fp for fp, state in states if state == "unchanged")
    assert unchanged == dict.fromkeys(known, 1)
    assert all("baselineState" not in r for r in _results(_render(reports["one"])))


def test_an_escalated_finding_is_updated_with_its_baseline_severity(
    sarif_schema: Draft4Validator,
) -> None:
    document = _render(_escalated())
    assert list(sarif_schema.iter_errors(document)) == []
    results = {r["properties"]["title"]: r for r in _results(document)}
    escalated = results["Stored XSS"]
    assert escalated["baselineState"] == "updated"
    assert escalated["properties"]["baseline"] == "escalated"
    assert escalated["properties"]["baselineSeverity"] == "low"
    assert escalated["properties"]["decision"] == "failing"
    assert (
        "escalated since baseline: high is more severe than its baseline entry (low)"
        in (escalated["message"]["text"])
    )
    states = sorted((r["baselineState"], r["properties"]["baseline"]) for r in results.values())
    assert states == [("new", "new"), ("unchanged", "unchanged"), ("updated", "escalated")]
    counts = document["runs"][0]["properties"]["counts"]["high"]
    assert (counts["escalated"], counts["new"]) == (1, 0)


def test_web_evidence_is_parsed_and_credentials_redacted() -> None:
    request = "POST /login HTTP/1.1\nHost: app.example.com\nAuthorization: Bearer s3cr3t\n\nu=a"
    response = "HTTP/1.1 302 Found\r\nSet-Cookie: sid=abc123\r\nLocation: /\r\n\r\n"
    finding = make_finding(1, request=request, response=response)
    (result,) = _results(_render(make_report([finding])))
    web_request, web_response = result["webRequest"], result["webResponse"]
    assert web_request["headers"]["Authorization"] == "[redacted by scangate]"
    assert (web_request["protocol"], web_request["version"]) == ("HTTP", "1.1")
    assert web_request["body"] == {"text": "u=a"}
    assert web_response["statusCode"] == 302
    assert web_response["headers"] == {"Set-Cookie": "[redacted by scangate]", "Location": "/"}
    assert "s3cr3t" not in json.dumps(result) and "abc123" not in json.dumps(result)


def test_hostile_text_survives_as_valid_json(rendered: dict[str, str]) -> None:
    text = rendered["hostile"]
    text.encode("utf-8")  # no lone surrogate left
    document = json.loads(text)
    run = document["runs"][0]
    shown = [n["message"]["text"] for n in _notifications(document)]
    for rule in run["tool"]["driver"]["rules"]:
        shown += [rule["shortDescription"]["text"], rule["fullDescription"]["text"]]
        shown += [rule["help"]["text"]]
        assert "<script>" not in rule["help"]["markdown"]
        assert "helpUri" not in rule
    for result in _results(document):
        shown.append(result["message"]["text"])
        assert "<script>alert(1)</script>" in result["message"]["text"]
        assert "hostedViewerUri" not in result  # javascript: is no viewer URI
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert SAFE_URI.fullmatch(uri) and ".." not in uri.split("/")
        assert result["properties"]["param"] == model_text(HOSTILE)
    assert all(xml_safe(s) == s for s in shown)


def test_hostile_rule_ids_stay_distinct_per_severity() -> None:
    findings = [hostile_finding(0), hostile_finding(1)]
    rules = _render(make_report(findings))["runs"][0]["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == 2
    assert all(re.fullmatch(r"[a-z0-9._-]+-[0-9a-f]{8}/[a-z]+", r["id"]) for r in rules)


# -- dated enforcement (issue 20) ------------------------------------------------------------------


def test_a_deferred_finding_is_a_warning_that_says_from_when_it_fails(
    sarif_schema: Draft4Validator,
) -> None:
    document = json.loads(formatter("sarif").render(deferred_report()))
    assert list(sarif_schema.iter_errors(document)) == []
    (run,) = document["runs"]
    deferred = [r for r in run["results"] if r["properties"]["decision"] == "deferred"]
    assert len(deferred) == 2
    for result in deferred:
        # A high finding is an `error` when it fails; deferred, it must not fail a code-scanning
        # check before the gate itself fails.
        assert result["level"] == "warning"
        assert result["properties"]["failsFrom"] == "2027-01-05"
        assert (
            "would fail: the gate is enforced from 2027-01-05 (in 44 days)"
            in (result["message"]["text"])
        )
    others = [r for r in run["results"] if r["properties"]["decision"] != "deferred"]
    assert all("failsFrom" not in r["properties"] for r in others)
    assert run["properties"]["enforceFrom"] == "2027-01-05"
    assert run["properties"]["deferredDays"] == 44
    assert run["properties"]["verdict"] == "passed"


def test_once_enforced_the_same_findings_are_errors_again() -> None:
    document = json.loads(formatter("sarif").render(deferred_report(enforce_from=None)))
    (run,) = document["runs"]
    failing = [r for r in run["results"] if r["properties"]["decision"] == "failing"]
    assert [r["level"] for r in failing] == ["error", "error"]
    assert "enforceFrom" not in run["properties"]
