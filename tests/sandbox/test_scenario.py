"""Scenario loading: every bundled scenario, inheritance, hostile text and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from scangate.errors import ExitStatus, UsageError
from scangate.sandbox import SCENARIOS
from scangate.sandbox.scenario import (
    HOSTILE_TEXT,
    Scenario,
    ScenarioError,
    bundled_scenarios,
    load_scenario,
    parse_scenario,
)

REQUIRED = {
    "clean",
    "findings",
    "critical",
    "slow",
    "flaky",
    "rate-limited",
    "failed",
    "cancelled",
    "hostile",
    "token-expiry",
}


def verdict_inputs(scenario: Scenario) -> list[tuple[str, str]]:
    """What a gate decides on: each finding's severity and triage status."""
    return [(f.severity, f.status) for f in scenario.findings]


def test_every_required_scenario_is_bundled_and_loads() -> None:
    assert REQUIRED <= set(SCENARIOS) == set(bundled_scenarios())
    for name in SCENARIOS:
        scenario = load_scenario(name)
        assert scenario.name == name and scenario.description
        assert scenario.source == f"bundled:{name}"


@pytest.mark.parametrize("name", sorted(REQUIRED - {"slow"}))
def test_bundled_scenarios_are_short(name: str) -> None:
    assert 2 <= load_scenario(name).duration <= 6


def test_slow_takes_ten_minutes() -> None:
    assert load_scenario("slow").duration == 600


def test_findings_has_medium_and_high_and_one_false_positive() -> None:
    findings = load_scenario("findings").findings

    severities = {f.severity for f in findings}
    assert {"high", "medium"} <= severities and "critical" not in severities
    assert [f.status for f in findings].count("false_positive") == 1
    assert load_scenario("clean").findings == ()
    assert "critical" in {f.severity for f in load_scenario("critical").findings}


@pytest.mark.parametrize("name", ["flaky", "rate-limited", "hostile", "token-expiry", "slow"])
def test_variants_keep_the_findings_verdict(name: str) -> None:
    assert verdict_inputs(load_scenario(name)) == verdict_inputs(load_scenario("findings"))


def test_flaky_injects_5xx_a_drop_and_malformed_json_into_polling() -> None:
    faults = load_scenario("flaky").faults

    poll_kinds = {f.kind for f in faults if f.on == "poll"}
    assert poll_kinds == {"5xx", "drop", "malformed"}
    assert all(500 <= f.status <= 599 for f in faults if f.kind == "5xx")


def test_rate_limited_throttles_polls_with_retry_after() -> None:
    (fault,) = load_scenario("rate-limited").faults

    assert (fault.on, fault.kind) == ("poll", "429") and fault.retry_after > 0


@pytest.mark.parametrize(("name", "final"), [("failed", "failed"), ("cancelled", "cancelled")])
def test_incomplete_scenarios_stop_early(name: str, final: str) -> None:
    scenario = load_scenario(name)

    assert scenario.final == final and scenario.completeness < 100


def test_token_expiry_exercises_tokens() -> None:
    assert load_scenario("token-expiry").uses_tokens
    assert not load_scenario("findings").uses_tokens


def test_hostile_weaves_hostile_text_into_every_text_field() -> None:
    for finding in load_scenario("hostile").findings:
        for text in (finding.title, finding.description, finding.remediation, finding.url):
            assert HOSTILE_TEXT in text
        assert finding.status in ("open", "false_positive")
    assert "\ud800" in HOSTILE_TEXT and "::error::" in HOSTILE_TEXT and "\x00" in HOSTILE_TEXT


def test_file_scenario_extends_a_bundled_one_and_generates_findings(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    path.write_text(
        "extends: clean\nduration: 4.5\ngenerate: 250\nproviders: [cystack]\n"
        "options: {cystack: {page_size: 10}}\n"
        "faults:\n  - {on: findings, after: 3, kind: 5xx}\n",
        encoding="utf-8",
    )

    scenario = load_scenario(path)

    assert scenario.name == "big" and scenario.duration == 4.5 and scenario.final == "completed"
    assert len(scenario.findings) == 250
    assert len({f.url for f in scenario.findings}) == 250
    assert scenario.faults[0].on == "findings" and scenario.faults[0].after == 3
    assert scenario.options_for("cystack") == {"page_size": 10}
    assert scenario.options_for("vaddy") == {}
    assert scenario.supports("cystack") and not scenario.supports("cyberorigen")
    assert load_scenario(str(path), provider="cystack") == scenario
    with pytest.raises(ScenarioError, match="'big' is for cystack only"):
        load_scenario(path, provider="cyberorigen")


def test_unknown_bundled_scenario_lists_the_available_ones() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario("nope")

    assert "unknown sandbox scenario 'nope'" in str(caught.value)
    assert "rate-limited" in caught.value.diagnostics()


def test_scenario_errors_are_value_errors_that_exit_2() -> None:
    with pytest.raises(ValueError) as caught:
        load_scenario("nope")

    assert isinstance(caught.value, UsageError)
    assert caught.value.exit_status is ExitStatus.USAGE_ERROR


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list", "'bad': (root): expected a mapping"),
        ("fautls: []", "'bad': fautls: unknown key"),
        ("duration: -1", "'bad': duration: must be a positive"),
        ("duration: fast", "'bad': duration: expected a number"),
        ("final: exploded", "'bad': final: 'exploded' is not one of completed"),
        ("completeness: 120", "'bad': completeness: must be between 0 and 100"),
        ("hostile: 1", "'bad': hostile: expected bool"),
        ("findings: {}", "'bad': findings: expected a list"),
        ("findings: [{severity: high}]", "'bad': findings[0].title: required"),
        (
            "findings: [{title: a, severity: high}, {title: b, severity: hgh}]",
            "'bad': findings[1].severity: 'hgh' is not one of",
        ),
        ("findings: [{title: a, severity: low, cwe: [XSS]}]", "findings[0].cwe: 'XSS' is not"),
        ("findings: [{title: a, severity: low, colour: red}]", "findings[0].colour: unknown key"),
        ("findings: [{title: a, severity: low, evidence: {req: x}}]", "findings[0].evidence.req"),
        ("faults: [{on: poll, kind: explode}]", "'bad': faults[0].kind: 'explode' is not one of"),
        ("faults: [{on: everywhere, kind: 5xx}]", "faults[0].on: 'everywhere' is not one of"),
        ("faults: [{kind: 5xx}]", "faults[0].on: required"),
        ("faults: [{on: poll, kind: drop, after: -1}]", "faults[0].after: must be >= 0"),
        ("faults: [{on: poll, kind: 5xx, status: 404}]", "faults[0].status: a 5xx fault"),
        ("faults: [{on: poll, kind: 429, retry_after: -2}]", "faults[0].retry_after"),
        ("options: [x]", "'bad': options: expected a mapping"),
        ("options: {cystack: 3}", "'bad': options.cystack: expected a mapping"),
        ("faults: [{on: poll, kind: drop, count: 0}]", "faults[0].count: must be >= 1"),
        ("duration: null", "'bad': duration: must be a positive"),
        ("extends: nope", "unknown sandbox scenario 'nope'"),
        ("generate: -3", "'bad': generate: must be >= 0"),
        ("duration: 3\nfinal: a: b", "'bad': invalid YAML at line 2, column 9"),
    ],
)
def test_malformed_scenarios_name_the_scenario_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text + "\n", encoding="utf-8")

    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)

    assert message in str(caught.value)


def test_yaml_reads_a_bare_on_key_as_the_fault_target() -> None:
    scenario = parse_scenario({"faults": [{True: "auth", "kind": 401, "count": 2}]}, name="quirk")

    assert scenario.faults[0].on == "auth" and scenario.faults[0].kind == "401"


def test_extends_cycle_is_refused() -> None:
    with pytest.raises(ScenarioError, match="cycle"):
        parse_scenario({"extends": "x"}, name="x")


def test_missing_file_is_reported() -> None:
    with pytest.raises(ScenarioError, match="'absent': cannot read"):
        load_scenario("/nonexistent/absent.yml")
